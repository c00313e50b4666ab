"""Need models shared by the classifier tests, fitted once per session on the
demo shop's data (into a temp dir; never the repo's models/)."""

import csv
from pathlib import Path

import pytest

from crm_backend.needs.model import fit, save

REPO = Path(__file__).resolve().parents[2]
DEMO_TRAIN = REPO / "data" / "needs" / "train.csv"
DEMO_TEST = REPO / "data" / "needs" / "test.csv"


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def demo_model():
    return fit(*read_csv(DEMO_TRAIN))


@pytest.fixture(scope="session")
def demo_model_path(demo_model, tmp_path_factory) -> Path:
    return save(demo_model, tmp_path_factory.mktemp("needs") / "needs.skops")


@pytest.fixture(scope="session")
def tiny_model():
    """Two labels, quick to fit: a different model to swap in."""
    rows = [("where is my parcel", "order_status"), ("has my order shipped", "order_status"),
            ("tracking has not updated", "order_status"), ("when will it arrive", "order_status"),
            ("my kettle is broken", "broken"), ("the pan arrived cracked", "broken"),
            ("toaster stopped working", "broken"), ("the handle snapped off", "broken")]
    return fit([text for text, _ in rows], [label for _, label in rows])
