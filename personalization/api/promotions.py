"""The promotion of a slot for the shopper of the request, and the tracked link a promotion leads through."""
import logging

from django.core import signing
from django.http import HttpResponseRedirect
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from personalization import state
from personalization.api import serializers
from personalization.api.permissions import AnyShopper
from personalization.api.throttling import SHOPPER_THROTTLES
from personalization.api.views import ShopperAPIView, documented, errors, shopper_of, validated_query
from personalization.models import Promotion
from personalization.promotions import showing as promotions

logger = logging.getLogger("personalization.api")


class PromotionView(ShopperAPIView):
    """The promotion the shopper of the request sees in a slot (its showing is recorded), or none."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.promotions"

    @documented(
        parameters=[serializers.PromotionQuery],
        responses={200: serializers.PromotionAnswerSerializer, **errors(400, 401, 429, 503)},
    )
    def get(self, request):
        query = validated_query(serializers.PromotionQuery, request)
        # A session, so that a new visitor keeps their group and frequency count on the next request.
        served = promotions.choose(query["slot"], shopper_of(request, create_session=True))
        answer = {"slot": query["slot"], "promotion": served}
        return Response(serializers.PromotionAnswerSerializer(answer, context={"request": request}).data)


class PromotionClickView(ShopperAPIView):
    """A click on a promotion: recorded for the shopper the link was made for (once per showing), then
    on to the promotion's product or category page. A link we did not sign is a 404; an old one
    still leads on, unrecorded. Not in the schema: it is a link to follow, not an endpoint to call."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.promotion_clicks"

    @documented(exclude=True)
    def get(self, request, token):
        try:
            click = promotions.follow(token, state.shopper_from(request))
        except (signing.BadSignature, ValueError, TypeError):
            raise NotFound(_("This is not a promotion link.")) from None
        except (Promotion.DoesNotExist, LookupError):
            raise NotFound(_("This promotion, or what it leads to, is gone.")) from None
        return HttpResponseRedirect(click.target)
