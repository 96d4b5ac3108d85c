"""django-oscar 4.2: the settings preset that makes an Oscar store personal.

    # settings.py
    from personalization.contrib.oscar import preset
    PERSONALIZATION = preset()          # or preset(RETENTION_DAYS=180, ...)
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "personalization.middleware.ShopperMiddleware",
                  "oscar.apps.basket.middleware.BasketMiddleware", ...]

What it reads from Oscar (the plain ModelAdapter does the rest):
- products: `catalogue.Product`, public when `is_public`; price = the lowest partner stock record
  price; stock = the stock records' `num_in_stock` minus `num_allocated` (no stock record: 0);
  category = the first of its categories by name, every one kept for category rules; the URL from
  `get_absolute_url`.
- carts: `basket.Line` of open baskets only (submitted and merged baskets keep their lines). An
  anonymous basket has no session column, so ShopperMiddleware names its shopper from the request;
  Oscar's merge at login (larger quantity, or quantities added) is recorded as it happens.
- the privacy page extends `oscar/layout.html`.
- orders: `order.Line`, recorded on `oscar.apps.order.signals.order_placed` (one purchase event per
  line; sending it again adds nothing).
"""

OSCAR_SETTINGS = {
    "PRODUCT_MODEL": "catalogue.Product",
    "PRODUCT_FIELDS": {
        "title": "title",
        "category": "categories__name",
        "price": "stockrecords__price",
        "stock": "stockrecords__num_in_stock",
        "stock_allocated": "stockrecords__num_allocated",
        "active": "is_public",
        "url": "get_absolute_url",
    },
    "CART_LINE_MODEL": "basket.Line",
    "CART_LINE_FIELDS": {
        "user": "basket__owner",
        "session_key": None,
        "product": "product",
        "quantity": "quantity",
    },
    "CART_LINE_FILTER": {"basket__status": "Open"},
    "ORDER_LINE_MODEL": "order.Line",
    "ORDER_LINE_FIELDS": {
        "order": "order",
        "user": "order__user",
        "product": "product",
        "quantity": "quantity",
        "unit_price": "unit_price_incl_tax",
        "ordered_at": "order__date_placed",
    },
    "ORDER_PLACED_SIGNAL": "oscar.apps.order.signals.order_placed",
    "PAGE_TEMPLATE": "oscar/layout.html",
}


FIELD_MAPS = ("PRODUCT_FIELDS", "CART_LINE_FIELDS", "ORDER_LINE_FIELDS")


def preset(**overrides):
    """The PERSONALIZATION setting for a django-oscar store. `overrides` replace keys; the field maps
    (PRODUCT_FIELDS, CART_LINE_FIELDS, ORDER_LINE_FIELDS) are merged key by key into Oscar's, so
    preset(PRODUCT_FIELDS={"category": None}) changes one entry. CART_LINE_FILTER={} drops the filter."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in OSCAR_SETTINGS.items()}
    for key, value in overrides.items():
        merged[key] = {**merged[key], **value} if key in FIELD_MAPS else value
    return merged
