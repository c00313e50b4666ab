"""Agents' corrections of a ticket's need, folded into the next training run.

Whoever stores corrections (the tickets area stores an agent's category
change) registers a source: a callable returning ``Correction`` values. `crm
classifier train` asks every registered source, and also reads a CSV given
with ``--corrections`` (columns text, label, corrected_at) for corrections
kept elsewhere.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask

from .data import DataError


@dataclass(frozen=True)
class Correction:
    text: str
    label: str
    corrected_at: datetime


CorrectionSource = Callable[[], Iterable[Correction]]


class CorrectionsUnavailable(RuntimeError):
    """A source could not be read (say, the database is not migrated yet)."""


def ticket_corrections() -> list[Correction]:
    """Tickets whose category an agent set or corrected by hand.

    ``updated_at`` stands in for the time of the correction: any later edit
    of the ticket makes it newer, which only matters if the same text was
    labelled differently elsewhere.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from ..db import get_session
    from ..models import Ticket

    session = get_session()
    try:
        tickets = session.scalars(select(Ticket).where(Ticket.category_source == "manual")).all()
    except SQLAlchemyError as error:
        session.rollback()
        raise CorrectionsUnavailable(
            f"agents' corrections could not be read from the database ({error.__class__.__name__}; is it migrated? run `crm init-db`)"
        ) from error
    return [
        Correction(f"{ticket.subject}\n{ticket.description}", ticket.category, ticket.updated_at)
        for ticket in tickets
    ]


def register_source(app: Flask, source: CorrectionSource) -> None:
    app.extensions.setdefault("need_correction_sources", []).append(source)


def collect(app: Flask) -> list[Correction]:
    corrections: list[Correction] = []
    for source in app.extensions.get("need_correction_sources", []):
        corrections.extend(source())
    return corrections


def read_corrections_csv(path: str | Path) -> list[Correction]:
    """Corrections from a CSV; without a corrected_at column, later rows are newer."""
    import csv

    path = Path(path)
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text (offset {error.start}); save it as UTF-8 CSV") from error
    reader = csv.DictReader(content.splitlines())
    missing = [column for column in ("text", "label") if column not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path} has no column {' or '.join(map(repr, missing))}; corrections need text, label and optionally corrected_at")
    corrections = []
    try:
        for position, row in enumerate(reader):
            text, label = (row.get("text") or "").strip(), (row.get("label") or "").strip()
            if not (text and label):
                continue
            stamp = (row.get("corrected_at") or "").strip()
            try:
                when = datetime.fromisoformat(stamp) if stamp else datetime.fromtimestamp(position, timezone.utc)
            except ValueError as error:
                raise DataError(f"{path} line {reader.line_num}: corrected_at {stamp!r} is not an ISO 8601 date-time") from error
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            corrections.append(Correction(text, label, when))
    except csv.Error as error:
        raise DataError(f"{path} is not valid CSV (line {reader.line_num}: {error})") from error
    return corrections


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def merge(texts: list[str], labels: list[str], corrections: list[Correction]) -> tuple[list[str], list[str], int]:
    """Training rows with corrections applied: for the same text (ignoring case
    and spacing) the newest correction wins over older ones and over the CSV.
    Returns the texts, labels and how many corrections were used."""
    newest: dict[str, Correction] = {}
    for correction in corrections:
        key = _key(correction.text)
        if key not in newest or correction.corrected_at >= newest[key].corrected_at:
            newest[key] = correction
    merged = [(text, label) for text, label in zip(texts, labels) if _key(text) not in newest]
    merged.extend((correction.text, correction.label) for correction in newest.values())
    return [text for text, _ in merged], [label for _, label in merged], len(newest)
