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

from personalization import state
from personalization.capture import events, privacy
from personalization.models import EventKind, Placement
from personalization.serving import ranking
from personalization.templatetags import coupon_tags, promotion_tags

register = template.Library()
logger = logging.getLogger("personalization.templatetags")

#: Where a request keeps the product ids its page's placements have shown so far.
_PAGE_ATTRIBUTE = "_personalization_shown"

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
    shopper = state.shopper_from(context["request"])
    return privacy.is_opted_out(shopper.user_id, shopper.session_key)


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
        shopper, shown = state.shopper_from(request), _shown_on_page(request)
        ask = ranking.Ask(product_id=product_id_of(product), limit=limit, exclude_product_ids=shown)
        found = ranking.recommend(slug, shopper, ask)
        shown.update(found.product_ids)
        templates = [f"personalization/recommendations/{slug}.html", "personalization/recommendations.html"]
        return _render(request, shopper, found, templates)
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
        shopper, shown = state.shopper_from(request), _shown_on_page(request)
        ask = ranking.Ask(cart_product_ids=cart_ids, limit=limit, exclude_product_ids=shown)
        found = ranking.cart_predictions(shopper, ask)
        shown.update(found.product_ids)
        return _render(request, shopper, found, ["personalization/cart_predictions.html"])
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


def _shown_on_page(request):
    """The product ids the placements of this request's page have shown so far (a set, kept on the request)."""
    shown = getattr(request, _PAGE_ATTRIBUTE, None)
    if shown is None:
        shown = set()
        setattr(request, _PAGE_ATTRIBUTE, shown)
    return shown


def _render(request, shopper, found, template_names):
    if not found:
        return ""
    html = select_template(template_names).render({"recommendations": found}, request)
    _record_impressions(shopper, found)
    return html


def _record_impressions(shopper, recommendations):
    """One impression per shown item, with the recommendation id, in one write. Never raises."""
    try:
        events.bulk_record(
            [
                events.NewEvent(
                    EventKind.IMPRESSION,
                    item.product.id,
                    shopper,
                    recommendation_id=recommendations.recommendation_id,
                    data={"placement": recommendations.placement.slug, "position": position},
                )
                for position, item in enumerate(recommendations, start=1)
            ]
        )
    except Exception:
        logger.exception("Could not record the impressions of %s", recommendations.recommendation_id)
