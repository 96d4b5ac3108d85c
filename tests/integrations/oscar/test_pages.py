"""The plugin's own page inside Oscar's layout, and its API's schema in a store that names no schema class."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_privacy_page_is_drawn_in_oscars_layout_and_opts_out(client):
    page = client.get(reverse("personalization:privacy"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Turn personalization off" in html and 'id="content_inner"' in html  # Oscar's layout.html
    assert client.post(reverse("personalization:privacy"), {"choice": "opt_out"}).status_code == 302
    assert "Turn personalization on" in client.get(reverse("personalization:privacy")).content.decode()


def test_the_api_schema_needs_no_schema_class_from_the_store(client, settings):
    assert "DEFAULT_SCHEMA_CLASS" not in settings.REST_FRAMEWORK  # DRF's own AutoSchema is the default

    response = client.get(reverse("personalization_api:schema"), {"format": "json"})

    assert response.status_code == 200
    assert "/api/personalization/recommendations/" in response.json()["paths"]
