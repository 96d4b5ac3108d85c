"""The demo store's URLs, the admin, and the plugin's pages and API."""
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from shop import views


urlpatterns = [
    path("", views.home, name="home"),
    path("categories/<slug:slug>/", views.category_detail, name="category"),
    path("products/<slug:slug>/", views.product_detail, name="product"),
    path("products/<slug:slug>/image.svg", views.product_image, name="product_image"),
    path("search/", views.search, name="search"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/<int:product_id>/", views.cart_add, name="cart_add"),
    path("cart/update/<int:product_id>/", views.cart_update, name="cart_update"),
    path("cart/remove/<int:product_id>/", views.cart_remove, name="cart_remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_history, name="order_history"),
    path("orders/<int:pk>/", views.order_detail, name="order_detail"),
    path("orders/<int:pk>/confirmation/", views.order_confirmation, name="order_confirmation"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("admin_tools_stats/", include("admin_tools_stats.urls")),  # django-admin-charts' chart data
    path("personalization/", include("personalization.urls")),
    path("api/personalization/", include("personalization.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the footer's language choice
]

# Uploaded files (promotion images) in development; on a server the web server serves MEDIA_ROOT.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
