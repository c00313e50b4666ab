"""The APIFlask application class, with one fix to OpenAPI generation."""

from apiflask import APIFlask
from apispec.ext.marshmallow.common import make_schema_key


class CRMApp(APIFlask):
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
