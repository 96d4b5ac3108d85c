"""Simultaneous submissions of one checkout (a double click, two tabs): one order, on SQLite and PostgreSQL.

Each submission is a browser of its own (a test client) on a thread of its own, so with a database
connection and a transaction of its own; a barrier releases them together.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from shop.models import Cart, CartLine, Order, Product
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SUBMISSIONS = 8
DELIVERY = {"full_name": "Ada Lovelace", "address": "1 Main Street\nLondon"}


def submit_together(clients, path, data):
    """POSTs `data` to `path` from every client at the same moment; returns their responses."""
    barrier = threading.Barrier(len(clients))

    def submit(client):
        barrier.wait()
        try:
            return client.post(path, data)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(submit, clients))


def logged_in_clients(user, count):
    clients = [Client() for _ in range(count)]
    for client in clients:
        client.force_login(user)
    return clients


def test_simultaneous_submissions_of_one_checkout_place_one_order():
    shopper = UserFactory()
    apple = ProductFactory(stock=100)
    cart = Cart.objects.create(user=shopper)
    CartLine.objects.create(cart=cart, product=apple, quantity=2)
    clients = logged_in_clients(shopper, SUBMISSIONS)

    responses = submit_together(clients, reverse("checkout"), DELIVERY)

    order = Order.objects.get()
    assert [response.status_code for response in responses] == [302] * SUBMISSIONS
    assert {response["Location"] for response in responses} == {reverse("order_confirmation", args=[order.pk])}
    assert order.lines.get().quantity == 2
    assert Product.objects.get(pk=apple.pk).stock == 98
