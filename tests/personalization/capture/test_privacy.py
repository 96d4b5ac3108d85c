"""Opt-out, erasure and retention."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

import personalization
from personalization.capture import events, privacy
from personalization.conf import settings as conf
from personalization.models import Event, EventSource
from shop.models import CartLine

pytestmark = pytest.mark.django_db


def stored_event(user_id="", session_key="", days_ago=0, kind="view"):
    return Event.objects.create(
        kind=kind,
        product_id="1",
        user_id=user_id,
        session_key=session_key,
        created_at=timezone.now() - timedelta(days=days_ago),
        source=EventSource.LIVE,
    )


def test_an_opted_out_shopper_is_not_recorded(user_cart, make_product, django_capture_on_commit_callbacks):
    privacy.opt_out(user=user_cart.user)

    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.create(cart=user_cart, product=make_product(), quantity=1)
        assert events.record("view", "1", user_id=user_cart.user_id) is False

    assert Event.objects.count() == 0


def test_a_store_opts_a_session_out_and_in_through_the_package(django_capture_on_commit_callbacks):
    personalization.opt_out(session_key="s-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert events.record("view", "1", session_key="s-1") is False
    personalization.opt_in(session_key="s-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert events.record("view", "1", session_key="s-1") is True

    assert list(Event.objects.values_list("session_key", flat=True)) == ["s-1"]


def test_opting_out_erases_what_was_recorded_and_opting_in_resumes(shopper, django_capture_on_commit_callbacks):
    stored_event(user_id=str(shopper.pk))

    privacy.opt_out(user=shopper)
    assert Event.objects.count() == 0
    privacy.opt_in(user=shopper)
    with django_capture_on_commit_callbacks(execute=True):
        assert events.record("view", "1", user_id=shopper.pk) is True

    assert Event.objects.count() == 1


def test_an_anonymous_session_can_opt_out(session_cart, make_product, django_capture_on_commit_callbacks):
    privacy.opt_out(session_key=session_cart.session_key)

    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.create(cart=session_cart, product=make_product(), quantity=1)

    assert Event.objects.count() == 0


def test_forget_command_erases_one_users_events_only(shopper):
    stored_event(user_id=str(shopper.pk))
    stored_event(user_id=str(shopper.pk), kind="cart_add")
    other = stored_event(user_id="someone-else")

    call_command("personalization_forget", "--user", str(shopper.pk))

    assert list(Event.objects.all()) == [other]


def test_deleting_a_user_erases_their_events(shopper):
    stored_event(user_id=str(shopper.pk))
    other = stored_event(user_id="someone-else")

    shopper.delete()

    assert list(Event.objects.all()) == [other]


def test_purge_deletes_only_events_older_than_the_retention_period():
    recent = stored_event(days_ago=conf.RETENTION_DAYS - 1)
    stored_event(days_ago=conf.RETENTION_DAYS + 1)

    assert privacy.purge_expired_events() == 1
    assert list(Event.objects.all()) == [recent]


def test_purge_keeps_everything_when_retention_is_off(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RETENTION_DAYS": None}
    stored_event(days_ago=5000)

    assert privacy.purge_expired_events() == 0
    assert Event.objects.count() == 1


def test_repeated_views_within_the_window_count_once(shopper, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert events.record("view", "7", user_id=shopper.pk) is True
        assert events.record("view", "7", user_id=shopper.pk) is False
        assert events.record("view", "8", user_id=shopper.pk) is True

    assert Event.objects.count() == 2
