"""What an import did: counts, the rows that need a person's attention, the report file."""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..csvsafe import spreadsheet_safe
from .csvfile import Row

# rejected: not imported; warning: imported, but a value was dropped or made
# up; merged: folded into an earlier row with the same key; failed: valid,
# but its batch was rolled back.
OUTCOMES = ("rejected", "warning", "merged", "failed")


@dataclass(frozen=True)
class Issue:
    line: int
    outcome: str
    reason: str
    values: list[str]


@dataclass(frozen=True)
class FailedBatch:
    number: int
    first_line: int
    last_line: int
    records: int
    error: str


@dataclass
class BatchCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    issues: list[Issue] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportResult:
    """Every row read ends up in exactly one of created, updated, unchanged
    (one per distinct record), merged, rejected or failed."""

    columns: list[str]
    dry_run: bool = False
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    rejected: int = 0
    failed: int = 0
    issues: list[Issue] = field(default_factory=list)
    failed_batches: list[FailedBatch] = field(default_factory=list)
    # Figures particular to one kind of import (orders: customers_created).
    extra: dict[str, int] = field(default_factory=dict)

    def note(self, row: Row, outcome: str, reason: str) -> Issue:
        issue = Issue(row.line, outcome, reason, row.values)
        self.issues.append(issue)
        return issue

    def reject(self, row: Row, reason: str) -> None:
        self.rejected += 1
        self.note(row, "rejected", reason)

    def add_batch(self, counts: BatchCounts) -> None:
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.rejected += counts.rejected
        self.issues.extend(counts.issues)
        for name, value in counts.extra.items():
            self.extra[name] = self.extra.get(name, 0) + value

    def fail_batch(self, number: int, rows: list[Row], error: SQLAlchemyError) -> None:
        reason = f"batch {number} was rolled back: {describe(error)}"
        self.failed += len(rows)
        self.failed_batches.append(FailedBatch(number, rows[0].line, rows[-1].line, len(rows), reason))
        for row in rows:
            self.note(row, "failed", reason)

    @property
    def cleaning_rate(self) -> float:
        """Valid rows (not rejected) as a percentage of the rows read."""
        return round(100 * (self.read - self.rejected) / self.read, 2) if self.read else 0.0

    def listed(self, outcome: str) -> list[Issue]:
        return sorted((issue for issue in self.issues if issue.outcome == outcome), key=lambda issue: issue.line)

    def figures(self) -> dict:
        """The counts as one JSON-able object (the commands' last line)."""
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "merged": self.merged,
            "rejected": self.rejected,
            "failed": self.failed,
            **self.extra,
            "warnings": sum(1 for issue in self.issues if issue.outcome == "warning"),
            "cleaning_rate": self.cleaning_rate,
            "dry_run": self.dry_run,
        }


def describe(error: SQLAlchemyError) -> str:
    """The database's own message, first line, without SQLAlchemy's SQL and links."""
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {message[0][:300] if message else 'no message'}"


def write_in_batches(session: Session, records: list, batch_size: int, write: Callable[[list], BatchCounts], result: ImportResult, bar) -> None:
    """``write`` each batch of ``records`` (they have a ``row``) in its own transaction.

    A batch is committed, or on a database error rolled back and reported
    while the next batch goes on; a dry run rolls every batch back.
    """
    for number, batch in enumerate(chunks(records, batch_size), start=1):
        try:
            counts = write(batch)
            if result.dry_run:
                session.rollback()
            else:
                session.commit()
        except SQLAlchemyError as error:
            session.rollback()
            result.fail_batch(number, [record.row for record in batch], error)
        else:
            result.add_batch(counts)
        bar.update(len(batch))
    bar.close()


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_report(path: Path, result: ImportResult) -> int:
    """Write the rows needing attention, in file order, as CSV; returns how many."""
    issues = sorted(result.issues, key=lambda issue: (issue.line, OUTCOMES.index(issue.outcome)))
    with path.open("w", encoding="utf-8", newline="") as report:
        writer = csv.writer(report)
        writer.writerow(["line", "outcome", "reason", *result.columns])
        writer.writerows(
            [issue.line, issue.outcome, issue.reason, *map(spreadsheet_safe, issue.values)] for issue in issues
        )
    return len(issues)


class NoProgress:
    """Stands in for a tqdm bar when nobody watches."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(progress, total: int, desc: str, unit: str):
    """``progress(total=, desc=, unit=)`` (e.g. tqdm), or a bar that shows nothing."""
    return NoProgress() if progress is None else progress(total=total, desc=desc, unit=unit, leave=False)

