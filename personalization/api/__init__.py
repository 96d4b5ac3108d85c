"""The plugin's REST API for storefronts and apps: `path("api/personalization/", include("personalization.api.urls"))`.

Every endpoint answers for the shopper of the request (the signed-in user, or the anonymous
session), never for a shopper named in a parameter. Errors are JSON: {"detail", "code"} and, for
invalid input, "errors" by field.
"""
