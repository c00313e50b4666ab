"""POST /api/v1/customers/import: the CSV as the body or as a form's file.

Reads up to IMPORT_MAX_BYTES (default 10 MiB) instead of the app's 1 MiB
request limit. Commits batch by batch like the command line, so there is
no Idempotency-Key: sending the same file again updates nothing and
counts its customers as unchanged.
"""

from apiflask import APIBlueprint
from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..auth import require_scopes
from ..db import get_session
from ..problems import ApiProblem, field_problem
from .cleaning import check_region
from .csvfile import ImportFileError
from .customers import import_customers
from .results import ImportResult
from .schemas import CustomerImportQuery, CustomerImportResult

bp = APIBlueprint("imports", __name__, url_prefix="/api/v1/customers", tag="Customers")

CSV_MEDIA_TYPES = ("text/csv", "application/csv", "text/plain")
CSV_EXAMPLE = "name,email,phone\nAda Lovelace,ada@example.com,+44 20 7946 0958\ngrace hopper,GRACE@example.com,\n"
# APIFlask documents one schema for every media type of a request body, and
# these two need different ones: a CSV text, or a form with a file in it.
REQUEST_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary", "description": "The CSV file."}},
                "required": ["file"],
            }
        },
    },
}


def _too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, f"The file is larger than the import limit of {limit:,} bytes; split it, or use `crm import-customers`.")


def uploaded_csv() -> bytes:
    """The CSV's bytes from a text/csv body or a multipart form's ``file`` field."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            if upload is None:
                raise field_problem("file", "Missing data for required field.", location="files")
            return upload.read()
        if request.mimetype in CSV_MEDIA_TYPES:
            return request.get_data(cache=False)
    except RequestEntityTooLarge as error:
        raise _too_large(limit) from error
    raise ApiProblem(415, "Send the CSV as the body with Content-Type: text/csv, or as the field `file` of a multipart/form-data form.")


def _rows(result: ImportResult, outcome: str) -> list[dict]:
    return [{"line": issue.line, "reason": issue.reason, "values": issue.values} for issue in result.listed(outcome)]


@bp.post("/import")
@require_scopes("customers:write")
@bp.input(CustomerImportQuery, location="query", arg_name="query")
@bp.output(CustomerImportResult)
@bp.doc(
    summary="Import customers from a CSV file",
    description="Cleans every row (trimmed fields, e-mails checked and lower-cased, phones to E.164, "
    "names in one case title-cased), merges rows with the same e-mail, creates new customers and "
    "updates stored ones with the file's non-empty values. Header names are matched loosely "
    "(`email`, `E-mail Address`, `full_name`, `mobile`, ...); an e-mail column is required. "
    "Rejected rows come back with their reason; a bad phone number alone is dropped with a warning. "
    "Batches of 1,000 customers are committed one by one. Bodies up to `CRM_IMPORT_MAX_BYTES` "
    "(default 10 MiB) are accepted. See docs/import.md.",
    responses={
        403: "Missing scope",
        413: "File larger than the import limit",
        415: "Body neither text/csv nor multipart/form-data",
        422: "Not UTF-8, empty, no e-mail column, unreadable CSV, no file field, or a bad query parameter",
    },
    extensions={"requestBody": REQUEST_BODY},
)
def import_customers_view(query):
    data = uploaded_csv()
    try:
        result = import_customers(
            get_session(),
            data,
            default_region=check_region(query.get("default_region")),
            batch_size=current_app.config["IMPORT_BATCH_SIZE"],
            dry_run=query["dry_run"],
        )
    except ImportFileError as error:
        # Shaped like a validation error (documented so): the file is the bad field.
        where = "files" if request.mimetype == "multipart/form-data" else "body"
        raise ApiProblem(422, str(error), errors=[{"in": where, "field": "file", "message": str(error)}]) from error
    return {
        **result.figures(),
        "columns": result.columns,
        "rejected_rows": _rows(result, "rejected"),
        "warning_rows": _rows(result, "warning"),
        "failed_batches": [vars(batch) for batch in result.failed_batches],
    }
