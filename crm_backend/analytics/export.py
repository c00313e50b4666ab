"""Tables as CSV files (RFC 4180), for the API's ?format=csv and the dashboard's downloads."""

import csv
import io
from datetime import date, datetime

from flask import Response

from ..csvsafe import spreadsheet_safe
from .queries import Table


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return spreadsheet_safe(value)


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_cell(row.get(column)) for column in table.columns])
    return buffer.getvalue()


def csv_response(table: Table, filename: str) -> Response:
    return Response(
        to_csv(table),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
