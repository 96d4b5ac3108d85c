"""The plugin's pages: `path("personalization/", include("personalization.urls"))`."""
from django.urls import path

from personalization.views import PrivacyView, click

app_name = "personalization"

urlpatterns = [
    path("privacy/", PrivacyView.as_view(), name="privacy"),
    path("r/<str:token>/", click, name="click"),
]
