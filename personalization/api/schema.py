"""The OpenAPI document of this API alone, wherever the store mounts it."""
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def only_this_api(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: the endpoints whose views live in personalization.api,
    but for the schema and its documentation page themselves."""
    return [
        endpoint
        for endpoint in endpoints
        if endpoint[3].cls.__module__.startswith("personalization.api.")
        and not issubclass(endpoint[3].cls, (SpectacularAPIView, SpectacularSwaggerView))
    ]
