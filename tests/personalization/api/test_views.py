"""The REST API under /api/personalization/: real services, a tiny store with trained models."""
import logging
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from personalization.capture import attribution, events
from personalization.models import Coupon, Event, EventKind, Placement
from personalization.serving import explanations, ranking
from shop.models import Cart, CartLine
from tests.factories import UserFactory
from tests.personalization.coupon_factories import CouponFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

Strategy = Placement.Strategy
RECOMMENDATIONS = reverse("personalization_api:recommendations")
CART_PREDICTIONS = reverse("personalization_api:cart-predictions")
COUPONS = reverse("personalization_api:coupons")
VALIDATE = reverse("personalization_api:coupon-validation")
EVENTS = reverse("personalization_api:events")


@pytest.fixture
def for_you():
    return Placement.objects.create(slug="api-for-you", name="For you", strategy=Strategy.FOR_YOU, limit=4)


@pytest.fixture
def api(django_capture_on_commit_callbacks):
    """An API client: `api()` anonymous with a cookie jar, `api(user)` signed in with the user's token.
    Bodies are JSON; events recorded during a request are written, as after its commit."""

    class Client(APIClient):
        def generic(self, *args, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return super().generic(*args, **kwargs)

    def make(user=None):
        client = Client()
        client.default_format = "json"
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return client

    return make


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Records an event through the events write path, as the store's receivers do."""

    def record(kind, product, **shopper):
        with django_capture_on_commit_callbacks(execute=True):
            assert events.record(kind, product.pk, **shopper)

    return record


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"] and isinstance(body["detail"], str)
    return body


# Recommendations ----------------------------------------------------------------------------------


def test_recommendations_carry_the_recommendation_id_and_explained_products(trained, for_you, api):
    dairy = trained.shoppers["dairy"][0]

    response = api(dairy).get(RECOMMENDATIONS, {"placement": "api-for-you"})

    assert response.status_code == 200
    body = response.json()
    assert body["placement"] == "api-for-you"
    assert len(body["recommendation_id"]) == 32
    assert len(body["items"]) == 4
    for item in body["items"]:
        product = trained.product(item["title"])
        assert item["product_id"] == str(product.pk)
        assert item["price"] == "3.00"
        assert item["url"] == f"http://testserver{product.get_absolute_url()}"
        assert item["click_url"].startswith("http://testserver/personalization/r/")
        # Named only when something the shopper buys is related to the pick (here: dairy buyers' discoveries
        # are bakery and fruit, related to nothing they buy), else "Picked for you".
        assert item["reason"] in (explanations.BECAUSE_OFTEN_BOUGHT, explanations.BECAUSE_BOUGHT, explanations.FOR_YOU)
        assert item["explanation"]
    assert "private" in response["Cache-Control"]


def test_a_user_parameter_never_serves_another_shoppers_recommendations(trained, for_you, api):
    dairy, bakery = trained.shoppers["dairy"][1], trained.shoppers["bakery"][1]
    own = api(dairy).get(RECOMMENDATIONS, {"placement": "api-for-you"}).json()
    theirs = api(bakery).get(RECOMMENDATIONS, {"placement": "api-for-you"}).json()

    impersonating = {"placement": "api-for-you", "user": bakery.pk, "user_id": bakery.pk}
    asked = api(dairy).get(RECOMMENDATIONS, impersonating).json()

    ids = lambda body: {item["product_id"] for item in body["items"]}  # noqa: E731
    assert ids(asked) == ids(own)
    assert ids(asked) != ids(theirs)


def test_limit_and_the_pages_product_shape_the_recommendations(trained, api):
    Placement.objects.create(
        slug="api-together", name="Together", page=Placement.Page.PRODUCT, strategy=Strategy.BOUGHT_TOGETHER, limit=4
    )
    milk = trained.product("Milk")

    body = api().get(RECOMMENDATIONS, {"placement": "api-together", "product": milk.pk, "limit": 2}).json()

    assert len(body["items"]) == 2
    assert body["items"][0]["title"] == "Butter"
    assert body["items"][0]["reason"] == explanations.BOUGHT_TOGETHER
    assert body["items"][0]["explanation"] == "Often bought with Milk"


def test_an_anonymous_shopper_without_a_session_gets_popular_products_and_no_session(trained, for_you, api):
    response = api().get(RECOMMENDATIONS, {"placement": "api-for-you"})

    assert response.status_code == 200
    assert len(response.json()["items"]) == 4
    assert {item["reason"] for item in response.json()["items"]} <= {explanations.TRENDING, explanations.POPULAR}
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"placement": "api-for-you", "limit": "abc"}, "limit"),
        ({"placement": "api-for-you", "limit": "0"}, "limit"),
        ({"placement": "api-for-you", "limit": "1000"}, "limit"),
        ({"placement": "api-for-you", "limit": ""}, "limit"),  # empty is not absent
        ({"placement": "api-for-you", "limit": ["2", "3"]}, "limit"),  # given twice
        ({"placement": "api-for-you", "product": ""}, "product"),
        ({"placement": "api-for-you", "product": "999999"}, "product"),
        ({"placement": "cart-completion", "product": "abc"}, "product"),  # no product has such a key
        ({"placement": "product-similar", "product": "9" * 30}, "product"),  # more than the key column holds
        ({"placement": "not a slug!"}, "placement"),
        ({}, "placement"),
    ],
)
def test_bad_parameters_are_answered_400_with_a_message(params, field, for_you, api):
    body = assert_error(api().get(RECOMMENDATIONS, params), 400, "invalid")

    assert list(body["errors"]) == [field]
    assert body["detail"].startswith(f"{field}: ")


def test_an_unknown_placement_is_answered_404_with_a_message(db, api):
    body = assert_error(api().get(RECOMMENDATIONS, {"placement": "nowhere"}), 404, "unknown_placement")

    assert "nowhere" in body["detail"]


def test_a_failing_service_is_answered_503_and_logged_never_500(for_you, api, monkeypatch, caplog):
    def broken(slug, **kwargs):
        raise DatabaseError("the database is gone")

    monkeypatch.setattr(ranking, "placement_by_slug", broken)

    with caplog.at_level(logging.ERROR, logger="personalization.api"):
        response = api().get(RECOMMENDATIONS, {"placement": "api-for-you"})

    assert_error(response, 503, "unavailable")
    assert "the database is gone" in caplog.text


# Cart predictions -------------------------------------------------------------------------------


def test_cart_predictions_come_from_the_signed_in_shoppers_cart(trained, api):
    dairy = trained.shoppers["dairy"][0]
    cart = Cart.objects.create(user=dairy)
    CartLine.objects.create(cart=cart, product=trained.product("Cheese"), quantity=1)

    body = api(dairy).get(CART_PREDICTIONS, {"limit": 3}).json()

    assert len(body["recommendation_id"]) == 32
    assert body["placement"] == ranking.CART_PREDICTIONS_SLUG
    assert len(body["items"]) == 3
    assert str(trained.product("Cheese").pk) not in {item["product_id"] for item in body["items"]}
    assert all(item["explanation"] and item["reason"] in explanations.CODES for item in body["items"])


def test_cart_predictions_of_an_anonymous_shopper_follow_their_sessions_cart(trained, api, record):
    client = api()
    client.post(EVENTS, {"kind": "impression", "product": trained.product("Milk").pk})  # the API gives them a session
    session_key = client.cookies["sessionid"].value
    record(EventKind.CART_ADD, trained.product("Bread"), session_key=session_key)

    body = client.get(CART_PREDICTIONS).json()

    assert body["items"]
    assert str(trained.product("Bread").pk) not in {item["product_id"] for item in body["items"]}
    assert "Goes with Bread in your cart" in {item["explanation"] for item in body["items"]}


# Coupons ----------------------------------------------------------------------------------------


def test_a_shopper_lists_only_their_own_usable_coupons(api):
    shopper, other = UserFactory(), UserFactory()
    mine = CouponFactory(user=shopper, campaign__name="Fruit fans")
    CouponFactory(user=other)
    CouponFactory(user=shopper, status=Coupon.Status.REDEEMED, redeemed_at=timezone.now())
    CouponFactory(user=shopper, expires_at=timezone.now() - timedelta(minutes=1))

    response = api(shopper).get(COUPONS, {"user": other.pk})

    assert response.status_code == 200
    assert [coupon["code"] for coupon in response.json()] == [mine.code]
    assert response.json()[0]["campaign"] == "Fruit fans"
    assert response.json()[0]["discount_value"] == "10.00"


@pytest.mark.parametrize("url, method", [(COUPONS, "get"), (VALIDATE, "post")])
def test_anonymous_shoppers_have_no_coupons(url, method, db, api):
    response = getattr(api(), method)(url, {"code": "ANY"} if method == "post" else None)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_an_invalid_token_is_answered_401(db, api):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert_error(client.get(COUPONS), 401, "authentication_failed")


def test_validating_a_coupon_gives_its_discount_on_the_given_cart_total(api):
    coupon = CouponFactory(campaign__discount_value=Decimal("10"), campaign__categories="")

    response = api(coupon.user).post(VALIDATE, {"code": coupon.code.lower(), "cart_total": "45.00"})

    assert response.status_code == 200, response.content
    assert response.json()["amount"] == "4.50"
    assert response.json()["cart_total"] == "45.00"
    assert response.json()["code"] == coupon.code


def test_without_a_cart_total_the_coupon_is_checked_against_the_shoppers_cart_in_the_store(api, make_product):
    coupon = CouponFactory(campaign__discount_value=Decimal("10"), campaign__categories="Fruit")
    cart = Cart.objects.create(user=coupon.user)
    CartLine.objects.create(cart=cart, product=make_product(price="4.00", category="Fruit"), quantity=3)
    CartLine.objects.create(cart=cart, product=make_product(price="8.00", category="Dairy"), quantity=1)

    response = api(coupon.user).post(VALIDATE, {"code": coupon.code})

    assert response.status_code == 200, response.content
    assert response.json()["cart_total"] == "20.00"
    assert response.json()["amount"] == "2.00"


@pytest.mark.parametrize(
    "code, cart_total, error_code, message",
    [
        ("THEIRS", "45.00", "unknown", "We do not know this coupon code. Please check it and try again."),  # no probing
        ("NOSUCHCODE22", "45.00", "unknown", "We do not know this coupon code. Please check it and try again."),
        ("MINE", "5.00", "below_minimum", "This coupon needs a cart worth at least 20.00; yours is worth 5.00."),
    ],
)
def test_a_coupon_that_does_not_apply_is_answered_400_with_the_coupons_message(
    code, cart_total, error_code, message, api
):
    shopper = UserFactory()
    codes = {
        "MINE": CouponFactory(user=shopper, campaign__min_cart_total=Decimal("20")).code,
        "THEIRS": CouponFactory().code,
    }

    response = api(shopper).post(VALIDATE, {"code": codes.get(code, code), "cart_total": cart_total})

    assert assert_error(response, 400, error_code)["detail"] == message


def test_a_coupon_check_needs_a_code_and_a_real_amount(api):
    shopper = UserFactory()

    body = assert_error(api(shopper).post(VALIDATE, {"cart_total": "-1"}), 400, "invalid")

    assert set(body["errors"]) == {"code", "cart_total"}


# Events -----------------------------------------------------------------------------------------


def test_a_signed_in_shoppers_view_is_recorded(api, make_product):
    shopper, product = UserFactory(), make_product()

    response = api(shopper).post(EVENTS, {"kind": "view", "product": product.pk})

    assert response.status_code == 202
    assert response.json() == {"received": 1, "recorded": 1}
    event = Event.objects.get()
    assert (event.kind, event.product_id, event.user_id) == (EventKind.VIEW, str(product.pk), str(shopper.pk))


def issued(user=None):
    """A recommendation id as ranking makes them for `user` (None: a visitor without a session)."""
    return attribution.new_recommendation_id(events.Shopper(user_id=str(user.pk) if user else None))


def test_the_impressions_of_a_placement_are_recorded_in_one_request(api, make_product):
    shopper, products = UserFactory(), [make_product(), make_product()]
    recommendation_id = issued(shopper)
    shown = [
        {"kind": "impression", "product": p.pk, "recommendation_id": recommendation_id, "placement": "home-for-you",
         "position": n}
        for n, p in enumerate(products, start=1)
    ]

    response = api(shopper).post(EVENTS, shown)

    assert response.json() == {"received": 2, "recorded": 2}
    recorded = Event.objects.filter(kind=EventKind.IMPRESSION).order_by("data__position")
    assert [(e.product_id, e.recommendation_id, e.data) for e in recorded] == [
        (str(p.pk), recommendation_id, {"placement": "home-for-you", "position": n})
        for n, p in enumerate(products, start=1)
    ]


def test_a_click_credits_the_shoppers_next_cart_addition_to_the_recommendation(api, make_product, record):
    shopper, product = UserFactory(), make_product()
    recommendation_id = issued(shopper)

    api(shopper).post(EVENTS, {"kind": "click", "product": product.pk, "recommendation_id": recommendation_id})
    record(EventKind.CART_ADD, product, user_id=shopper.pk)

    assert Event.objects.get(kind=EventKind.CART_ADD).recommendation_id == recommendation_id


def test_clicks_and_impressions_of_recommendations_not_shown_to_the_shopper_are_refused(api, make_product):
    shopper, product = UserFactory(), make_product()

    for recommendation_id in ("b" * 32, issued(UserFactory())):  # made up; another shopper's
        for kind in ("click", "impression"):
            body = {"kind": kind, "product": product.pk, "recommendation_id": recommendation_id}
            answer = assert_error(api(shopper).post(EVENTS, body), 400, "invalid")
            assert list(answer["errors"]) == ["recommendation_id"]
    assert not Event.objects.exists()


def test_an_answer_of_the_recommendations_endpoint_gives_an_id_its_shopper_may_send_back(trained, for_you, api):
    shopper = trained.shoppers["dairy"][0]
    client = api(shopper)
    answer = client.get(RECOMMENDATIONS, {"placement": "api-for-you"}).json()

    shown = [{"kind": "impression", "product": item["product_id"], "recommendation_id": answer["recommendation_id"]}
             for item in answer["items"]]  # fmt: skip

    assert client.post(EVENTS, shown).json()["recorded"] == len(answer["items"]) > 0


def test_an_anonymous_shoppers_events_belong_to_a_session_the_api_gives_them(api, make_product):
    client, product = api(), make_product()

    client.post(EVENTS, {"kind": "view", "product": product.pk})
    client.post(EVENTS, {"kind": "impression", "product": product.pk})

    session_key = client.cookies["sessionid"].value
    assert Session.objects.filter(session_key=session_key).exists()
    assert set(Event.objects.values_list("kind", "session_key", "user_id")) == {
        (EventKind.VIEW, session_key, ""),
        (EventKind.IMPRESSION, session_key, ""),
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "purchase", "product": "PRODUCT"}, "kind"),
        ({"kind": "cart_add", "product": "PRODUCT"}, "kind"),
        ({"kind": "view", "product": "999999"}, "product"),
        ({"kind": "view", "product": "abc"}, "product"),
        ({"kind": "view", "product": "9" * 30}, "product"),
        ({"kind": "view"}, "product"),
        ({"kind": "click", "product": "PRODUCT", "recommendation_id": "not an id!"}, "recommendation_id"),
        ({"kind": "impression", "product": "PRODUCT", "position": 0}, "position"),
    ],
)
def test_bad_events_are_answered_400_and_nothing_is_recorded(body, field, api, make_product):
    product = make_product()
    body = {key: product.pk if value == "PRODUCT" else value for key, value in body.items()}

    answer = assert_error(api(UserFactory()).post(EVENTS, body), 400, "invalid")

    assert list(answer["errors"]) == [field]
    assert not Event.objects.exists()


def test_one_bad_event_in_a_list_stops_the_whole_list(api, make_product):
    product = make_product()

    body = assert_error(
        api().post(EVENTS, [{"kind": "view", "product": product.pk}, {"kind": "teleport", "product": product.pk}]),
        400,
        "invalid",
    )

    assert body["detail"].startswith("[1].kind: ")
    assert not Event.objects.exists()


@pytest.mark.parametrize("body", [[], [{"kind": "view", "product": "1"}] * 101, "view"])
def test_an_empty_or_oversized_or_shapeless_body_is_answered_400(body, api, make_product):
    make_product()

    assert_error(api().post(EVENTS, body), 400, "invalid")


@pytest.mark.parametrize(
    "raw, code",
    [("null", "invalid"), ("5", "invalid"), ("true", "invalid"), ('[1, "view"]', "invalid"), ("", "invalid"),
     ('{"kind": "view"', "parse_error")],
)  # fmt: skip
def test_a_body_that_is_not_an_event_or_a_list_of_events_is_answered_400(raw, code, api, make_product):
    make_product()

    assert_error(api().post(EVENTS, raw, content_type="application/json"), 400, code)
    assert not Event.objects.exists()


@pytest.mark.parametrize("url", [EVENTS, VALIDATE])
@pytest.mark.parametrize("body_format", ["multipart", "form"])
def test_bodies_are_json_only_and_others_are_answered_415(url, body_format, api, make_product):
    client, data = api(UserFactory()), {"kind": "view", "product": make_product().pk, "code": "ANY"}

    if body_format == "form":
        response = client.post(url, "kind=view&code=ANY", content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(url, data, format="multipart")

    assert_error(response, 415, "unsupported_media_type")


def test_an_amount_is_a_string_of_at_most_two_decimals(api):
    coupon = CouponFactory(campaign__categories="")

    for cart_total in (45, 45.5, "45.123", "-1", " 45", ""):
        response = api(coupon.user).post(VALIDATE, {"code": coupon.code, "cart_total": cart_total})
        assert list(assert_error(response, 400, "invalid")["errors"]) == ["cart_total"]


def test_events_that_cannot_be_recorded_are_logged_with_their_content_and_answered_503(
    api, make_product, monkeypatch, caplog
):
    product = make_product()

    def broken(new_events):
        raise ConnectionError("the cache is gone")

    monkeypatch.setattr(events, "bulk_record", broken)
    with caplog.at_level(logging.ERROR, logger="personalization.api"):
        response = api().post(EVENTS, {"kind": "view", "product": product.pk})

    assert_error(response, 503, "unavailable")
    assert f"('view', '{product.pk}'" in caplog.text


# Throttles, permissions, schema -----------------------------------------------------------------


def test_each_shopper_is_throttled_on_their_own(trained, for_you, api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"personalization.recommendations.user": "2/min"},
    }
    first, second = api(trained.shoppers["dairy"][0]), api(trained.shoppers["dairy"][1])
    params = {"placement": "api-for-you"}

    answers = [first.get(RECOMMENDATIONS, params).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert_error(first.get(RECOMMENDATIONS, params), 429, "throttled")
    assert second.get(RECOMMENDATIONS, params).status_code == 200
    assert api().get(RECOMMENDATIONS, params).status_code == 200  # anonymous: its own, default, rate


@pytest.mark.parametrize("proxies, same_client", [(0, True), (1, False)])
def test_anonymous_throttles_believe_x_forwarded_for_only_behind_trusted_proxies(
    proxies, same_client, for_you, api, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"personalization.recommendations.anon": "2/min"},
    }
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRUSTED_PROXIES": proxies}
    client, params = api(), {"placement": "api-for-you"}

    answers = [
        client.get(RECOMMENDATIONS, params, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(3)
    ]

    # No proxy trusted: the made-up headers are one client (REMOTE_ADDR); behind one proxy, three clients.
    assert answers == ([200, 200, 429] if same_client else [200, 200, 200])


def api_views():
    from personalization.api import urls

    return [(pattern.name, pattern.callback) for pattern in urls.urlpatterns]


@pytest.mark.parametrize("name, callback", api_views())
def test_every_api_view_names_its_permissions_and_throttles_and_their_rates_are_set(name, callback, settings):
    view = callback.cls
    explicit = {**vars(view), **callback.initkwargs}

    assert explicit.get("permission_classes"), f"{name} relies on the store's default permissions"
    assert explicit.get("throttle_classes"), f"{name} relies on the store's default throttles"
    from personalization.api.rates import DEFAULT_RATES

    rates = {**DEFAULT_RATES, **settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})}
    for audience in ("anon", "user"):
        assert rates[f"{view.throttle_scope}.{audience}"]


def test_the_schema_is_valid_openapi_of_this_api(db, api):
    from drf_spectacular.validation import validate_schema

    response = api().get(reverse("personalization_api:schema"), {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/personalization/recommendations/",
        "/api/personalization/cart-predictions/",
        "/api/personalization/coupons/",
        "/api/personalization/coupons/validate/",
        "/api/personalization/events/",
        "/api/personalization/promotions/",
    }


def test_the_schema_says_who_may_call_each_endpoint_what_it_may_answer_and_that_bodies_are_json(db, api):
    paths = api().get(reverse("personalization_api:schema"), {"format": "json"}).json()["paths"]
    operation = lambda path, method="get": paths[f"/api/personalization/{path}"][method]  # noqa: E731
    signed_in = [{"tokenAuth": []}, {"cookieAuth": []}]

    for anyone in (operation("recommendations/"), operation("cart-predictions/"), operation("events/", "post"), operation("promotions/")):
        assert sorted(anyone["security"], key=str) == sorted([*signed_in, {}], key=str)
    for account in (operation("coupons/"), operation("coupons/validate/", "post")):
        assert account["security"] == signed_in
    assert set(operation("recommendations/")["responses"]) == {"200", "400", "401", "404", "429", "503"}
    assert set(operation("coupons/")["responses"]) == {"200", "401", "429", "503"}
    for path in ("events/", "coupons/validate/"):
        body = operation(path, "post")["requestBody"]
        assert body["required"] and list(body["content"]) == ["application/json"]
        assert set(operation(path, "post")["responses"]) >= {"400", "401", "403", "415", "429", "503"}


def test_the_schema_generates_without_warnings(db, tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "/api/personalization/recommendations/" in (tmp_path / "schema.yaml").read_text()


def test_the_docs_page_loads_swagger_ui_from_the_stores_static_files(db, api):
    from django.contrib.staticfiles import finders

    response = api().get(reverse("personalization_api:docs"))

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in html and "googleapis" not in html


# The store's cart through the adapter -----------------------------------------------------------


def test_the_adapter_reads_a_signed_in_or_anonymous_shoppers_cart(make_product):
    from personalization.adapters import get_adapter

    apples, pears = make_product(), make_product()
    user = UserFactory()
    CartLine.objects.create(cart=Cart.objects.create(user=user), product=apples, quantity=2)
    CartLine.objects.create(cart=Cart.objects.create(session_key="anon-cart"), product=pears, quantity=1)

    mine = get_adapter().cart_lines(user_id=user.pk)
    theirs = get_adapter().cart_lines(session_key="anon-cart")

    assert [(line.product_id, line.quantity) for line in mine] == [(str(apples.pk), 2)]
    assert [(line.product_id, line.quantity) for line in theirs] == [(str(pears.pk), 1)]
    assert get_adapter().cart_lines() == []


@pytest.mark.parametrize("host", ["testserver", "shop.example:8443"])
def test_the_recommendations_answer_holds_exactly_what_its_schema_fields_say(trained, rf, settings, host):
    """RecommendationsSerializer writes its answer in one pass; serializing it field by field (what
    the schema documents) gives the same data."""
    from rest_framework import serializers as drf

    from personalization.api.serializers import RecommendationsSerializer

    settings.ALLOWED_HOSTS = ["testserver", "shop.example"]
    shopper = trained.shoppers["dairy"][0]
    request = rf.get("/api/personalization/recommendations/", HTTP_HOST=host, secure=host != "testserver")
    for slug in ("home-for-you", "home-buy-again"):
        found = ranking.recommend(Placement.objects.get(slug=slug), events.Shopper(user_id=shopper.pk))
        serializer = RecommendationsSerializer(found, context={"request": request})
        assert found.items
        assert serializer.data == drf.Serializer.to_representation(serializer, found)


def test_a_click_or_impression_sent_again_counts_once_per_shopper_recommendation_and_product(api, make_product):
    product, client = make_product(), api()
    body = [{"kind": kind, "product": product.pk, "recommendation_id": issued()} for kind in ("impression", "click")]

    for _ in range(3):
        assert client.post(EVENTS, body).status_code == 202
    api().post(EVENTS, body)  # another shopper

    assert Event.objects.filter(kind=EventKind.CLICK).count() == Event.objects.filter(kind=EventKind.IMPRESSION).count() == 2

