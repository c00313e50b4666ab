from apiflask import Schema
from apiflask.fields import Boolean, Float, Integer, List, Nested, String
from marshmallow import ValidationError

from ..schemas import QuerySchema
from .cleaning import BadValue, check_region


def _known_region(value: str) -> bool:
    try:
        check_region(value)
    except BadValue as error:
        raise ValidationError(str(error)) from error
    return True


class CustomerImportQuery(QuerySchema):
    default_region = String(
        validate=_known_region,
        metadata={
            "description": "Country of phone numbers written without +country code (ISO 3166 alpha-2). "
            "Without it such numbers are dropped with a warning.",
            "example": "GB",
        },
    )
    dry_run = Boolean(load_default=False, metadata={"description": "Clean, compare and count, but store nothing."})


class ImportedRow(Schema):
    line = Integer(required=True, metadata={"description": "Line in the file; the header is line 1."})
    reason = String(required=True)
    values = List(String(), required=True, metadata={"description": "The row as read, in the order of `columns`."})


class FailedBatchOut(Schema):
    first_line = Integer(required=True)
    last_line = Integer(required=True)
    records = Integer(required=True, metadata={"description": "Customers in the batch, none of them stored."})
    error = String(required=True)


class CustomerImportResult(Schema):
    read = Integer(required=True, metadata={"description": "Rows read (blank lines are skipped)."})
    created = Integer(required=True)
    updated = Integer(required=True)
    unchanged = Integer(required=True)
    merged = Integer(required=True, metadata={"description": "Rows folded into an earlier row with the same e-mail."})
    rejected = Integer(required=True)
    failed = Integer(required=True, metadata={"description": "Customers of batches that were rolled back."})
    warnings = Integer(required=True)
    cleaning_rate = Float(required=True, metadata={"description": "Rows not rejected, as a percentage of the rows read."})
    dry_run = Boolean(required=True)
    columns = List(String(), required=True, metadata={"description": "The file's header."})
    rejected_rows = List(Nested(ImportedRow), required=True)
    warning_rows = List(
        Nested(ImportedRow), required=True, metadata={"description": "Imported, but a value was dropped or filled in (bad phone, no name)."}
    )
    failed_batches = List(Nested(FailedBatchOut), required=True)
