"""Template tags a store puts on its pages: `{% load personalization %}`."""
import logging

from django import template

from personalization import events
from personalization.models import EventKind

register = template.Library()
logger = logging.getLogger("personalization.templatetags")


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
