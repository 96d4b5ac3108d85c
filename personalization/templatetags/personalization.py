"""Template tags a store puts on its pages: `{% load personalization %}`.

    {% recommendations "home-for-you" %}
    {% recommendations "product-similar" product=product limit=4 %}
    {% cart_predictions %}   or   {% cart_predictions cart=lines %}
    {% personalized_coupon %}   or   {% personalized_coupon cart_total=total %}
    {% promotion "home-banner" %}

They render overridable partials (personalization/recommendations.html, or
personalization/recommendations/<slug>.html for one placement; personalization/cart_predictions.html)
and record an impression per shown product. A failing tag renders nothing and logs: the page never breaks.
"""
import logging

from django import template
from django.template.loader import select_template

from personalization import events
from personalization.models import EventKind, Placement
from personalization.services import ranking
from personalization.templatetags import coupon_tags, promotion_tags

register = template.Library()
logger = logging.getLogger("personalization.templatetags")

register.inclusion_tag("personalization/coupon.html", takes_context=True, name="personalized_coupon")(
    coupon_tags.personalized_coupon
)
register.simple_tag(takes_context=True, name="promotion")(promotion_tags.promotion)


@register.simple_tag(takes_context=True)
def record_view(context, product):
    """Records that the current shopper viewed `product` (a product instance or id); renders nothing.

    Put it on the product page: {% record_view product %}. Repeated views within
    VIEW_DEDUPE_SECONDS count once.
    """
    request = context.get("request")
    if request is not None:
        events.record_for(request, EventKind.VIEW, getattr(product, "pk", product))
    return ""


@register.simple_tag(takes_context=True)
def personalization_opted_out(context):
    """True when the current shopper has opted out (for showing the privacy choice)."""
    from personalization.privacy import is_opted_out

    shopper = events.shopper_from(context["request"])
    return is_opted_out(shopper.user_id, shopper.session_key)


@register.simple_tag(takes_context=True)
def recommendations(context, slug, product=None, limit=None):
    """The placement `slug` for the current shopper; `product` is the page's product (instance or id).

    Products another placement of the page already shows are left out.
    """
    request = context.get("request")
    if request is None:
        logger.warning("{%% recommendations %r %%} needs the request context processor; it shows nothing", slug)
        return ""
    try:
        found = ranking.recommend_for_slug(slug, request, product_id=product_id_of(product), limit=limit)
        return _render(request, found, [f"personalization/recommendations/{slug}.html", "personalization/recommendations.html"])
    except Placement.DoesNotExist:
        logger.warning("There is no placement %r: {%% recommendations %%} shows nothing", slug)
    except Exception:
        logger.exception("{%% recommendations %r %%} failed; the page goes on without it", slug)
    return ""


@register.simple_tag(takes_context=True)
def cart_predictions(context, cart=None, limit=None):
    """What the shopper will likely add to their cart next ("cart-completion" placement).

    `cart`: the cart's lines, products or product ids; without it, the cart the shopper's events record.
    """
    request = context.get("request")
    if request is None:
        logger.warning("{% cart_predictions %} needs the request context processor; it shows nothing")
        return ""
    try:
        cart_ids = None if cart is None else [product_id_of(entry) for entry in cart]
        found = ranking.cart_predictions_for_request(request, cart_ids, limit=limit)
        return _render(request, found, ["personalization/cart_predictions.html"])
    except Exception:
        logger.exception("{% cart_predictions %} failed; the page goes on without it")
    return ""


def product_id_of(value):
    """A product id from a cart line (its product_id), a product (its pk), a ProductInfo (its id) or an id."""
    if value is None or value == "":
        return None
    for attribute in ("product_id", "pk", "id"):
        found = getattr(value, attribute, None)
        if found is not None:
            return str(found)
    return str(value)


def _render(request, found, template_names):
    if not found:
        return ""
    html = select_template(template_names).render({"recommendations": found}, request)
    ranking.record_impressions(request, found)
    return html
