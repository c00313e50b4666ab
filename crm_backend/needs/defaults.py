"""Hyper-parameter defaults, importable without loading scikit-learn."""

# Chosen on BANKING77 and the demo shop's data (docs/classifier.md, "Tuning").
DEFAULT_C = 10.0
# Below this calibrated confidence the label is "other" and a human reads it.
DEFAULT_THRESHOLD = 0.35
OTHER_LABEL = "other"
