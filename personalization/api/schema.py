"""The OpenAPI document of this API alone, wherever the store mounts it, and the schema class of its views."""
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from personalization.api.permissions import AnyShopper


def only_this_api(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: the endpoints whose views live in personalization.api,
    but for the schema and its documentation page themselves."""
    return [
        endpoint
        for endpoint in endpoints
        if endpoint[3].cls.__module__.startswith("personalization.api.")
        and not issubclass(endpoint[3].cls, (SpectacularAPIView, SpectacularSwaggerView))
    ]


class ShopperSchema(AutoSchema):
    """drf-spectacular's AutoSchema, exact about what this API allows: an endpoint any shopper may
    call lists anonymous access beside token and cookie, every POST needs its body, and a list body
    says how many items it takes."""

    def get_auth(self):
        auths = super().get_auth()
        if {} not in auths and any(isinstance(permission, AnyShopper) for permission in self.view.get_permissions()):
            auths.append({})
        return auths

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body and self.method == "POST":
            body["required"] = True
        return body

    def _unwrap_list_serializer(self, serializer, direction):
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and is_list_serializer(serializer):
            if not serializer.allow_empty:
                schema["minItems"] = max(schema.get("minItems", 0), 1)
            if serializer.min_length is not None:
                schema["minItems"] = max(schema.get("minItems", 0), serializer.min_length)
            if serializer.max_length is not None:
                schema["maxItems"] = serializer.max_length
        return schema
