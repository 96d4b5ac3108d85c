"""Placements: the recommendation units a shop owner configures, one per spot on a page."""
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from personalization.cache import cache

__all__ = ["Placement"]

#: The most items one placement may show.
MAX_LIMIT = 48


class Page(models.TextChoices):
    HOME = "home", _("home page")
    PRODUCT = "product", _("product page")
    CART = "cart", _("cart")
    ORDER_CONFIRMATION = "order_confirmation", _("order confirmation")
    ANY = "any", _("any page")


class Strategy(models.TextChoices):
    FOR_YOU = "for_you", _("for you (shopper autoencoder)")
    NEXT_BASKET = "next_basket", _("next basket (CNN)")
    BUY_AGAIN = "buy_again", _("buy again (CNN, repeats only)")
    CART_COMPLETION = "cart_completion", _("cart completion (CNN from the current cart)")
    BOUGHT_TOGETHER = "bought_together", _("bought together (with the product or the cart)")
    SIMILAR = "similar", _("similar products (learned item embeddings)")
    TRENDING = "trending", _("trending (recent popularity)")
    POPULAR = "popular", _("popular")


#: Strategies about buying again: products the shopper bought before are their point.
REPEAT_STRATEGIES = frozenset({Strategy.NEXT_BASKET, Strategy.BUY_AGAIN, Strategy.CART_COMPLETION})
#: Strategies that start from a product: the page's product, or else the products in the cart.
ANCHORED_STRATEGIES = frozenset({Strategy.BOUGHT_TOGETHER, Strategy.SIMILAR})
#: Pages where an anchored strategy finds a product or a cart to start from.
ANCHOR_PAGES = frozenset({Page.PRODUCT, Page.CART, Page.ANY})


def _names(text):
    return frozenset(name.strip().casefold() for name in text.split(",") if name.strip())


class Placement(models.Model):
    """Where recommendations appear, which strategy fills them, and the shop's rules for them.

    Products that are inactive or out of stock are never shown, whatever the rules say.
    """

    Page = Page
    Strategy = Strategy
    #: {model kind: version id} serving this placement instead of the active versions: set on the
    #: copy an experiment arm serves (services.experiments), never stored.
    model_versions = {}

    slug = models.SlugField(
        _("slug"), max_length=64, unique=True, help_text=_("The name templates use: {% recommendations \"slug\" %}.")
    )
    name = models.CharField(_("name"), max_length=100, help_text=_("Your name for it in the admin; shoppers do not see it."))
    heading = models.CharField(
        _("heading"),
        max_length=100,
        blank=True,
        help_text=_("Shown above the products. Blank: a heading that fits the strategy, in the shopper's language."),
    )
    page = models.CharField(_("page"), max_length=24, choices=Page.choices, default=Page.ANY)
    strategy = models.CharField(_("strategy"), max_length=24, choices=Strategy.choices)
    fallback_strategy = models.CharField(
        _("fallback strategy"),
        max_length=24,
        choices=Strategy.choices,
        default=Strategy.POPULAR,
        help_text=_(
            "Fills the remaining places when the strategy finds too few products (a new shopper, no trained "
            "model yet). Popular products always come last."
        ),
    )
    limit = models.PositiveSmallIntegerField(
        _("products shown"), default=8, validators=[MinValueValidator(1), MaxValueValidator(MAX_LIMIT)]
    )
    exclude_in_cart = models.BooleanField(_("leave out products in the cart"), default=True)
    exclude_purchased = models.BooleanField(
        _("leave out products the shopper bought"),
        default=True,
        help_text=_("Ignored by the next basket and buy again strategies: buying again is their point."),
    )
    include_categories = models.CharField(
        _("only these categories"),
        max_length=500,
        blank=True,
        help_text=_("Category names separated by commas. Blank: every category."),
    )
    exclude_categories = models.CharField(
        _("never these categories"), max_length=500, blank=True, help_text=_("Category names separated by commas.")
    )
    min_price = models.DecimalField(
        _("lowest price"), max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    max_price = models.DecimalField(
        _("highest price"), max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    active = models.BooleanField(_("active"), default=True, help_text=_("An inactive placement shows nothing."))
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)

    class Meta:
        ordering = ["page", "slug"]
        verbose_name = _("placement")
        verbose_name_plural = _("placements")

    def __str__(self):
        return self.name or self.slug

    def clean(self):
        errors = {}
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            errors["max_price"] = _("The highest price must not be below the lowest price.")
        if self.fallback_strategy == self.strategy:
            errors["fallback_strategy"] = _("Choose a fallback other than the strategy itself.")
        overlap = self.included_categories & self.excluded_categories
        if overlap:
            errors["exclude_categories"] = _("A category cannot be both included and excluded: %(names)s.") % {
                "names": ", ".join(sorted(overlap))
            }
        if self.strategy in ANCHORED_STRATEGIES and self.page not in ANCHOR_PAGES:
            errors["strategy"] = _(
                "This strategy starts from a product or a cart: place it on the product page, the cart or any page."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def included_categories(self):
        """Lower-cased category names; empty means every category."""
        return _names(self.include_categories)

    @property
    def excluded_categories(self):
        return _names(self.exclude_categories)

    @property
    def shows_repeats(self):
        """True when products the shopper bought before may be shown."""
        return self.strategy in REPEAT_STRATEGIES or not self.exclude_purchased

    @staticmethod
    def cache_key(slug):
        return f"personalization:placement:{slug}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        cache.delete(self.cache_key(self.slug))

    def delete(self, *args, **kwargs):
        cache.delete(self.cache_key(self.slug))
        return super().delete(*args, **kwargs)
