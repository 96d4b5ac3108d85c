"""Personalized promotions: banners a shop owner aims at an audience, shown in a slot of the store's
pages (`{% promotion "slot" %}`), with a holdout group to measure what they add."""
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from personalization.cache import cache
from personalization.models.audiences import SHARE, AimedAtAudience
from personalization.models.coupons import CouponCampaign

__all__ = ["Promotion", "PromotionExposure"]

#: Image files a promotion may carry (no SVG: an uploaded SVG can hold scripts).
IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "gif", "webp", "avif"]
_CAMPAIGN_AUDIENCE = CouponCampaign.Audience


def _is_page_url(url):
    """A path on this site or an http(s) address: never a javascript: or data: link."""
    return (url.startswith("/") and not url.startswith("//")) or url.startswith(("https://", "http://"))


class Promotion(AimedAtAudience):
    """A headline, a text and an image linking to a product or a category, shown to an audience in
    a slot while its schedule runs; the highest priority wins a slot. A share of the audience, drawn
    once per shopper, is held out: they see nothing there, so that the promotion's lift can be measured."""

    class Audience(models.TextChoices):
        # The same values as coupon campaigns': services.audiences computes both.
        EVERYONE = "everyone", _("every shopper")
        SEGMENT = _CAMPAIGN_AUDIENCE.SEGMENT.value, _CAMPAIGN_AUDIENCE.SEGMENT.label
        CATEGORY_AFFINITY = _CAMPAIGN_AUDIENCE.CATEGORY_AFFINITY.value, _CAMPAIGN_AUDIENCE.CATEGORY_AFFINITY.label
        PROPENSITY = _CAMPAIGN_AUDIENCE.PROPENSITY.value, _CAMPAIGN_AUDIENCE.PROPENSITY.label
        CART_ABANDONMENT = _CAMPAIGN_AUDIENCE.CART_ABANDONMENT.value, _CAMPAIGN_AUDIENCE.CART_ABANDONMENT.label

    segment_missing = _("Choose the segment this promotion is for.")

    name = models.CharField(_("name"), max_length=120, help_text=_("For you; shoppers see the headline."))
    active = models.BooleanField(_("active"), default=True, help_text=_("Only active promotions are shown."))
    slot = models.SlugField(
        _("slot"),
        max_length=64,
        help_text=_('Where it shows: the slot a page names, as in {% promotion "home-banner" %}.'),
    )

    # What shoppers see
    headline = models.CharField(_("headline"), max_length=120)
    text = models.TextField(_("text"), max_length=600, blank=True)
    image = models.FileField(
        _("image"),
        upload_to="personalization/promotions/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
        help_text=_("Optional: a JPEG, PNG, GIF, WebP or AVIF picture."),
    )
    link_text = models.CharField(
        _("link text"), max_length=60, blank=True, help_text=_('The button\'s words. Empty: "Shop now".')
    )

    # Where it leads
    product_id = models.CharField(
        _("product"),
        max_length=64,
        blank=True,
        help_text=_("The id of the product it leads to (its page, as the store gives it). Or give a category."),
    )
    category = models.CharField(
        _("category"), max_length=128, blank=True, help_text=_("The category it leads to, as the store names it.")
    )
    category_url = models.CharField(
        _("category page"),
        max_length=255,
        blank=True,
        help_text=_("For a category: the address of its page, such as /categories/fruit/."),
    )

    # When and how often
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True, help_text=_("Empty: runs until switched off."))
    priority = models.SmallIntegerField(
        _("priority"),
        default=0,
        help_text=_("When several promotions of a slot are for a shopper, the highest priority shows."),
    )
    frequency_cap = models.PositiveIntegerField(
        _("times per shopper"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("The most times one shopper is shown it, in all; then the slot's next promotion shows. "
                    "Empty: no limit."),
    )
    holdout_share = models.DecimalField(
        _("holdout share"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.10"),
        validators=SHARE,
        help_text=_(
            "Share of the audience, from 0 to 1, shown nothing in this slot, so that what the promotion adds "
            "can be measured against them. Each shopper's group is fixed once drawn."
        ),
    )
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("Purchases within this many days of a shopper's first sight of it count for it."),
    )

    # Who
    audience = models.CharField(_("audience"), max_length=20, choices=Audience.choices, default=Audience.EVERYONE)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        ordering = ["slot", "-priority", "-created_at", "-id"]
        indexes = [models.Index(fields=["slot", "active"], name="pers_promotion_slot")]
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")

    def __str__(self):
        return self.name

    @staticmethod
    def slot_cache_key(slot):
        """Where the running promotions of a slot are cached (services.promotions); saving one clears it."""
        return f"personalization:promotions:{slot}"

    def save(self, *args, **kwargs):
        old_slot = type(self).objects.filter(pk=self.pk).values_list("slot", flat=True).first() if self.pk else None
        super().save(*args, **kwargs)
        cache.delete_many([self.slot_cache_key(s) for s in {self.slot, old_slot} if s])

    def delete(self, *args, **kwargs):
        cache.delete(self.slot_cache_key(self.slot))
        return super().delete(*args, **kwargs)

    def is_running(self, now=None):
        now = now or timezone.now()
        return self.active and self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def clean(self):
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The promotion must end after it starts.")
        if self.holdout_share is not None and not 0 <= self.holdout_share <= 1:
            errors["holdout_share"] = _("The holdout share is a number from 0 to 1, such as 0.1 for a tenth.")
        errors.update(self._link_errors())
        errors.update(self.audience_errors())
        if errors:
            raise ValidationError(errors)

    def _link_errors(self):
        product, category, url = self.product_id.strip(), self.category.strip(), self.category_url.strip()
        if not product and not category:
            return {"product_id": _("Give the product it leads to, or a category and its page.")}
        if product and (category or url):
            return {"category": _("A promotion leads to one place: give a product or a category, not both.")}
        if product:
            from personalization.adapters import get_adapter  # the host's catalog, read at validation only

            if not get_adapter().products([product]):
                return {"product_id": _("The store has no product %(id)s.") % {"id": product}}
            return {}
        if not url:
            return {"category_url": _("Give the address of the category's page, such as /categories/fruit/.")}
        if not _is_page_url(url):
            return {"category_url": _("Give a path on this site (starting with /) or an http(s) address.")}
        return {}


    @property
    def link_url(self):
        """The category page it leads to; for a product, "" (its page is read from the store when clicked)."""
        return "" if self.product_id else self.category_url


class PromotionExposure(models.Model):
    """A shopper of the promotion's audience it was to be shown to, with their group: recorded once
    per shopper, the first time. Treatment shoppers are shown it (`impressions` counts, for the
    frequency cap); holdout shoppers see nothing. Their purchases after `first_seen` measure the lift.

    `shopper_key` is "u<user id>" or "s<session key>"; a session's row gets the user id when the
    shopper signs in."""

    class Group(models.TextChoices):
        TREATMENT = "treatment", _("shown it")
        HOLDOUT = "holdout", _("held out")

    promotion = models.ForeignKey(
        Promotion, on_delete=models.CASCADE, related_name="exposures", verbose_name=_("promotion")
    )
    shopper_key = models.CharField(max_length=48)
    user_id = models.CharField(_("user id"), max_length=64, blank=True, db_index=True)
    session_key = models.CharField(_("session key"), max_length=40, blank=True)
    group = models.CharField(_("group"), max_length=9, choices=Group.choices)
    impressions = models.PositiveIntegerField(_("times shown"), default=0)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)

    class Meta:
        ordering = ["first_seen", "id"]
        constraints = [
            models.UniqueConstraint(fields=["promotion", "shopper_key"], name="pers_promotion_exposure_once")
        ]
        verbose_name = _("promotion exposure")
        verbose_name_plural = _("promotion exposures")

    def __str__(self):
        return gettext("%(promotion)s / %(shopper)s: %(group)s") % {
            "promotion": self.promotion,
            "shopper": self.shopper_key[:9],
            "group": self.get_group_display(),
        }
