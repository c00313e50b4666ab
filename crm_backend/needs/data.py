"""Reading labelled text from CSV, with one clear sentence for every bad file."""

import csv
from pathlib import Path


class DataError(ValueError):
    """The file cannot be used as training or test data; the message says why."""


def read_labelled_csv(path: str | Path, text_column: str = "text", label_column: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels of a CSV; rows with an empty text or label are skipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        content = raw.decode("utf-8-sig")  # tolerate the BOM spreadsheet programs write
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8 CSV"
        ) from error
    if not content.strip():
        raise DataError(f"{path} is empty; it needs a header row with {text_column!r} and {label_column!r} and labelled rows")
    reader = csv.DictReader(content.splitlines(), strict=True)
    columns = reader.fieldnames or []
    missing = [column for column in (text_column, label_column) if column not in columns]
    if missing:
        raise DataError(
            f"{path} has no column {' or '.join(map(repr, missing))} (its columns: {', '.join(columns) or 'none'}); "
            "name them with --text-column and --label-column"
        )
    texts: list[str] = []
    labels: list[str] = []
    try:
        for row in reader:
            text = (row.get(text_column) or "").strip()
            label = (row.get(label_column) or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    except csv.Error as error:
        raise DataError(f"{path} is not valid CSV (line {reader.line_num}: {error})") from error
    if not texts:
        raise DataError(f"{path} has a header but no rows with both a text and a label")
    distinct = set(labels)
    if len(distinct) < 2:
        raise DataError(f"{path} has only one label ({labels[0]!r}); a classifier needs at least two")
    return texts, labels
