"""The shopper's privacy choice: see it, opt out (erasing what was recorded) or opt back in."""
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.contrib import messages

from personalization import privacy
from personalization.events import shopper_from


class PrivacyView(View):
    template_name = "personalization/privacy.html"

    def get(self, request):
        shopper = shopper_from(request)
        opted_out = privacy.is_opted_out(shopper.user_id, shopper.session_key)
        return render(request, self.template_name, {"opted_out": opted_out, "next": request.GET.get("next", "")})

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
