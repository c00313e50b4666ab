"""Text normalisation before vectorising: PII masking, then spaCy lemmas.

Masking runs first so that no e-mail address, phone, card or order number
becomes a feature (they would only memorise customers) and so that "my order
NW-48213" and "my order #99120" look the same to the model.
"""

import re
from functools import cache

from sklearn.base import BaseEstimator, TransformerMixin

# Placeholders are single tokens for spaCy's tokenizer and never real words.
EMAIL = "pii_email"
CARD = "pii_card"
PHONE = "pii_phone"
ORDER = "pii_order"

_MASKS = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), EMAIL),
    # 13-19 digits, optionally grouped by spaces or dashes: payment cards.
    (re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])"), CARD),
    # Order references: a shop prefix or "#" before digits, or a bare long number after "order".
    (re.compile(r"(?i)\b(?:nw|ord|inv|tck)[-#]?\d{4,}\b|#\s?\d{4,}\b"), ORDER),
    (re.compile(r"(?i)(?<=order )(?:no\.? |number |nr |id )?\d{4,12}\b"), ORDER),
    # Phone numbers: 8-15 digits with an optional + and the usual separators.
    (re.compile(r"(?<![\w])\+?\(?\d[\d ().-]{6,16}\d(?![\w])"), PHONE),
]


def mask_pii(text: str) -> str:
    for pattern, placeholder in _MASKS:
        text = pattern.sub(f" {placeholder} ", text)
    return text


@cache
def _lemmatiser():
    """spaCy's tokenizer and its English lookup table of lemmas."""
    import spacy

    # Blank English + lookup lemmas from spacy-lookups-data: no model download.
    nlp = spacy.blank("en")
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp.tokenizer, lemmatizer.lookups.get_table("lemma_lookup")


def normalise(texts, batch_size: int = 256) -> list[str]:
    """Masked, lower-cased lemmas joined by spaces, one string per text."""
    tokenizer, lemmas = _lemmatiser()
    masked = (mask_pii(str(text)).lower() for text in texts)
    # What spaCy's lookup-mode lemmatizer does per token, without running the
    # whole pipeline: a third faster, same output on BANKING77 and data/needs.
    return [
        " ".join(lemmas.get(token.text, token.text) for token in doc if not token.is_space)
        for doc in tokenizer.pipe(masked, batch_size=batch_size)
    ]


class SpacyNormaliser(TransformerMixin, BaseEstimator):
    """Pipeline step: raw texts in, normalised texts out. Stateless.

    The spaCy pipeline is rebuilt from spacy-lookups-data in each process, so
    the saved model holds no spaCy objects.
    """

    def fit(self, texts, y=None):
        self.is_fitted_ = True
        return self

    def transform(self, texts):
        return normalise(texts)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
