"""The promotion slot for the `personalization` tag library (registered there as `{% promotion %}`).

    {% promotion "home-banner" %}

Renders the promotion the page's shopper is to see in the slot, through
personalization/promotion/<slot>.html or else personalization/promotion.html (a store may override
either), and records the showing. Nothing for shoppers no promotion is for, held-out shoppers and
shoppers who opted out. Never raises into the page.
"""
import logging

from django.template.loader import select_template

from personalization.promotions import showing as promotions

logger = logging.getLogger("personalization.templatetags")


def promotion(context, slot):
    """The HTML of the slot `slot` for the shopper of the page's request ("" when nothing shows)."""
    request = context.get("request")
    if request is None:
        logger.warning("{%% promotion %r %%} needs the request context processor; it shows nothing", slot)
        return ""
    try:
        served = promotions.choose_for_request(str(slot), request)
        if served is None:
            return ""
        template = select_template([f"personalization/promotion/{slot}.html", "personalization/promotion.html"])
        return template.render({"promotion": served, "request": request}, request)
    except Exception:
        logger.exception("{%% promotion %r %%} failed; the page goes on without it", slot)
    return ""
