"""The plugin's settings: one dict, `PERSONALIZATION`, read through `conf.settings`.

    PERSONALIZATION = {"PRODUCT_MODEL": "shop.Product", ...}

Unknown keys are rejected, nested field maps are merged with their defaults, dotted paths are
imported lazily and cached, and `override_settings(PERSONALIZATION=...)` takes effect at once.
"""
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS = {
    # The class that knows the host store's models. A dotted path to a StoreAdapter subclass.
    "ADAPTER": "personalization.adapters.ModelAdapter",
    # The product model ("app_label.Model") and where its attributes live. Values are field
    # names or lookups through relations ("category__name"). "url" names a method or attribute
    # (default: get_absolute_url). A field mapped to None is treated as absent.
    # Paths through a reverse foreign key or a many-to-many relation ("stockrecords__price",
    # "categories__name") are reduced in the database: price = the lowest, stock = the sum minus
    # the sum of "stock_allocated" (0 with no rows), category = the first name alphabetically, with every
    # name kept for the placements' category rules.
    "PRODUCT_MODEL": None,
    "PRODUCT_FIELDS": {
        "id": "pk",
        "title": "title",
        "category": "category",
        "price": "price",
        "stock": "stock",
        "stock_allocated": None,
        "active": "active",
        "url": "get_absolute_url",
    },
    # The cart-line model: who owns the cart (a user and/or a session key), the product, the quantity.
    "CART_LINE_MODEL": None,
    "CART_LINE_FIELDS": {
        "user": "cart__user",
        "session_key": "cart__session_key",
        "product": "product",
        "quantity": "quantity",
    },
    # Which cart lines are a shopper's cart now, as {field path: value} (all must equal), e.g.
    # {"basket__status": "Open"} where submitted carts keep their lines. {}: every line.
    "CART_LINE_FILTER": {},
    # The order-line model: its order, the buyer, product, quantity, unit price and order time.
    "ORDER_LINE_MODEL": None,
    "ORDER_LINE_FIELDS": {
        "order": "order",
        "user": "order__user",
        "product": "product",
        "quantity": "quantity",
        "unit_price": "unit_price",
        "ordered_at": "order__created_at",
    },
    # The signal sent when an order is placed, with the order as `order` (or `instance`).
    # None: the order model's post_save, recorded once the order's lines exist.
    "ORDER_PLACED_SIGNAL": None,
    # The store's page layout that the plugin's own page (the privacy choice) extends, filling its
    # {% block title %} and {% block content %}.
    "PAGE_TEMPLATE": "base.html",
    # How many reverse proxies in front of the store append to X-Forwarded-For: the API's anonymous
    # throttles count requests by the address the outermost one saw. 0: REMOTE_ADDR, no header believed.
    "TRUSTED_PROXIES": 0,
    # The currency symbol the dashboard writes before money (revenue), e.g. "€".
    "CURRENCY_SYMBOL": "$",
    # Master switch for recording events.
    "RECORD_EVENTS": True,
    # Events older than this many days are deleted by purge_expired_events(). None keeps them all.
    "RETENTION_DAYS": 365,
    # Products' facts (title, price, stock, active, categories, URL) that the shop's rules read are
    # remembered in each web process between requests, until a product (or a model its fields pass
    # through, like a stock record) is saved or deleted, and at most this many seconds: the bound for
    # changes that send no signal (QuerySet.update(), raw SQL). 0 reads every product on every request.
    "PRODUCT_FACTS_SECONDS": 30,
    # Repeated views of one product by one shopper within this many seconds count once.
    "VIEW_DEDUPE_SECONDS": 60,
    # The Celery queue training goes to, e.g. "gpu" for workers on GPU hosts started with
    # `celery -A shop worker -Q gpu`. None: the default queue, like every other task.
    "TRAINING_QUEUE": None,
    # After a retrain promotes a model, the recommendations of shoppers active within this many days
    # are computed by workers before they visit. 0 turns it off.
    "PRECOMPUTE_ACTIVE_DAYS": 7,
}

# Keys whose values are dicts merged key by key with the defaults.
NESTED = ("PRODUCT_FIELDS", "CART_LINE_FIELDS", "ORDER_LINE_FIELDS")
# Keys holding dotted paths to import.
IMPORT_STRINGS = ("ADAPTER", "ORDER_PLACED_SIGNAL")


class PersonalizationSettings:
    """Attribute access to the merged settings, e.g. `settings.RETENTION_DAYS`."""

    def __init__(self):
        self._cache = {}

    @property
    def user_settings(self):
        return getattr(django_settings, "PERSONALIZATION", None) or {}

    def unknown_keys(self):
        known = set(DEFAULTS)
        unknown = sorted(set(self.user_settings) - known)
        for key in NESTED:
            nested = self.user_settings.get(key) or {}
            unknown += [f"{key}.{name}" for name in sorted(set(nested) - set(DEFAULTS[key]))]
        return unknown

    def __getattr__(self, name):
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid PERSONALIZATION setting: {name!r}")
        if name in self._cache:
            return self._cache[name]
        unknown = self.unknown_keys()
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown PERSONALIZATION setting(s): {', '.join(unknown)}. Known settings: {', '.join(DEFAULTS)}."
            )
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in NESTED:
            value = {**DEFAULTS[name], **(value or {})}
        if name in IMPORT_STRINGS and isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError as exc:
                raise ImproperlyConfigured(f"PERSONALIZATION[{name!r}] = {value!r} cannot be imported: {exc}") from exc
        self._cache[name] = value
        return value

    def reload(self):
        self._cache.clear()


settings = PersonalizationSettings()


def _reload(*, setting, **kwargs):
    if setting == "PERSONALIZATION":
        settings.reload()


setting_changed.connect(_reload, dispatch_uid="personalization.conf.reload")
