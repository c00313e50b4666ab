"""Reading an uploaded CSV: UTF-8 only, any common delimiter, headers by alias.

Whole-file problems (not UTF-8, empty, no e-mail column, unreadable CSV)
raise ``ImportFileError`` with one sentence for the user; single bad rows
are the caller's business.
"""

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

# Tried on the header line; the one that occurs most is the file's delimiter
# (spreadsheets in much of Europe save CSV with semicolons).
DELIMITERS = (",", ";", "\t", "|")
NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; ``str()`` is one sentence for the user."""


@dataclass(frozen=True)
class Row:
    line: int  # where the record starts, counting from the header as line 1
    values: list[str]  # as read, not cleaned


@dataclass(frozen=True)
class Table:
    header: list[str]
    columns: dict[str, list[int]]  # field -> indexes of the columns that hold it, in file order
    rows: list[Row]

    def value(self, row: Row, field: str) -> str:
        """The first non-blank value of ``field`` in ``row`` ("" if none)."""
        for index in self.columns.get(field, ()):
            if index < len(row.values) and row.values[index].strip():
                return row.values[index]
        return ""


def decode(data: bytes) -> str:
    """The file's text; UTF-8 with or without a byte-order mark, else an error."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ImportFileError(
            f"The file is not UTF-8 text (line {line} has a byte that is not UTF-8); "
            'save it as "CSV UTF-8" and import it again.'
        ) from error
    if not text.strip():
        raise ImportFileError("The file is empty.")
    return text


def header_key(name: str) -> str:
    """"E-mail Address", "email_address" and "EmailAddress" all give "emailaddress"."""
    return NOT_ALPHANUMERIC.sub("", name.lower())


def _delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    return max(DELIMITERS, key=first_line.count) if any(d in first_line for d in DELIMITERS) else ","


def _map_columns(header: list[str], aliases: Mapping[str, tuple[str, ...]]) -> dict[str, list[int]]:
    field_of = {header_key(alias): field for field, names in aliases.items() for alias in names}
    columns: dict[str, list[int]] = {}
    for index, name in enumerate(header):
        field = field_of.get(header_key(name))
        if field is not None:
            columns.setdefault(field, []).append(index)
    return columns


def read_table(text: str, aliases: Mapping[str, tuple[str, ...]], required: tuple[str, ...]) -> Table:
    """Parse ``text``: the first non-blank line is the header, matched against
    each field's ``aliases`` (compared by ``header_key``).

    Columns that match no alias are ignored; blank lines are skipped.
    """
    body = text.lstrip("\r\n")
    skipped = text.count("\n", 0, len(text) - len(body))
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=_delimiter(body))
    try:
        header = next(reader, [])
        rows = []
        end_of_previous = reader.line_num
        for values in reader:
            if any(value.strip() for value in values):
                rows.append(Row(skipped + end_of_previous + 1, values))
            end_of_previous = reader.line_num
    except csv.Error as error:
        raise ImportFileError(f"The file is not readable as CSV after line {skipped + reader.line_num}: {error}.") from error
    columns = _map_columns(header, aliases)
    for field in required:
        if field not in columns:
            raise ImportFileError(_missing_column(field, aliases[field], header))
    if not rows:
        raise ImportFileError("The file has a header line but no rows.")
    return Table([name.strip() for name in header], columns, rows)


def _missing_column(field: str, names: tuple[str, ...], header: list[str]) -> str:
    found = ", ".join(repr(name.strip()) for name in header if name.strip()) or "none"
    return f"The file has no {field.replace('_', ' ')} column (a header such as {', '.join(names[:3])}); its columns are: {found}."
