"""The OpenAPI document of this API alone, wherever the store mounts it."""


def only_this_api(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: the endpoints whose views live in personalization.api."""
    return [endpoint for endpoint in endpoints if endpoint[3].cls.__module__.startswith("personalization.api.")]
