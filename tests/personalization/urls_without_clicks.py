"""A store's URLs without the plugin's: recommendations link straight to product pages."""
from django.urls import path

from shop import views

urlpatterns = [path("products/<slug:slug>/", views.product_detail, name="product")]
