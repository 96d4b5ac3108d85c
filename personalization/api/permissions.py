"""Who may call each endpoint. What is served always belongs to the shopper of the request."""
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission, IsAuthenticated


class AnyShopper(BasePermission):
    """Signed-in or anonymous: an anonymous shopper is their session (or nobody, before it has one)."""

    def has_permission(self, request, view):
        return True


class SignedInShopper(IsAuthenticated):
    """Only a signed-in shopper: coupons belong to an account."""

    message = _("Sign in to use your coupons.")
