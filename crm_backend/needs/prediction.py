"""What a need prediction is, and the error when none can be made.

Every other module of the package imports these two; this one imports none
of them, so the package has no import cycle.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Prediction:
    label: str  # a need label, or "other" below the threshold
    confidence: float  # 0..1, of the top label
    top: list[tuple[str, float]]  # best first, up to 3


class ClassifierUnavailable(Exception):
    """No need model is loaded (none trained yet, or the file is unreadable)."""
