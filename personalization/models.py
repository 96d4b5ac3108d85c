"""What the plugin stores: shopper events and privacy choices."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EventKind(models.TextChoices):
    VIEW = "view", _("product view")
    CART_ADD = "cart_add", _("added to cart")
    CART_REMOVE = "cart_remove", _("removed from cart")
    PURCHASE = "purchase", _("purchase")
    IMPRESSION = "impression", _("recommendation impression")
    CLICK = "click", _("recommendation click")


class EventSource(models.TextChoices):
    LIVE = "live", _("live store")
    IMPORT = "import", _("CSV import")
    DEMO = "demo", _("synthetic demo data")


class Event(models.Model):
    """One thing a shopper did. Anonymous shoppers are known by their session key until they log in.

    Quantities are deltas: a cart_add of 2 then a cart_remove of 1 leaves one in the cart.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices)
    # The signed-in shopper's user primary key, as text. Imported history may name shoppers who
    # have no account (yet); their events join the account whose key matches.
    user_id = models.CharField(_("user id"), max_length=64, blank=True)
    session_key = models.CharField(_("session key"), max_length=40, blank=True, db_index=True)
    # The host's product primary key, as text so any key type fits. Imported history may
    # name products the store no longer sells.
    product_id = models.CharField(_("product id"), max_length=64, db_index=True)
    category = models.CharField(_("category"), max_length=128, blank=True)
    quantity = models.IntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2, null=True, blank=True)
    order_id = models.CharField(_("order id"), max_length=64, blank=True, db_index=True)
    # The recommendation this event is attributed to (impressions, clicks and what follows them).
    recommendation_id = models.CharField(_("recommendation id"), max_length=64, blank=True)
    # Makes re-recording idempotent: "purchase:<order line id>", "import:<order id>:<product id>".
    dedupe_key = models.CharField(max_length=160, null=True, blank=True, unique=True, editable=False)
    source = models.CharField(_("source"), max_length=8, choices=EventSource.choices, default=EventSource.LIVE)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "created_at"], name="pers_event_user_time"),
            models.Index(fields=["kind", "created_at"], name="pers_event_kind_time"),
        ]
        verbose_name = _("event")
        verbose_name_plural = _("events")

    def __str__(self):
        who = f"user {self.user_id}" if self.user_id else f"session {self.session_key[:8]}"
        return f"{self.get_kind_display()} of product {self.product_id} by {who}"


class OptOut(models.Model):
    """A shopper who asked not to be tracked or personalized: a user, or an anonymous session."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personalization_opt_out",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session key"), max_length=40, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(session_key__isnull=False),
                name="pers_optout_has_owner",
            )
        ]
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")

    def __str__(self):
        return f"user {self.user_id}" if self.user_id else f"session {self.session_key[:8]}"
