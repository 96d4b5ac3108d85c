"""Oscar's URLs (the whole shop at /), the admin and the plugin's pages and API."""
from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("admin_tools_stats/", include("admin_tools_stats.urls")),
    path("personalization/", include("personalization.urls")),
    path("api/personalization/", include("personalization.api.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
