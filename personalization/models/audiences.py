"""Who a coupon campaign or a promotion is aimed at: the fields that describe an audience and their
checks, shared by both (services.audiences computes the members)."""
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

SHARE = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))]


class AimedAtAudience(models.Model):
    """An owner's tool aimed at an audience: the model has an `audience` field and an `Audience`
    choices class with (at least) SEGMENT, CATEGORY_AFFINITY, PROPENSITY and CART_ABANDONMENT, and
    says what a segment audience without its segment lacks in `segment_missing`."""

    segment = models.PositiveSmallIntegerField(
        _("segment"),
        null=True,
        blank=True,
        help_text=_("For a segment audience: the segment's number as listed with the active shopper autoencoder."),
    )
    affinity_category = models.CharField(
        _("affinity category"),
        max_length=128,
        blank=True,
        help_text=_("For a category affinity audience: the category, as the store names it."),
    )
    affinity_share = models.DecimalField(
        _("minimum share of purchases"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=SHARE,
        help_text=_("For a category affinity audience: at least this share of the shopper's purchases, from 0 to 1."),
    )
    propensity_min = models.DecimalField(
        _("minimum purchase propensity"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=SHARE,
        help_text=_("For a propensity audience: the lowest probability of ordering soon, from 0 to 1 (empty: 0)."),
    )
    propensity_max = models.DecimalField(
        _("maximum purchase propensity"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=SHARE,
        help_text=_("For a propensity audience: the highest probability of ordering soon, from 0 to 1 (empty: 1)."),
    )
    abandoned_hours = models.PositiveIntegerField(
        _("cart idle for (hours)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("For an abandoned cart audience: hours since the shopper last changed a cart they did not buy."),
    )

    class Meta:
        abstract = True

    def audience_errors(self):
        """{field: message} of what the chosen audience lacks."""
        audience, errors = type(self).Audience, {}
        if self.audience == audience.SEGMENT and self.segment is None:
            errors["segment"] = self.segment_missing
        if self.audience == audience.CATEGORY_AFFINITY:
            if not self.affinity_category.strip():
                errors["affinity_category"] = _("Name the category shoppers should favour.")
            if self.affinity_share is None:
                errors["affinity_share"] = _("Give the share of purchases, such as 0.3 for 30%.")
            elif not 0 < self.affinity_share <= 1:
                errors["affinity_share"] = _("The share is a number above 0 and at most 1.")
        if self.audience == audience.PROPENSITY:
            low, high = self.propensity_min, self.propensity_max
            if low is None and high is None:
                errors["propensity_min"] = _("Give a minimum or a maximum propensity (or both), from 0 to 1.")
            elif low is not None and high is not None and low > high:
                errors["propensity_max"] = _("The maximum cannot be below the minimum.")
        if self.audience == audience.CART_ABANDONMENT and not self.abandoned_hours:
            errors["abandoned_hours"] = _("Give how many hours a cart must be idle, at least 1.")
        return errors
