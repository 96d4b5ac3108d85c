"""Personalized coupons: the campaigns a shop owner sets up, the coupons they issue, and who was held out."""
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from personalization.models.audiences import SHARE, AimedAtAudience

__all__ = ["CouponCampaign", "Coupon", "CouponAssignment"]

CENT = Decimal("0.01")


class CouponCampaign(AimedAtAudience):
    """Who gets a coupon, how much it takes off, for which carts, and how much may be given away in all."""

    class DiscountKind(models.TextChoices):
        PERCENT = "percent", _("percentage of the cart")
        FIXED = "fixed", _("fixed amount")

    class Audience(models.TextChoices):
        SEGMENT = "segment", _("shopper segment")
        CATEGORY_AFFINITY = "category_affinity", _("affinity to a category")
        PROPENSITY = "propensity", _("purchase propensity range")
        CART_ABANDONMENT = "cart_abandonment", _("abandoned cart")
        LIKELY_TO_REDEEM = "likely_to_redeem", _("likely to redeem")

    segment_missing = _("Choose the segment this campaign is for.")

    name = models.CharField(_("name"), max_length=120)
    active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Only active campaigns issue coupons, and only their coupons can be used."),
    )

    # The discount
    discount_kind = models.CharField(
        _("discount kind"), max_length=8, choices=DiscountKind.choices, default=DiscountKind.PERCENT
    )
    discount_value = models.DecimalField(
        _("discount"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(CENT)],
        # xgettext:no-python-format
        help_text=_("A percentage (10 means 10% off the cart) or an amount taken off the cart."),
    )
    max_discount = models.DecimalField(
        _("maximum discount"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(CENT)],
        help_text=_("The most one coupon takes off. Empty: no maximum beyond the cart's value."),
    )

    # Which carts
    min_cart_total = models.DecimalField(
        _("minimum cart value"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("The cart must be worth at least this much before the discount."),
    )
    categories = models.TextField(
        _("categories"),
        blank=True,
        help_text=_(
            "Category names as the store names them, one per line or separated by commas: the cart must hold "
            "a product of one of them. Empty: any cart."
        ),
    )

    # Who
    audience = models.CharField(_("audience"), max_length=20, choices=Audience.choices)
    audience_size = models.PositiveIntegerField(
        _("shoppers to reach"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "For a likely to redeem audience: how many shoppers, the likeliest first: those who redeemed the most "
            "of the store's coupons before, then those who bought the most lines in the campaign's categories "
            "(in any category when none are listed)."
        ),
    )

    # Limits
    budget = models.DecimalField(
        _("budget"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(CENT)],
        help_text=_("The most this campaign gives away in discounts, all coupons together. Never exceeded."),
    )
    spent = models.DecimalField(_("spent"), max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False)
    per_shopper_limit = models.PositiveSmallIntegerField(
        _("coupons per shopper"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_(
            "How many coupons of this campaign one shopper can get in all; a new one only once the last is used "
            "or expired."
        ),
    )
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True, help_text=_("Empty: runs until switched off."))
    coupon_valid_days = models.PositiveSmallIntegerField(
        _("coupon valid for (days)"),
        default=14,
        validators=[MinValueValidator(1)],
        help_text=_("Days from issuing until a coupon expires (never after the campaign ends)."),
    )
    holdout_share = models.DecimalField(
        _("holdout share"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.10"),
        validators=SHARE,
        help_text=_(
            "Share of the audience, from 0 to 1, that gets no coupon, so that the campaign's extra orders can be "
            "measured against them. Each shopper's group is fixed once drawn."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The budget's last line of defence: redemption updates `spent` only while this holds.
            models.CheckConstraint(
                condition=Q(spent__gte=0) & Q(spent__lte=F("budget")), name="pers_campaign_within_budget"
            ),
        ]
        verbose_name = _("coupon campaign")
        verbose_name_plural = _("coupon campaigns")

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        percent = self.discount_kind == self.DiscountKind.PERCENT
        if percent and self.discount_value is not None and self.discount_value > 100:
            errors["discount_value"] = _("A percentage discount cannot be more than 100.")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The campaign must end after it starts.")
        if self.holdout_share is not None and not 0 <= self.holdout_share <= 1:
            errors["holdout_share"] = _("The holdout share is a number from 0 to 1, such as 0.1 for a tenth.")
        if self.budget is not None and self.budget < self.spent:
            errors["budget"] = _("The budget cannot be less than what has already been given away (%(spent)s).") % {
                "spent": self.spent
            }
        errors.update(self._audience_errors())
        if errors:
            raise ValidationError(errors)

    def _audience_errors(self):
        errors = self.audience_errors()
        if self.audience == self.Audience.LIKELY_TO_REDEEM and not self.audience_size:
            errors["audience_size"] = _("Give how many shoppers the campaign should reach, at least 1.")
        return errors

    @property
    def category_names(self):
        """The eligible categories, as listed (empty: any)."""
        return [name.strip() for name in self.categories.replace("\n", ",").split(",") if name.strip()]

    def discount_for(self, cart_total):
        """What a coupon takes off a cart worth `cart_total`: never more than the maximum or the cart."""
        cart_total = Decimal(cart_total)
        if self.discount_kind == self.DiscountKind.PERCENT:
            amount = cart_total * self.discount_value / 100
        else:
            amount = self.discount_value
        if self.max_discount is not None:
            amount = min(amount, self.max_discount)
        return max(min(amount, cart_total), Decimal("0")).quantize(CENT, rounding=ROUND_HALF_UP)

    def is_running(self, now=None):
        now = now or timezone.now()
        return self.active and self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def expiry_for(self, issued_at):
        expires = issued_at + timedelta(days=self.coupon_valid_days)
        return min(expires, self.ends_at) if self.ends_at else expires


class Coupon(models.Model):
    """One single-use code for one shopper. `discount` is what it took off, once redeemed."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("issued")
        REDEEMED = "redeemed", _("redeemed")
        EXPIRED = "expired", _("expired")

    code = models.CharField(_("code"), max_length=32, unique=True, editable=False)
    campaign = models.ForeignKey(
        CouponCampaign, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("campaign")
    )
    # None once the shopper was forgotten (privacy.forget) and the coupon, redeemed, stays for the books.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="personalization_coupons",
        verbose_name=_("shopper"),
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    redeemed_at = models.DateTimeField(_("redeemed"), null=True, blank=True)
    # The host's order primary key, as text.
    order_id = models.CharField(_("order id"), max_length=64, blank=True, db_index=True)
    discount = models.DecimalField(_("discount granted"), max_digits=10, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["user", "status", "expires_at"], name="pers_coupon_user_open")]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")

    def __str__(self):
        return self.code


class CouponAssignment(models.Model):
    """Which group an eligible shopper was drawn into: coupons for the treatment group, none for the
    holdout. Comparing the two groups' orders after `assigned_at` measures what the campaign added."""

    class Group(models.TextChoices):
        TREATMENT = "treatment", _("gets coupons")
        HOLDOUT = "holdout", _("held out")

    campaign = models.ForeignKey(
        CouponCampaign, on_delete=models.CASCADE, related_name="assignments", verbose_name=_("campaign")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="personalization_coupon_assignments",
        verbose_name=_("shopper"),
    )
    group = models.CharField(_("group"), max_length=9, choices=Group.choices)
    assigned_at = models.DateTimeField(_("assigned"), default=timezone.now)

    class Meta:
        ordering = ["-assigned_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "user"], name="pers_one_assignment_per_shopper")]
        verbose_name = _("coupon assignment")
        verbose_name_plural = _("coupon assignments")

    def __str__(self):
        return gettext("%(campaign)s / user %(user)s: %(group)s") % {
            "campaign": self.campaign,
            "user": self.user_id,
            "group": self.get_group_display(),
        }
