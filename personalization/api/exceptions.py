"""The API's errors: typed exceptions, and the handler that gives every error one JSON shape.

    {"detail": "limit: Ensure this value is less than or equal to 48.", "code": "invalid",
     "errors": {"limit": ["Ensure this value is less than or equal to 48."]}}

`errors` comes with invalid input only. An unexpected failure is logged and answered with 503
(`unavailable`), never with a 500 page.
"""
import logging

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("personalization.api")


class UnknownPlacement(NotFound):
    default_detail = _("There is no placement with this slug.")
    default_code = "unknown_placement"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("This is not available right now. Please try again later.")
    default_code = "unavailable"


class CouponRejected(APIException):
    """A coupon that does not apply; the detail is the coupon service's message for the shopper."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("This coupon code is not valid.")
    default_code = "invalid_coupon"


def exception_handler(exc, context):
    """DRF's handler, with one body shape for every error and a logged 503 for unexpected failures."""
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.error("%s failed", type(view).__name__ if view else "The API", exc_info=exc)
        exc = ServiceUnavailable()
        response = drf_exception_handler(exc, context)
    response.data = error_body(exc, response.data)
    return response


def error_body(exc, data):
    if isinstance(exc, ValidationError):
        return {"detail": _first_messages(data), "code": "invalid", "errors": data}
    detail = getattr(exc, "detail", data)
    code = detail.code if hasattr(detail, "code") else getattr(exc, "default_code", "error")
    return {"detail": str(detail), "code": code}


def _first_messages(errors, prefix=""):
    """'field: message; other: message' from DRF's nested errors (the first message of each field);
    the items of a list body are named by position, '[1].kind: ...'."""
    if isinstance(errors, dict):
        parts = [_first_messages(value, _name(prefix, key)) for key, value in errors.items()]
    elif isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return f"{prefix}: {errors[0]}" if prefix and prefix != "non_field_errors" else str(errors[0])
    elif isinstance(errors, list):
        parts = [_first_messages(value, _name(prefix, i)) for i, value in enumerate(errors) if value]
    else:
        return f"{prefix}: {errors}" if prefix else str(errors)
    return "; ".join(part for part in parts if part)


def _name(prefix, key):
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)
