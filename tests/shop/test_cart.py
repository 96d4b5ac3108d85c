"""Filling the cart: adding, changing and removing products, stock limits, and merging on login."""
import pytest
from django.urls import reverse

from shop.models import Cart, CartLine
from tests.factories import PASSWORD, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def add(client, product, quantity=1):
    return client.post(reverse("cart_add", args=[product.pk]), {"quantity": quantity}, follow=True)


def cart_contents(cart):
    return {line.product.title: line.quantity for line in cart.lines.select_related("product")}


def test_an_anonymous_shopper_gets_a_cart_kept_under_their_session(client):
    product = ProductFactory(title="Apple")

    response = add(client, product, 2)

    cart = Cart.objects.get()
    assert cart.user is None
    assert cart.session_key == client.session.session_key
    assert cart_contents(cart) == {"Apple": 2}
    assert response.context["cart_count"] == 2


def test_adding_a_product_again_adds_to_its_quantity(client):
    product = ProductFactory(title="Apple")

    add(client, product, 2)
    add(client, product, 3)

    assert cart_contents(Cart.objects.get()) == {"Apple": 5}


def test_adding_more_than_the_stock_is_refused_with_a_message(client):
    product = ProductFactory(title="Apple", stock=3)
    add(client, product, 2)

    response = add(client, product, 2)

    assert cart_contents(Cart.objects.get()) == {"Apple": 2}
    assert "Only 3 of “Apple” left in stock." in [str(m) for m in response.context["messages"]]


def test_an_inactive_product_cannot_be_added(client):
    product = ProductFactory(active=False)

    response = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 1})

    assert response.status_code == 404
    assert not CartLine.objects.exists()


def test_adding_redirects_back_to_a_local_next_page_only(client):
    product = ProductFactory()

    local = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 1, "next": "/search/?q=a"})
    foreign = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 1, "next": "https://evil.example/"})

    assert local["Location"] == "/search/?q=a"
    assert foreign["Location"] == product.get_absolute_url()


def test_the_cart_page_shows_lines_and_the_total(client):
    add(client, ProductFactory(title="Apple", price="1.50"), 2)
    add(client, ProductFactory(title="Bread", price="3.00"), 1)

    response = client.get(reverse("cart"))

    assert [line.product.title for line in response.context["lines"]] == ["Apple", "Bread"]
    assert "$6.00" in response.text


def test_changing_a_lines_quantity(client):
    product = ProductFactory(title="Apple")
    add(client, product, 1)

    client.post(reverse("cart_update", args=[product.pk]), {"quantity": 4})

    assert cart_contents(Cart.objects.get()) == {"Apple": 4}


def test_changing_a_quantity_beyond_the_stock_is_refused(client):
    product = ProductFactory(title="Apple", stock=5)
    add(client, product, 1)

    response = client.post(reverse("cart_update", args=[product.pk]), {"quantity": 6}, follow=True)

    assert cart_contents(Cart.objects.get()) == {"Apple": 1}
    assert "Only 5 of “Apple” left in stock." in response.text


def test_setting_quantity_to_zero_removes_the_line(client):
    product = ProductFactory()
    add(client, product, 2)

    client.post(reverse("cart_update", args=[product.pk]), {"quantity": 0})

    assert not CartLine.objects.exists()


def test_removing_a_line(client):
    apple, bread = ProductFactory(title="Apple"), ProductFactory(title="Bread")
    add(client, apple)
    add(client, bread)

    response = client.post(reverse("cart_remove", args=[apple.pk]), follow=True)

    assert cart_contents(Cart.objects.get()) == {"Bread": 1}
    assert "Removed “Apple” from your cart." in response.text


def test_a_shopper_cannot_change_a_line_in_someone_elses_cart(client):
    product = ProductFactory()
    CartLine.objects.create(cart=Cart.objects.create(user=UserFactory()), product=product, quantity=1)

    response = client.post(reverse("cart_update", args=[product.pk]), {"quantity": 5})

    assert response.status_code == 404
    assert CartLine.objects.get().quantity == 1


def test_a_signed_in_shoppers_cart_belongs_to_their_account(client):
    user = UserFactory()
    client.force_login(user)

    add(client, ProductFactory(title="Apple"))

    assert cart_contents(Cart.objects.get(user=user)) == {"Apple": 1}


def log_in(client, user):
    """A real login POST, so that Django cycles the session key as it does for shoppers."""
    return client.post(reverse("login"), {"username": user.username, "password": PASSWORD})


def test_logging_in_hands_the_anonymous_cart_to_an_account_without_a_cart(client):
    user = UserFactory()
    add(client, ProductFactory(title="Apple"), 2)
    anonymous_key = client.session.session_key

    log_in(client, user)

    assert client.session.session_key != anonymous_key
    assert cart_contents(Cart.objects.get(user=user)) == {"Apple": 2}
    assert Cart.objects.count() == 1


def test_logging_in_merges_the_anonymous_cart_into_the_accounts_cart(client):
    user = UserFactory()
    apple, bread, milk = ProductFactory(title="Apple"), ProductFactory(title="Bread"), ProductFactory(title="Milk")
    own = Cart.objects.create(user=user)
    CartLine.objects.create(cart=own, product=apple, quantity=1)
    CartLine.objects.create(cart=own, product=milk, quantity=1)
    add(client, apple, 2)
    add(client, bread, 1)

    log_in(client, user)

    assert cart_contents(Cart.objects.get(user=user)) == {"Apple": 3, "Bread": 1, "Milk": 1}
    assert Cart.objects.count() == 1
    assert client.get(reverse("cart")).context["cart_count"] == 5


def test_a_merged_quantity_is_capped_at_the_stock(client):
    user = UserFactory()
    apple = ProductFactory(title="Apple", stock=4)
    CartLine.objects.create(cart=Cart.objects.create(user=user), product=apple, quantity=3)
    add(client, apple, 3)

    log_in(client, user)

    assert cart_contents(Cart.objects.get(user=user)) == {"Apple": 4}
