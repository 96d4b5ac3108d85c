"""The plugin's pages: `path("personalization/", include("personalization.urls"))`."""
from django.contrib import admin
from django.urls import path

from personalization.dashboard.views import dashboard
from personalization.views import PrivacyView, click

app_name = "personalization"

urlpatterns = [
    path("privacy/", PrivacyView.as_view(), name="privacy"),
    path("r/<str:token>/", click, name="click"),
    # The admin's Personalization dashboard: staff only (the admin site's login otherwise).
    path("dashboard/", admin.site.admin_view(dashboard), name="dashboard"),
]
