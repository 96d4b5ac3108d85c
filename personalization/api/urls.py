"""`path("api/personalization/", include("personalization.api.urls"))`"""
from django.urls import path

from personalization.api import promotions, views

app_name = "personalization_api"

urlpatterns = [
    path("recommendations/", views.RecommendationsView.as_view(), name="recommendations"),
    path("cart-predictions/", views.CartPredictionsView.as_view(), name="cart-predictions"),
    path("coupons/", views.CouponsView.as_view(), name="coupons"),
    path("coupons/validate/", views.CouponValidationView.as_view(), name="coupon-validation"),
    path("promotions/", promotions.PromotionView.as_view(), name="promotions"),
    path("promotions/go/<str:token>/", promotions.PromotionClickView.as_view(), name="promotion-click"),
    path("events/", views.EventsView.as_view(), name="events"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(), name="docs"),
]
