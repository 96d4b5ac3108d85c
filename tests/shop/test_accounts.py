"""Signing up, logging in and out."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_signing_up_creates_the_account_and_logs_the_shopper_in(client):
    response = client.post(
        reverse("signup"), {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD}, follow=True
    )

    user = get_user_model().objects.get(username="newcomer")
    assert response.context["user"] == user
    assert response.redirect_chain[-1][0] == reverse("home")


def test_signing_up_with_mismatched_passwords_shows_the_form_again(client):
    response = client.post(reverse("signup"), {"username": "newcomer", "password1": PASSWORD, "password2": "other"})

    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_logging_in_with_the_right_password(client):
    user = UserFactory()

    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True)

    assert response.context["user"] == user


def test_logging_out_takes_a_post(client):
    client.force_login(UserFactory())

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"), follow=True)

    assert not response.context["user"].is_authenticated
