"""One shopper's state: every per-shopper cache key in personalization.state, read in one round trip
into a ShopperState where what the cache lacks is None; and the one way a request becomes a shopper."""
import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore

from personalization import registry, state
from personalization.cache import cache
from personalization.capture import privacy
from personalization.models import ModelKind, OptOut, Placement

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_reads(monkeypatch):
    """The cache's get_many calls; a plain get fails the test. No model is active (the registry's
    answer is cached: it asks again on its own when that expires)."""
    cache.set(registry.active_key(ModelKind.NEXT_BASKET), 0, 60)
    reads = []
    get_many = cache.get_many
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: pytest.fail(f"cache.get{args}"))
    monkeypatch.setattr(cache, "get_many", lambda keys: reads.append(list(keys)) or get_many(keys))
    return reads


def test_a_new_shopper_reads_as_nothing_cached_in_one_round_trip(shopper, cache_reads):
    who = state.Shopper(user_id=shopper.pk)
    slot = state.slot_key("home-for-you", who, None, None, None)

    found = state.read(who, models=[ModelKind.NEXT_BASKET], slot=slot, placement_slug="home-for-you")

    assert len(cache_reads) == 1
    assert (found.version, found.opted_out, found.slot, found.placement, found.experiment) == (None,) * 5
    assert found.models == {ModelKind.NEXT_BASKET: None} and found.slot_key == slot


def test_active_versions_the_cache_lacks_come_from_the_database_at_once_and_are_cached(
    shopper, monkeypatch, django_assert_num_queries
):
    from personalization.models import ModelVersion

    active = ModelVersion.objects.create(kind=ModelKind.NEXT_BASKET, number=1, is_active=True)
    kinds = [ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER]
    cache.delete_many([registry.active_key(kind) for kind in kinds])
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: pytest.fail(f"cache.get{args}"))

    with django_assert_num_queries(1):  # both kinds in one query, no second look in the cache
        found = state.read(state.Shopper(user_id=shopper.pk), models=kinds)

    assert found.models == {ModelKind.NEXT_BASKET: active.pk, ModelKind.AUTOENCODER: None}
    cached = cache.get_many([registry.active_key(kind) for kind in kinds])
    assert cached == {registry.active_key(ModelKind.NEXT_BASKET): active.pk, registry.active_key(ModelKind.AUTOENCODER): 0}


def test_what_the_state_lacks_is_worked_out_once_and_cached(shopper):
    who = state.Shopper(user_id=shopper.pk)
    placement = Placement.objects.create(slug="state-test", name="state", strategy=Placement.Strategy.POPULAR)
    cache.set(Placement.cache_key("state-test"), placement, 60)
    empty = state.read(who)

    token, new = empty.version_token()
    assert new and token
    assert empty.is_opted_out() is False  # from the database

    again = state.read(who, placement_slug="state-test")
    assert (again.version, again.opted_out, again.placement) == (token, False, placement)
    assert again.version_token() == (token, False)
    assert again.placement_slug == "state-test" and again.experiment is None  # read, and not cached


def test_an_opt_out_row_is_in_the_next_state_with_a_new_token(shopper):
    who = state.Shopper(user_id=shopper.pk)
    token, _ = state.version_token(who)

    OptOut.objects.create(user=shopper)

    found = state.read(who)
    assert found.opted_out is True and found.version not in (None, token)


def test_renewing_a_version_token_changes_it_and_opting_in_forgets_the_answer(shopper):
    who = state.Shopper(user_id=shopper.pk)
    first, _ = state.version_token(who)

    state.renew_versions([(shopper.pk, "")])
    privacy.opt_in(user=shopper)

    found = state.read(who)
    assert found.version not in (None, first) and found.opted_out is None
    assert state.is_opted_out(shopper.pk) is False and state.read(who).opted_out is False


def test_nobody_has_no_state_and_no_token(cache_reads):
    found = state.read(state.NOBODY, models=[ModelKind.NEXT_BASKET])

    assert found.version_token() == ("", False) and found.is_opted_out() is False
    assert cache_reads == [[registry.active_key(ModelKind.NEXT_BASKET), state.catalog_key()]]


def test_each_key_is_the_shoppers_own(shopper):
    user, visitor = state.Shopper(user_id=shopper.pk), state.Shopper(session_key=str(shopper.pk))
    keys = [state.version_key, lambda s: state.opt_out_key(s.user_id, s.session_key), lambda s: state.history_key(s, "t"),
            lambda s: state.clicks_key(s.user_id, s.session_key), lambda s: state.view_key(s, "1"),
            lambda s: state.slot_key("p", s, None, None, None), lambda s: state.arm_key(1, s)]  # fmt: skip

    assert all(key(user) != key(visitor) for key in keys)
    assert len({key(user) for key in keys}) == len(keys)


def test_a_request_becomes_a_shopper_in_one_place(rf, shopper):
    signed_in = rf.get("/")
    signed_in.user = shopper
    anonymous = rf.get("/")
    anonymous.user, anonymous.session = AnonymousUser(), SessionStore()

    assert state.shopper_from(signed_in) == state.Shopper(user_id=shopper.pk)
    assert state.shopper_from(shopper) == state.Shopper(user_id=shopper.pk)  # a user, as track() takes
    assert not state.shopper_from(anonymous, create_session=False)  # a read: a new shopper, no session made
    assert anonymous.session.session_key is None
    made = state.shopper_from(anonymous)
    assert made == state.Shopper(session_key=anonymous.session.session_key) and made


def test_a_pages_impressions_ask_the_shoppers_opt_out_once(shopper, monkeypatch, django_capture_on_commit_callbacks):
    from personalization.capture import events
    from personalization.models import Event, EventKind

    asked = []
    get = cache.get
    monkeypatch.setattr(cache, "get", lambda key, *args: asked.append(key) or get(key, *args))
    who, other = state.Shopper(user_id=shopper.pk), state.Shopper(session_key="someone-else")
    shown = [events.NewEvent(EventKind.IMPRESSION, str(p), who, recommendation_id="r" * 32) for p in range(8)]

    with django_capture_on_commit_callbacks(execute=True):
        recorded = events.bulk_record([*shown, events.NewEvent(EventKind.IMPRESSION, "1", other, recommendation_id="s" * 32)])

    assert recorded == 9

    assert asked.count(state.opt_out_key(shopper.pk)) == 1 and asked.count(state.opt_out_key(None, "someone-else")) == 1
    assert Event.objects.filter(kind=EventKind.IMPRESSION).count() == 9
