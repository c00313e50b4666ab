"""The need model: one scikit-learn Pipeline from raw text to label, plus what
is needed to trust it later (labels, metrics, data hash, library versions).
"""

import hashlib
import os
import platform
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from . import ClassifierUnavailable, Prediction
from .calibration import TemperatureScaledLogisticRegression
from .defaults import DEFAULT_C, DEFAULT_THRESHOLD, OTHER_LABEL
from .text import SpacyNormaliser, normalise

FORMAT_VERSION = 1
TOP_K = 3


class TrainingError(ValueError):
    """The training data cannot produce a model; the message says why."""


def build_features() -> FeatureUnion:
    return FeatureUnion(
        [
            # Words carry the meaning; sublinear tf keeps "late late late" from dominating.
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            # Character n-grams inside words survive typos ("refnd", "delivred").
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        ]
    )


def build_classifier(C: float = DEFAULT_C, class_weight: str | None = None) -> LogisticRegression:
    # tol 3e-4 reaches the accuracy of the default 1e-4 on BANKING77 in 60 % of the time.
    return LogisticRegression(C=C, class_weight=class_weight, tol=3e-4, max_iter=1000)


def build_pipeline(C: float = DEFAULT_C, class_weight: str | None = None) -> Pipeline:
    # Temperature scaling so that "0.6" means right about 60 % of the time and a
    # threshold means something.
    classifier = TemperatureScaledLogisticRegression(build_classifier(C, class_weight))
    return Pipeline(
        [
            ("normalise", SpacyNormaliser()),
            ("features", build_features()),
            ("classify", classifier),
        ]
    )


def data_hash(texts: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(text.encode("utf-8") + b"\x1f" + label.encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import skops
    import spacy

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "spacy": spacy.__version__,
        "skops": skops.__version__,
    }


class CharGramCache:
    """Vocabulary indices of each word's ``char_wb`` n-grams, computed once per word.

    Bounded: when it holds ``max_words`` words it starts again, so a stream
    of unseen words (typos, pasted junk) cannot grow a worker's memory.
    Safe under threads: a lost race only computes a word twice.
    """

    def __init__(self, vectorizer: TfidfVectorizer, max_words: int = 100_000):
        self._analyzer = vectorizer.build_analyzer()
        self._vocabulary = vectorizer.vocabulary_
        self._words: dict[str, list[int]] = {}
        self.max_words = max_words

    @staticmethod
    def applies_to(vectorizer) -> bool:
        # Only where a text's n-grams are exactly its words' n-grams put together.
        return (
            isinstance(vectorizer, TfidfVectorizer)
            and vectorizer.analyzer == "char_wb"
            and vectorizer.preprocessor is None
            and vectorizer.strip_accents is None
            and vectorizer.use_idf
            and vectorizer.norm == "l2"
            and not vectorizer.binary
        )

    def indices(self, word: str) -> list[int]:
        found = self._words.get(word)
        if found is None:
            vocabulary = self._vocabulary
            found = [vocabulary[gram] for gram in self._analyzer(word) if gram in vocabulary]
            if len(self._words) >= self.max_words:
                self._words = {}
            self._words[word] = found
        return found


@dataclass
class NeedModel:
    pipeline: Pipeline
    labels: list[str]
    threshold: float = DEFAULT_THRESHOLD
    metadata: dict = field(default_factory=dict)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """``pipeline.predict_proba``, without its per-call overhead.

        FeatureUnion's joblib dispatch and sklearn's input checks cost more
        than the arithmetic for a few short texts; the steps are the same.
        """
        texts = list(texts)
        steps = self.pipeline.named_steps
        classifier = steps["classify"]
        if len(texts) == 1 and self._single_text_ready():
            logits = self._single_text_logits(texts[0])[np.newaxis, :]
            return classifier.probabilities_from_logits(logits)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            normalised = steps["normalise"].transform(texts)
            matrix = scipy.sparse.hstack(
                [self._transform(vectorizer, normalised) for _, vectorizer in steps["features"].transformer_list],
                format="csr",
            )
            return classifier.predict_proba(matrix)

    def _transform(self, vectorizer, normalised: list[str]):
        """``vectorizer.transform``; character n-grams come from a per-word cache.

        ``char_wb`` n-grams never cross a space, so a text's n-grams are its
        words' n-grams put together, and customers use the same few thousand
        words again and again: sklearn's pure-Python n-gram loop (half of a
        batch's time) then runs once per distinct word, not once per text.
        """
        cache = self._char_gram_caches().get(id(vectorizer))
        if cache is None:
            return vectorizer.transform(normalised)
        indptr, indices = [0], []
        for text in normalised:
            for word in text.split():
                indices.extend(cache.indices(word))
            indptr.append(len(indices))
        counts = scipy.sparse.csr_matrix(
            (np.ones(len(indices)), np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
            shape=(len(normalised), len(vectorizer.vocabulary_)),
        )
        counts.sum_duplicates()
        return vectorizer._tfidf.transform(counts, copy=False)

    def _char_gram_caches(self) -> dict:
        if not hasattr(self, "_char_caches"):
            self._char_caches = {
                id(vectorizer): CharGramCache(vectorizer)
                for _, vectorizer in self.pipeline.named_steps["features"].transformer_list
                if CharGramCache.applies_to(vectorizer)
            }
        return self._char_caches

    # A ticket is classified one text at a time, where TfidfVectorizer.transform
    # spends ~1 ms on checks and sparse-matrix plumbing for ~100 n-grams. The
    # same arithmetic on a dict of counts takes a tenth of that;
    # tests/backend/test_classifier.py checks both paths agree.
    def _single_text_ready(self) -> bool:
        if not hasattr(self, "_vectorizer_tables"):
            self._vectorizer_tables = None
            vectorizers = [v for _, v in self.pipeline.named_steps["features"].transformer_list]
            plain = all(
                isinstance(v, TfidfVectorizer) and v.use_idf and v.norm == "l2" and not v.binary
                for v in vectorizers
            )
            if plain and self.pipeline.named_steps["features"].transformer_weights is None:
                linear = self._linear_model()
                weights = np.ascontiguousarray(linear.coef_.T)  # (features, classes)
                tables, offset = [], 0
                caches = self._char_gram_caches()
                for vectorizer in vectorizers:
                    size = len(vectorizer.vocabulary_)
                    tables.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, caches.get(id(vectorizer)),
                                   vectorizer.idf_, vectorizer.sublinear_tf, weights[offset:offset + size]))
                    offset += size
                self._vectorizer_tables = (tables, linear.intercept_)
        return self._vectorizer_tables is not None

    def _single_text_logits(self, text: str) -> np.ndarray:
        tables, intercept = self._vectorizer_tables
        logits = intercept.astype(float).copy()
        normalised = normalise([text])[0]
        for analyzer, vocabulary, char_cache, idf, sublinear, weights in tables:
            counts: dict[int, int] = {}
            if char_cache is not None:
                for word in normalised.split():
                    for index in char_cache.indices(word):
                        counts[index] = counts.get(index, 0) + 1
            else:
                for gram in analyzer(normalised):
                    index = vocabulary.get(gram)
                    if index is not None:
                        counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=float, count=len(counts))
            if sublinear:
                tf = np.log(tf) + 1
            values = tf * idf[indices]
            values /= np.sqrt(values @ values)
            logits += values @ weights[indices]
        if logits.shape[0] == 1:  # binary: one score for classes_[1]
            logits = np.array([-logits[0] / 2, logits[0] / 2])
        return logits

    def predict_many(self, texts: list[str]) -> list[Prediction]:
        probabilities = self.probabilities(texts)
        classes = self.pipeline.classes_
        predictions = []
        for row in probabilities:
            best = np.argsort(row)[::-1][:TOP_K]
            top = [(str(classes[i]), round(float(row[i]), 4)) for i in best]
            label, confidence = top[0]
            if confidence < self.threshold:
                label = OTHER_LABEL
            predictions.append(Prediction(label=label, confidence=confidence, top=top))
        return predictions

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def _linear_model(self) -> LogisticRegression:
        return self.pipeline.named_steps["classify"].linear_

    def explain(self, text: str, limit: int = 5) -> list[tuple[str, float]]:
        """Word n-grams of ``text`` with the largest contribution to the top label.

        Character n-grams also vote, but "efu" means nothing to an agent; the
        word features are the readable part of the evidence.
        """
        linear = self._linear_model()
        features: FeatureUnion = self.pipeline.named_steps["features"]
        word_vectorizer: TfidfVectorizer = features.named_transformers["word"]
        row = word_vectorizer.transform(normalise([text])).tocoo()
        scores = linear.decision_function(self.pipeline[:-1].transform([text]))[0]
        class_index = int(np.argmax(scores))
        weights = linear.coef_[class_index if linear.coef_.shape[0] > 1 else 0]
        if linear.coef_.shape[0] == 1 and class_index == 0:
            weights = -weights  # binary: coef_ points towards classes_[1]
        names = word_vectorizer.get_feature_names_out()
        contributions = [(str(names[j]), float(value * weights[j])) for j, value in zip(row.col, row.data)]
        contributions = [item for item in contributions if item[1] > 0]
        contributions.sort(key=lambda item: item[1], reverse=True)
        return [(term, round(score, 4)) for term, score in contributions[:limit]]


def fit(
    texts: list[str],
    labels: list[str],
    *,
    C: float = DEFAULT_C,
    class_weight: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress=None,
) -> NeedModel:
    """Fit a NeedModel; ``progress(step_name)`` is called as each step starts."""
    counts = {label: labels.count(label) for label in set(labels)}
    if len(texts) == 0:
        raise TrainingError("the training data has no rows")
    if len(counts) < 2:
        raise TrainingError(f"the training data has only one label ({next(iter(counts))!r}); at least two are needed")
    pipeline = build_pipeline(C, class_weight)
    report = progress or (lambda step: None)
    started = time.perf_counter()
    report("normalise")
    normalised = pipeline.named_steps["normalise"].fit_transform(texts)
    report("vectorise")
    matrix = pipeline.named_steps["features"].fit_transform(normalised)
    for _, vectorizer in pipeline.named_steps["features"].transformer_list:
        # The terms min_df pruned (older scikit-learn keeps them): introspection only.
        if hasattr(vectorizer, "stop_words_"):
            del vectorizer.stop_words_
    report("fit logistic regression, calibrate, refit")
    # One thread: lbfgs' many small OpenMP/BLAS calls are 5-8x slower when
    # two threads fight over two busy cores than one thread alone.
    with threadpool_limits(limits=1):
        classifier = pipeline.named_steps["classify"].fit(matrix, labels)
    fit_seconds = time.perf_counter() - started
    labels_seen = sorted(counts)
    return NeedModel(
        pipeline=pipeline,
        labels=labels_seen,
        threshold=threshold,
        metadata={
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data_sha256": data_hash(texts, labels),
            "n_examples": len(texts),
            "label_counts": dict(sorted(counts.items())),
            "hyperparameters": {"C": C, "class_weight": class_weight, "temperature": round(classifier.temperature_, 4)},
            "fit_seconds": round(fit_seconds, 3),
            "versions": library_versions(),
            "metrics": {},
        },
    )


# --- saving and loading -----------------------------------------------------

# Our own classes are the only types skops does not trust by default; anything
# else in a model file is refused rather than executed.
_OWN_TYPES_PREFIX = "crm_backend.classifier."


def save(model: NeedModel, path: str | Path) -> Path:
    """Write the model atomically: readers see the old file or the new one."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "pipeline": model.pipeline,
        "labels": list(model.labels),
        "threshold": float(model.threshold),
        "metadata": model.metadata,
    }
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # skops writes vocabularies as JSON; deflate shrinks the file ~5x.
        sio.dump(payload, tmp_name, compression=zipfile.ZIP_DEFLATED)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; workers may run as another user
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path) -> NeedModel:
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ClassifierUnavailable(f"no need model at {path}; train one with `crm classifier train`")
    try:
        untrusted = sio.get_untrusted_types(file=path)
        foreign = [name for name in untrusted if not name.startswith(_OWN_TYPES_PREFIX)]
        if foreign:
            raise ClassifierUnavailable(f"{path} contains types this backend does not trust: {', '.join(foreign)}")
        payload = sio.load(path, trusted=untrusted)
    except ClassifierUnavailable:
        raise
    except Exception as error:  # a truncated or foreign file: say so, do not crash the worker
        raise ClassifierUnavailable(f"{path} is not a readable need model ({error.__class__.__name__})") from error
    metadata = payload.get("metadata", {})
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ClassifierUnavailable(f"{path} has model format {metadata.get('format_version')}, expected {FORMAT_VERSION}; retrain it")
    return NeedModel(
        pipeline=payload["pipeline"],
        labels=list(payload["labels"]),
        threshold=float(payload["threshold"]),
        metadata=metadata,
    )


def version_mismatches(model: NeedModel) -> list[str]:
    """Libraries whose version differs from the one the model was trained with."""
    saved = model.metadata.get("versions", {})
    current = library_versions()
    return [
        f"{name} {saved[name]} (now {current[name]})"
        for name in ("scikit-learn", "numpy", "spacy")
        if name in saved and saved[name] != current[name]
    ]
