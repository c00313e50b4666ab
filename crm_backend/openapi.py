"""The APIFlask application class, with one fix to OpenAPI generation and ids bounded in URLs."""

from apiflask import APIFlask
from apispec.ext.marshmallow.common import make_schema_key
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from .db import MAX_ID


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: an id above any row's (MAX_ID) is a 404
    at once instead of overflowing in the database query (a 500)."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if number > MAX_ID:
            raise NotFound(f"There is nothing with the id {value[:30]}; ids go up to {MAX_ID}.")
        return number


def require_bodies_with_required_fields(spec: dict) -> dict:
    """A request body whose schema has required fields is itself required.

    APIFlask leaves ``requestBody.required`` out, which says a request with
    no body at all is valid; the API answers it 422 (fields missing).
    """
    schemas = spec.get("components", {}).get("schemas", {})
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for media in body.get("content", {}).values():
                schema = media.get("schema", {})
                ref = schema.get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    schema = schemas.get(ref.rsplit("/", 1)[1], {})
                if schema.get("required"):
                    body["required"] = True
    return spec


class CRMApp(APIFlask):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.url_map.converters["int"] = IdConverter

    def _get_spec(self, spec_format=None, force_update=False):
        fresh = self._spec is None or force_update
        spec = super()._get_spec(spec_format, force_update)
        if fresh and isinstance(spec, dict):
            require_bodies_with_required_fields(spec)
        return spec

    def _register_schema_and_get_ref(self, spec, registered_schema_classes, schema_obj):
        # APIFlask 3.1 does not see schemas that apispec registered while
        # resolving a Nested field (CustomerPage.items -> CustomerOut) and adds
        # a duplicate "CustomerOut1". Reuse apispec's component instead;
        # tests/backend/test_openapi.py fails if this stops working.
        plugin = getattr(self, "_ma_plugin", None)
        if plugin is not None and not isinstance(schema_obj, type) and not schema_obj.partial:
            name = plugin.converter.refs.get(make_schema_key(schema_obj))
            if name is not None:
                return {"$ref": f"#/components/schemas/{name}"}
        return super()._register_schema_and_get_ref(spec, registered_schema_classes, schema_obj)
