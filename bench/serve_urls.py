"""The bench server's URLs: the store's, and a trivial endpoint to compare the recommendations with.
It exists only here: stores never get it."""
from django.urls import path
from rest_framework.response import Response

from personalization.api.views import RecommendationsView, ShopperAPIView
from shop.urls import urlpatterns as store_urlpatterns


class PingView(ShopperAPIView):
    """What every API request costs: the same authentication, permission, throttles, error handling and
    JSON rendering as the recommendations, and a constant answer."""

    permission_classes = RecommendationsView.permission_classes
    throttle_classes = RecommendationsView.throttle_classes
    throttle_scope = "bench.ping"

    def get(self, request):
        return Response({"pong": True})


urlpatterns = [*store_urlpatterns, path("bench/ping/", PingView.as_view(), name="bench-ping")]
