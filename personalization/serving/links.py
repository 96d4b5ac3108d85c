"""Tracked links of recommendations: a click goes through the plugin's click view, which records it
and redirects to the product's page (personalization.views.click)."""
import functools

from django.urls import NoReverseMatch, reverse

from personalization.adapters import url_context
from personalization.capture import attribution

_MARK = "0token0"


class ClickLinks:
    """The tracked links of one Recommendations: each a signed token naming the recommendation, the
    product and the placement, in the plugin's click URL (resolved once per URLconf and language, not
    once per item); the product's own page when the plugin's URLs are not installed."""

    def __init__(self, recommendation_id, placement_slug):
        self.recommendation_id, self.placement_slug = recommendation_id, placement_slug
        self.template = _template(url_context())

    def url(self, product):
        if self.template is None:
            return product.url
        token = attribution.click_token(self.recommendation_id, product.id, self.placement_slug)
        return self.template.replace(_MARK, token, 1)


@functools.lru_cache(maxsize=64)
def _template(context):
    """The click URL with _MARK where the token goes, for the current adapters.url_context()
    (`context`: what the answer is remembered under; reverse() reads it from the request)."""
    try:
        return reverse("personalization:click", args=[_MARK])
    except NoReverseMatch:
        return None
