"""Caching of recommendations: reused until the shopper's events or the active model change."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalization import state
from personalization.capture import events, privacy
from personalization.capture.events import Shopper
from personalization.models import Event, EventKind, ModelKind, Placement
from personalization.serving import ranking
from tests.factories import ProductFactory
from tests.personalization.stores import purchase, train_and_activate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

Strategy = Placement.Strategy


def for_you(limit=4):
    return Placement.objects.create(slug="test-for-you", name="for you", strategy=Strategy.FOR_YOU, limit=limit)


def test_a_new_event_of_the_shopper_renews_their_recommendations(trained, django_capture_on_commit_callbacks):
    dairy = trained.shoppers["dairy"][0]
    unit = for_you()
    first = ranking.recommend(unit, Shopper(user_id=dairy.pk))
    shown = trained.products[first.items[0].product.title]
    # Written behind the events module's back: the cached recommendations stay as they were.
    Event.objects.create(kind=EventKind.PURCHASE, user_id=str(dairy.pk), product_id=str(shown.pk), order_id="late-1")
    assert str(shown.pk) in ranking.recommend(unit, Shopper(user_id=dairy.pk)).product_ids

    with django_capture_on_commit_callbacks(execute=True):
        events.record(EventKind.VIEW, trained.product("Apples").pk, user_id=dairy.pk)
    renewed = ranking.recommend(unit, Shopper(user_id=dairy.pk))

    assert str(shown.pk) not in renewed.product_ids  # now known as bought, so left out


def test_a_newly_activated_model_is_used_at_once(trained, django_capture_on_commit_callbacks):
    dairy = trained.shoppers["dairy"][0]
    unit = for_you(limit=30)
    skyr = ProductFactory(title="Skyr", category=trained.product("Milk").category)
    first = ranking.recommend(unit, Shopper(user_id=dairy.pk))
    assert str(skyr.pk) not in {item.product.id for item in first if item.strategy == Strategy.FOR_YOU}
    # Other shoppers discover Skyr; the next training run learns it.
    Event.objects.bulk_create(
        purchase(user, skyr, f"skyr-{user.pk}", ordered_at=first_order_time()) for user in trained.shoppers["dairy"][1:]
    )

    with django_capture_on_commit_callbacks(execute=True):
        train_and_activate(kinds=[ModelKind.AUTOENCODER])
    again = ranking.recommend(unit, Shopper(user_id=dairy.pk))

    assert str(skyr.pk) in {item.product.id for item in again if item.strategy == Strategy.FOR_YOU}


def first_order_time():
    return Event.objects.order_by("created_at").values_list("created_at", flat=True).first()


def test_a_repeated_request_reads_only_the_live_product_data(trained, django_assert_num_queries):
    dairy = Shopper(user_id=trained.shoppers["dairy"][0].pk)
    unit = for_you()
    ranking.recommend(unit, dairy)

    with django_assert_num_queries(1):  # the products, through the adapter: stock and prices are live
        again = ranking.recommend(unit, dairy)

    assert len(again) == 4


@pytest.fixture
def cache_reads(monkeypatch):
    """Each read of the cache by the code under test: ("get", key) or ("get_many", keys)."""
    from django.core.cache import cache

    reads, inside = [], []
    get, get_many = cache.get, cache.get_many

    def counted_get(key, *args, **kwargs):
        if not inside:  # the in-memory cache answers get_many with gets
            reads.append(("get", key))
        return get(key, *args, **kwargs)

    def counted_get_many(keys, *args, **kwargs):
        reads.append(("get_many", keys))
        inside.append(True)
        try:
            return get_many(keys, *args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(cache, "get", counted_get)
    monkeypatch.setattr(cache, "get_many", counted_get_many)
    return reads


@pytest.mark.parametrize("product", [None, "page product"])
def test_a_repeated_request_by_slug_reads_the_cache_once(trained, cache_reads, product):
    dairy = Shopper(user_id=trained.shoppers["dairy"][0].pk)
    Placement.objects.create(slug="test-similar", name="similar", strategy=Strategy.SIMILAR, limit=4)
    slug, product_id = ("test-similar", trained.product("Milk").pk) if product else ("home-for-you", None)
    first = ranking.recommend(slug, dairy, product_id=product_id)  # an int id, as a template passes it
    cache_reads.clear()

    again = ranking.recommend(slug, dairy, product_id=str(product_id) if product_id else None)

    assert [kind for kind, _ in cache_reads] == ["get_many"]  # the placement, the shopper's state and the shortlist
    assert again.product_ids == first.product_ids and again.product_ids


def test_repeated_cart_predictions_read_the_cache_once(trained, cache_reads):
    dairy = Shopper(user_id=trained.shoppers["dairy"][0].pk)
    ask = ranking.Ask(cart_product_ids=trained.ids("Milk"))
    first = ranking.cart_predictions(dairy, ask)
    cache_reads.clear()

    again = ranking.cart_predictions(dairy, ask)

    assert [kind for kind, _ in cache_reads] == ["get_many"]  # the placement, the shopper's state and the shortlist
    assert again.product_ids == first.product_ids and again.product_ids


def test_popular_products_are_counted_once_not_per_request(trained):
    unit = Placement.objects.create(slug="test-popular", name="popular", strategy=Strategy.POPULAR, limit=4)
    ranking.recommend(unit, Shopper(session_key="visitor-1"))

    with CaptureQueriesContext(connection) as queries:
        found = ranking.recommend(unit, Shopper(session_key="visitor-2"))

    # The new visitor's own history and opt-out are looked up; the store's orders are not counted again.
    assert not [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]

    assert {item.product.title for item in found} == {"Milk", "Butter", "Bread", "Croissant"}  # in all 40 orders of their kind


def test_after_opting_out_and_back_in_nothing_from_before_is_shown(trained):
    dairy = trained.shoppers["dairy"][0]
    unit = for_you()
    assert {item.strategy for item in ranking.recommend(unit, Shopper(user_id=dairy.pk))} == {Strategy.FOR_YOU}

    privacy.opt_out(user=dairy)
    while_out = ranking.recommend(unit, Shopper(user_id=dairy.pk))
    privacy.opt_in(user=dairy)
    back_in = ranking.recommend(unit, Shopper(user_id=dairy.pk))

    assert Strategy.FOR_YOU not in {item.strategy for item in while_out}
    assert Strategy.FOR_YOU not in {item.strategy for item in back_in}  # their history was erased


@pytest.mark.parametrize("cached_answer", [True, False], ids=["answer-cached", "answer-expired"])
def test_an_opt_out_made_in_the_admin_stops_cached_recommendations_at_once(trained, cached_answer):
    """A cached shortlist is served without asking whether the shopper opted out: any new OptOut
    row (the admin makes them without privacy.opt_out) renews the shopper's version token."""
    from django.core.cache import cache

    from personalization.models import OptOut

    dairy = trained.shoppers["dairy"][0]
    unit = for_you()
    assert {item.strategy for item in ranking.recommend(unit, Shopper(user_id=dairy.pk))} == {Strategy.FOR_YOU}

    OptOut.objects.create(user=dairy)
    if not cached_answer:
        cache.delete(state.opt_out_key(dairy.pk))

    assert Strategy.FOR_YOU not in {item.strategy for item in ranking.recommend(unit, Shopper(user_id=dairy.pk))}
