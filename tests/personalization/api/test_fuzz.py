"""The API against its own OpenAPI schema: schemathesis sends what the schema allows and what it
does not, anonymous and signed in with a token, with every check it has. Every answer must be one
the schema documents, valid input accepted, invalid input refused, and never a server error.

The demo store is served through its WSGI handler in the test's own transaction; throttles are
off; the store has a few products and trained models (the `trained` store)."""
import zlib
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from personalization.api.rates import DEFAULT_RATES
from personalization.capture import attribution, events
from personalization.models import Placement
from shop.models import Cart, CartLine, Product
from tests.personalization.coupon_factories import CouponFactory

pytestmark = [pytest.mark.django_db]

#: Every check; one exception to "schema-valid input is accepted": a coupon that does not apply
#: (below its minimum, its offer spent) is the documented 400 of an exactly well-formed request.
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path": "/api/personalization/coupons/validate/",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "429"]}},
            }
        ]
    }
)

#: Loaded when the module is collected: one request to the schema endpoint, which needs no database.
schema = schemathesis.openapi.from_wsgi(
    "/api/personalization/schema/?format=json", get_wsgi_application(), config=CONFIG
)

#: Examples per endpoint and audience: the whole module runs in about a minute on two cores.
FUZZ = settings(
    max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(autouse=True)
def store(model_files, trained, settings):
    """The tiny store with trained models and the demo's placements; no throttles."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {scope: None for scope in DEFAULT_RATES},
    }
    return trained


@pytest.fixture(autouse=True)
def connection_kept_across_requests():
    """The WSGI handler closes the database connection after each request, which would end the
    test's transaction; Django's test client keeps it open the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def shopper(store):
    return store.shoppers["dairy"][0]


@pytest.fixture
def coupon(shopper, store):
    """A coupon of the signed-in shopper that applies to any cart, and a cart in the store to apply it to."""
    CartLine.objects.create(cart=Cart.objects.create(user=shopper), product=store.product("Milk"), quantity=2)
    campaign = {"categories": "", "min_cart_total": Decimal(0), "max_discount": Decimal(5)}
    return CouponFactory(user=shopper, **{f"campaign__{field}": value for field, value in campaign.items()})


class StoreReferences:
    """What the schema cannot say: which product ids, placements and coupon codes exist, and which
    recommendation ids a shopper was shown. Schema-valid parts of a case are made to name real ones
    (a made-up product is rightly a 400); parts generated invalid are left as they are."""

    def __init__(self, coupon_code=None):
        self.products = sorted(str(pk) for pk in Product.objects.values_list("pk", flat=True))
        self.placements = sorted(Placement.objects.values_list("slug", flat=True))
        self.coupon_code = coupon_code

    def apply(self, case):
        if not case.meta.is_negative_at(ParameterLocation.QUERY) and isinstance(case.query, dict):
            if "product" in case.query:
                case.query["product"] = self._pick(self.products, case.query["product"])
            if "placement" in case.query:  # some stay unknown: a 404
                slug = case.query["placement"]
                case.query["placement"] = self._pick([*self.placements, slug], slug)
        if not case.meta.is_negative_at(ParameterLocation.BODY):
            body = case.body if isinstance(case.body, list) else [case.body]
            for item in (item for item in body if isinstance(item, dict)):
                if "product" in item:
                    item["product"] = self._pick(self.products, item["product"])
                if "recommendation_id" in item:  # one shown to a visitor without a session counts for anyone
                    item["recommendation_id"] = attribution.new_recommendation_id(events.Shopper())
                if "code" in item and self.coupon_code:
                    item["code"] = self.coupon_code
        return case

    @staticmethod
    def _pick(choices, value):
        return choices[zlib.crc32(str(value).encode()) % len(choices)]


@schema.parametrize()
@FUZZ
def test_anonymous_shoppers_get_answers_the_schema_documents_and_never_a_server_error(case):
    StoreReferences().apply(case).call_and_validate()


@schema.parametrize()
@FUZZ
def test_token_holders_get_answers_the_schema_documents_and_never_a_server_error(case, shopper, coupon):
    token = Token.objects.get_or_create(user=shopper)[0].key

    StoreReferences(coupon.code).apply(case).call_and_validate(headers={"Authorization": f"Token {token}"})
