"""Pipeline step: TF-IDF of word n-grams and of character n-grams, side by side.

It gives the matrix of ``FeatureUnion([("word", self.word_), ("char",
self.char_)])`` (tests/backend/test_classifier.py compares the two
pipelines' probabilities); fitting is TfidfVectorizer's own. Its
``transform`` is faster where a ticket is classified one text at a time:

- FeatureUnion dispatches through joblib, and each TfidfVectorizer validates
  its input and builds, sorts and re-normalises its own sparse matrix: about
  1 ms for a text's hundred n-grams, ten times the arithmetic. Here both
  blocks are counted and weighted in one pass of numpy.
- ``char_wb`` n-grams never cross a space, so a text's character n-grams are
  its words' n-grams put together, and customers use the same few thousand
  words again and again: sklearn's pure-Python n-gram loop (half of a batch's
  time) runs once per distinct word (``CharGramCache``), not once per text.
"""

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted


class CharGramCache:
    """Column indices of each word's ``char_wb`` n-grams, computed once per word.

    Bounded: when it holds ``max_words`` words it starts again, so a stream
    of unseen words (typos, pasted junk) cannot grow a worker's memory.
    Safe under threads: a lost race only computes a word twice.
    """

    def __init__(self, vectorizer: TfidfVectorizer, offset: int = 0, max_words: int = 100_000):
        self._analyzer = vectorizer.build_analyzer()
        self._vocabulary = vectorizer.vocabulary_
        self._offset = offset  # where the vectorizer's columns start in the step's matrix
        self._words: dict[str, list[int]] = {}
        self.max_words = max_words

    def indices(self, word: str) -> list[int]:
        found = self._words.get(word)
        if found is None:
            vocabulary, offset = self._vocabulary, self._offset
            found = [offset + vocabulary[gram] for gram in self._analyzer(word) if gram in vocabulary]
            if len(self._words) >= self.max_words:
                self._words = {}
            self._words[word] = found
        return found


class WordAndCharTfidf(TransformerMixin, BaseEstimator):
    """Word n-gram TF-IDF, then ``char_wb`` n-gram TF-IDF, each row L2-normalised per block.

    Words carry the meaning; character n-grams inside words survive typos
    ("refnd", "delivred"); sublinear tf keeps "late late late" from
    dominating. Fitted: ``word_`` and ``char_``, the two TfidfVectorizers.
    """

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (2, 5),
        char_min_df: int = 2,
        sublinear_tf: bool = True,
        max_cached_words: int = 100_000,
    ):
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.char_min_df = char_min_df
        self.sublinear_tf = sublinear_tf
        self.max_cached_words = max_cached_words

    def fit(self, texts, y=None):
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts, y=None):
        texts = list(texts)
        self.word_ = TfidfVectorizer(ngram_range=self.word_ngram_range, sublinear_tf=self.sublinear_tf)
        self.char_ = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.char_ngram_range, sublinear_tf=self.sublinear_tf, min_df=self.char_min_df
        )
        blocks = [self.word_.fit_transform(texts), self.char_.fit_transform(texts)]
        for vectorizer in (self.word_, self.char_):
            # The terms min_df pruned (older scikit-learn keeps them): introspection only.
            vars(vectorizer).pop("stop_words_", None)
        self.__dict__.pop("_serving", None)
        return scipy.sparse.hstack(blocks, format="csr")

    def transform(self, texts):
        check_is_fitted(self)
        word_analyzer, word_vocabulary, char_grams, idf, n_word_columns = self._serving_tables()
        indptr, columns = [0], []
        for text in texts:
            for gram in word_analyzer(text):
                column = word_vocabulary.get(gram)
                if column is not None:
                    columns.append(column)
            # char_wb splits on whitespace exactly as str.split() does.
            for word in text.split():
                columns.extend(char_grams.indices(word))
            indptr.append(len(columns))
        n_texts, n_columns = len(indptr) - 1, len(idf)
        rows = np.repeat(np.arange(n_texts, dtype=np.int64), np.diff(indptr))
        # Sorted (row, column) keys: counts per cell and a canonical CSR order in one step.
        keys, counts = np.unique(rows * n_columns + np.asarray(columns, dtype=np.int64), return_counts=True)
        rows, columns = np.divmod(keys, n_columns)
        index_type = np.int32 if max(len(keys), n_columns) < np.iinfo(np.int32).max else np.int64
        values = counts.astype(np.float64)
        if self.sublinear_tf:
            values = np.log(values) + 1.0
        values *= idf[columns]
        # Each vectorizer normalises its own block of a row.
        blocks = 2 * rows + (columns >= n_word_columns)
        norms = np.sqrt(np.bincount(blocks, weights=values * values, minlength=2 * n_texts))
        values /= norms[blocks]
        row_starts = np.zeros(n_texts + 1, dtype=index_type)
        np.cumsum(np.bincount(rows, minlength=n_texts), out=row_starts[1:])
        # int32 indices where they fit, as sklearn's vectorizers give: scipy then skips scanning them.
        return scipy.sparse.csr_matrix((values, columns.astype(index_type), row_starts), shape=(n_texts, n_columns))

    def _serving_tables(self) -> tuple:
        """What ``transform`` looks up, built on first use in each process (never saved)."""
        tables = self.__dict__.get("_serving")
        if tables is None:
            n_word_columns = len(self.word_.vocabulary_)
            tables = (
                self.word_.build_analyzer(),
                self.word_.vocabulary_,
                CharGramCache(self.char_, offset=n_word_columns, max_words=self.max_cached_words),
                np.concatenate([self.word_.idf_, self.char_.idf_]),
                n_word_columns,
            )
            self._serving = tables
        return tables

    def __getstate__(self):
        # A copy: on Python 3.11+ the base class hands out the live __dict__.
        state = dict(super().__getstate__())
        state.pop("_serving", None)  # an analyzer closure and a cache: rebuilt after loading
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
