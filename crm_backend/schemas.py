"""Schema helpers shared by the API blueprints."""

from apiflask import Schema
from marshmallow import ValidationError, validates_schema


class QuerySchema(Schema):
    """Query-string schema that rejects parameters it does not declare.

    webargs excludes unknown query keys on purpose (pages often carry
    tracking parameters); for an API a typo should fail loudly instead.
    """

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _reject_unknown(self, data, original, **kwargs):
        declared = {field.data_key or name for name, field in self.fields.items()}
        unknown = sorted(set(original.keys()) - declared)
        if unknown:
            raise ValidationError({key: ["Unknown parameter."] for key in unknown})
