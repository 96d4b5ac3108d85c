"""The plugin's pages: the shopper's privacy choice, and tracked clicks on recommendations."""
from django.contrib import messages
from django.core import signing
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.http import require_GET

from personalization.adapters import get_adapter
from personalization.capture import attribution, events, privacy
from personalization.conf import settings
from personalization.models import EventKind
from personalization.state import shopper_from


class PrivacyView(View):
    template_name = "personalization/privacy.html"

    def get(self, request):
        shopper = shopper_from(request)
        opted_out = privacy.is_opted_out(shopper.user_id, shopper.session_key)
        context = {"opted_out": opted_out, "next": request.GET.get("next", ""), "page_template": settings.PAGE_TEMPLATE}
        return render(request, self.template_name, context)

    def post(self, request):
        shopper = shopper_from(request)
        user = request.user if request.user.is_authenticated else None
        if request.POST.get("choice") == "opt_in":
            privacy.opt_in(user=user, session_key=shopper.session_key)
            messages.success(request, _("Personalization is on again."))
        else:
            privacy.opt_out(user=user, session_key=shopper.session_key)
            messages.success(request, _("Personalization is off and what we recorded about you is erased."))
        target = request.POST.get("next") or request.path
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = request.path
        return HttpResponseRedirect(target)


@require_GET
def click(request, token):
    """A click on a recommended product: records it and redirects to the product's page.

    The token is signed when the recommendation is shown and names the product; the redirect goes
    only to that product's URL from the store's adapter, so the link cannot be pointed elsewhere.
    Later cart additions and purchases of the product are credited to the recommendation.
    """
    try:
        shown = attribution.read_click_token(token)
        product_id = shown.product_id
    except signing.SignatureExpired:  # an old link: it leads to the product, but is no click
        shown, product_id = None, attribution.product_of_click_token(token)
    except (signing.BadSignature, ValueError, TypeError):
        raise Http404("not a recommendation link")
    product = get_adapter().products([product_id]).get(product_id)
    if product is None or not _is_page_url(product.url):
        raise Http404("the recommended product is gone")
    if shown is None:
        return HttpResponseRedirect(product.url)
    recorded = events.record_for(
        request, EventKind.CLICK, product.id, recommendation_id=shown.recommendation_id, data={"placement": shown.placement}
    )
    if recorded:
        shopper = shopper_from(request)
        attribution.remember_click(shopper.user_id, shopper.session_key, product.id, shown.recommendation_id)
    return HttpResponseRedirect(product.url)


def _is_page_url(url):
    """A path on this site or an http(s) address: never a javascript: or data: link."""
    return (url.startswith("/") and not url.startswith("//")) or url.startswith(("https://", "http://"))
