"""Promotions on the store's pages, through the API and in the admin: the tag, the tracked link, the
endpoint, the admin form's errors and the dashboard's row."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from personalization.models import Event, EventKind, Promotion, PromotionExposure
from tests.factories import PASSWORD, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
ENDPOINT = "/api/personalization/promotions/"


@pytest.fixture(autouse=True)
def fast_passwords(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def product():
    return ProductFactory(title="Crunchy apple", category__name="Fruit")


@pytest.fixture
def banner(product):
    return Promotion.objects.create(
        name="Apple week",
        slot="home-banner",
        headline="Apple week: crisp and local",
        text="Picked this morning.",
        link_text="See the apples",
        product_id=str(product.pk),
        holdout_share=Decimal("0"),
        starts_at=NOW - timedelta(days=1),
    )


@pytest.fixture
def visit(client, django_capture_on_commit_callbacks):
    def visit(url, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return client.get(url, **kwargs)

    return visit


@pytest.fixture
def api(django_capture_on_commit_callbacks):
    class Client(APIClient):
        def generic(self, *args, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return super().generic(*args, **kwargs)

    def make(user=None):
        client = Client()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return client

    return make


def promotion_links(html):
    return re.findall(r'href="(/api/personalization/promotions/go/[^"]+/)"', html)


# The tag on the demo store's home page


def test_the_home_page_shows_the_promotion_and_records_its_impression(banner, client, visit):
    user = UserFactory()
    client.force_login(user)

    html = visit(reverse("home")).content.decode()

    assert 'data-slot="home-banner"' in html and "Apple week: crisp and local" in html
    assert "See the apples" in html and "Picked this morning." in html
    assert len(set(promotion_links(html))) == 1
    impression = Event.objects.get(kind=EventKind.IMPRESSION, data__promotion=banner.pk)
    assert (impression.user_id, impression.data["slot"]) == (str(user.pk), "home-banner")


def test_the_click_link_records_the_click_and_leads_to_the_product(banner, product, client, visit):
    client.force_login(UserFactory())
    link = promotion_links(visit(reverse("home")).content.decode())[0]

    response = visit(link)
    visit(link)  # replayed

    assert response.status_code == 302 and response["Location"] == product.get_absolute_url()
    assert Event.objects.filter(kind=EventKind.CLICK, data__promotion=banner.pk).count() == 1


def test_another_shoppers_click_on_a_shared_link_leads_on_but_counts_nothing(banner, client, visit):
    client.force_login(UserFactory())
    link = promotion_links(visit(reverse("home")).content.decode())[0]
    client.force_login(UserFactory())

    assert visit(link).status_code == 302
    assert not Event.objects.filter(kind=EventKind.CLICK).exists()


def test_a_forged_or_tampered_link_is_not_found(banner, client, visit):
    client.force_login(UserFactory())
    link = promotion_links(visit(reverse("home")).content.decode())[0]
    assert visit(link[:-3] + "x/").status_code == 404
    assert visit("/api/personalization/promotions/go/WzEsImFiYyIsImhvbWUiXQ:1abc:forged/").status_code == 404
    assert not Event.objects.filter(kind=EventKind.CLICK).exists()


def test_a_slot_with_nothing_for_the_shopper_renders_nothing(banner, rf):
    request = rf.get("/")
    request.user = UserFactory()
    html = Template('{% load personalization %}[{% promotion "no-such-slot" %}]').render(Context({"request": request}))
    assert html == "[]"
    assert Template('{% load personalization %}[{% promotion "home-banner" %}]').render(Context({})) == "[]"


def test_a_promotion_with_an_image_shows_it_on_the_page_and_in_the_api(banner, client, visit, api):
    from django.core.files.base import ContentFile

    banner.image.save("spring.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=True)
    client.force_login(UserFactory())

    html = visit(reverse("home")).content.decode()
    body = api(UserFactory()).get(ENDPOINT, {"slot": "home-banner"}).json()

    assert re.search(r'<img class="personalization-promotion-image" src="/media/personalization/promotions/spring[^"]*\.png"', html)
    assert body["promotion"]["image_url"].startswith("http://testserver/media/personalization/promotions/spring")


# The API


def test_the_api_answers_the_shoppers_promotion_and_records_the_showing(banner, api):
    user = UserFactory()
    response = api(user).get(ENDPOINT, {"slot": "home-banner"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["slot"] == "home-banner"
    assert body["promotion"]["headline"] == "Apple week: crisp and local"
    assert body["promotion"]["click_url"].startswith("http://testserver/api/personalization/promotions/go/")
    assert response["Cache-Control"].startswith("private") or "no-store" in response["Cache-Control"]
    assert PromotionExposure.objects.get().user_id == str(user.pk)
    assert Event.objects.filter(kind=EventKind.IMPRESSION, user_id=str(user.pk)).count() == 1


def test_the_api_answers_only_for_the_shopper_of_the_request(banner, api):
    banner.frequency_cap = 1
    banner.save()
    capped, fresh = UserFactory(), UserFactory()
    assert api(capped).get(ENDPOINT, {"slot": "home-banner"}).json()["promotion"] is not None
    assert api(capped).get(ENDPOINT, {"slot": "home-banner"}).json()["promotion"] is None  # capped
    # Another shopper's figures or groups cannot be named: there is no parameter for a shopper.
    answer = api(fresh).get(ENDPOINT, {"slot": "home-banner", "user": capped.pk}).json()
    assert answer["promotion"] is not None
    assert dict(PromotionExposure.objects.values_list("user_id", "impressions")) == {
        str(capped.pk): 1, str(fresh.pk): 1
    }  # fmt: skip


def test_an_anonymous_shopper_gets_a_session_and_keeps_their_count(banner, api):
    banner.frequency_cap = 1
    banner.save()
    client = api()
    first = client.get(ENDPOINT, {"slot": "home-banner"})
    second = client.get(ENDPOINT, {"slot": "home-banner"})
    assert first.json()["promotion"] is not None and second.json()["promotion"] is None
    assert PromotionExposure.objects.get().shopper_key.startswith("s")


@pytest.mark.parametrize("query", [{}, {"slot": ""}, {"slot": "not a slug!"}, {"slot": "x" * 65}])
def test_bad_input_is_a_400_in_json(api, query):
    response = api().get(ENDPOINT, query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and "slot" in body["errors"]


def test_a_slot_given_twice_is_a_400(api):
    response = api().get(ENDPOINT + "?slot=a&slot=b")
    assert response.status_code == 400 and "slot" in response.json()["errors"]


def test_a_bad_token_is_a_401(api):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(ENDPOINT, {"slot": "home-banner"}).status_code == 401


def test_the_endpoint_is_throttled(banner, api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"personalization.promotions.anon": "2/min", "personalization.promotions.user": "2/min"},
    }
    client = api(UserFactory())
    statuses = [client.get(ENDPOINT, {"slot": "home-banner"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# The admin


@pytest.fixture
def owner_client(client):
    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", PASSWORD)
    client.force_login(owner)
    return client


FORM = {
    "name": "Spring",
    "slot": "home-banner",
    "active": "on",
    "priority": "0",
    "headline": "Spring is here",
    "starts_at_0": "2030-01-02",
    "starts_at_1": "00:00:00",
    "holdout_share": "0.1",
    "attribution_days": "7",
    "audience": "everyone",
}


def test_the_admin_form_says_what_is_wrong(owner_client):
    response = owner_client.post(
        "/admin/personalization/promotion/add/",
        {**FORM, "ends_at_0": "2030-01-01", "ends_at_1": "00:00:00", "holdout_share": "1.5"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "The promotion must end after it starts." in errors["ends_at"]
    assert any("1" in message for message in errors["holdout_share"])
    assert errors["product_id"] == ["Give the product it leads to, or a category and its page."]
    assert not Promotion.objects.exists()


def test_the_admin_saves_a_valid_promotion_and_lists_it(owner_client, product):
    response = owner_client.post("/admin/personalization/promotion/add/", {**FORM, "product_id": str(product.pk)})
    assert response.status_code == 302, response.context["adminform"].form.errors
    promotion = Promotion.objects.get()
    assert (promotion.slot, promotion.product_id) == ("home-banner", str(product.pk))
    page = owner_client.get("/admin/personalization/promotion/").content.decode()
    assert "Spring" in page


def test_the_dashboard_shows_each_promotions_row(owner_client, banner, api):
    shoppers = [UserFactory() for _ in range(3)]
    for shopper in shoppers:
        api(shopper).get(ENDPOINT, {"slot": "home-banner"})
    Event.objects.create(
        kind="purchase", user_id=str(shoppers[0].pk), product_id="1", quantity=3, unit_price=Decimal("4.00"), order_id="9"
    )

    page = owner_client.get(reverse("personalization:dashboard")).content.decode()

    row = re.search(rf'<tr data-promotion="{banner.pk}">(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[0].startswith("Apple week")
    assert cells[1] == "3"  # impressions
    assert cells[2].startswith("0")  # clicks
    assert "12.00" in cells[3]  # the revenue of the shoppers shown it
    assert cells[4] == "1 / 3" and cells[5] == "0 / 0"
    assert 'id="pd-promotions"' in page


# The demo


def test_the_demo_has_promotions_and_shopper1_sees_one_on_the_home_page(client, visit):
    import io

    from django.core.management import call_command

    from personalization.operations.demo import DEMO_PROMOTIONS
    from tests.factories import CategoryFactory

    categories = [CategoryFactory(name=name) for name in ("Pasta", "Sauces", "Dairy", "Bakery")]
    for n in range(40):
        ProductFactory(category=categories[n % 4])
    call_command("personalization_demo_data", "--users", "30", "--seed", "3", stdout=io.StringIO())

    made = {p.name: p for p in Promotion.objects.all()}
    assert set(made) == set(DEMO_PROMOTIONS)
    for promotion in made.values():
        promotion.full_clean()  # what the admin would accept
    client.force_login(get_user_model().objects.get(username="shopper1"))
    html = visit(reverse("home")).content.decode()
    assert 'data-slot="home-banner"' in html
    shown = int(re.search(r'data-promotion-id="(\d+)"', html).group(1))
    assert shown in {made[DEMO_PROMOTIONS[1]].pk, made[DEMO_PROMOTIONS[2]].pk}  # one aimed at shopper1

    call_command("personalization_demo_data", "--users", "30", "--seed", "4", "--replace", stdout=io.StringIO())
    assert Promotion.objects.count() == 3


def test_signing_in_through_the_store_keeps_the_promotion_a_visitor_met(banner, visit, client):
    user = UserFactory()
    visit(ENDPOINT, data={"slot": "home-banner"})
    exposure = PromotionExposure.objects.get()
    assert exposure.user_id == ""

    client.post(reverse("login"), {"username": user.username, "password": PASSWORD})

    exposure.refresh_from_db()
    assert exposure.user_id == str(user.pk)
