"""Placements: the demo's defaults after migrate, validation, and their admin screens."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from personalization.models import Placement
from personalization.serving import ranking

pytestmark = pytest.mark.django_db

Strategy, Page = Placement.Strategy, Placement.Page


@pytest.fixture
def admin_client(client, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "a-long-pass-phrase"))
    return client


def form(**changes):
    data = {
        "name": "Summer picks",
        "slug": "summer-picks",
        "heading": "",
        "page": Page.HOME,
        "strategy": Strategy.FOR_YOU,
        "fallback_strategy": Strategy.POPULAR,
        "limit": 6,
        "exclude_in_cart": "on",
        "exclude_purchased": "on",
        "include_categories": "",
        "exclude_categories": "",
        "min_price": "",
        "max_price": "",
        "active": "on",
    }
    return {**data, **changes}


def test_migrate_creates_the_demo_pages_placements():
    placements = {p.slug: (p.page, p.strategy) for p in Placement.objects.all()}

    assert placements == {
        "home-for-you": (Page.HOME, Strategy.FOR_YOU),
        "home-buy-again": (Page.HOME, Strategy.BUY_AGAIN),
        "product-bought-together": (Page.PRODUCT, Strategy.BOUGHT_TOGETHER),
        "product-similar": (Page.PRODUCT, Strategy.SIMILAR),
        "cart-completion": (Page.CART, Strategy.CART_COMPLETION),
        "order-confirmation": (Page.ORDER_CONFIRMATION, Strategy.FOR_YOU),
    }
    for placement in Placement.objects.all():
        placement.full_clean()


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"min_price": Decimal("5"), "max_price": Decimal("2")}, "max_price"),
        ({"fallback_strategy": Strategy.FOR_YOU}, "fallback_strategy"),
        ({"include_categories": "Dairy, Fruit", "exclude_categories": "fruit"}, "exclude_categories"),
        ({"strategy": Strategy.SIMILAR, "page": Page.HOME}, "strategy"),
        ({"limit": 0}, "limit"),
    ],
)
def test_a_placement_that_cannot_work_is_refused_with_the_field_named(fields, field):
    placement = Placement(slug="x", name="x", **{"strategy": Strategy.FOR_YOU, "page": Page.ANY, **fields})

    with pytest.raises(ValidationError) as refused:
        placement.full_clean()

    assert field in refused.value.message_dict


def test_categories_are_matched_without_regard_to_case_or_spaces():
    placement = Placement(include_categories=" Dairy ,fruit,, ", exclude_categories="")

    assert placement.included_categories == {"dairy", "fruit"}


def test_the_admin_lists_and_filters_placements(admin_client):
    response = admin_client.get(reverse("admin:personalization_placement_changelist"), {"strategy": Strategy.SIMILAR})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [Placement.objects.get(slug="product-similar")]


def test_the_admin_shows_a_validation_error_on_the_form(admin_client):
    response = admin_client.post(
        reverse("admin:personalization_placement_add"), form(min_price="9.00", max_price="3.00")
    )

    assert response.status_code == 200
    assert "The highest price must not be below the lowest price." in response.content.decode()
    assert not Placement.objects.filter(slug="summer-picks").exists()


def test_a_change_in_the_admin_is_served_at_once(admin_client):
    placement = ranking.placement_by_slug("home-for-you")  # now cached
    url = reverse("admin:personalization_placement_change", args=[placement.pk])

    response = admin_client.post(
        url, form(name=placement.name, slug=placement.slug, fallback_strategy=Strategy.TRENDING, limit=3)
    )

    assert response.status_code == 302
    assert ranking.placement_by_slug("home-for-you").limit == 3
