"""What recording costs the store: cart-add and checkout requests with the plugin's receivers
connected vs disconnected, in one process, on the same data, in interleaved rounds.

    .venv/bin/python bench/capture.py [--rounds 60] [--adds 5]

Uses a fresh SQLite file in a temporary folder, or, when DATABASE_URL names a PostgreSQL server, a new
database on that server, dropped afterwards (as bench/serve.py does). Prints one JSON line last:
{"bench": "capture", "ratio": connected time / disconnected time, ...}. Goal (issue 14): ratio <= 1.05.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from serve import throwaway_database  # bench/serve.py: stdlib imports only at load

GOAL = 1.05


def setup_django(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-secret")  # shop/settings.py needs one
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_catalog(n_products):
    from decimal import Decimal

    from shop.models import Category, Product

    category, _ = Category.objects.get_or_create(name="Bench", slug="bench")
    Product.objects.bulk_create(
        Product(title=f"Bench product {i}", slug=f"bench-product-{i}", category=category, price=Decimal("2.00"), stock=10**6)
        for i in range(n_products)
    )
    return list(Product.objects.filter(category=category).values_list("pk", flat=True))


def shopping_round(client, user, product_ids, adds, offset):
    """One shopper: log in, add `adds` products, check out. Returns seconds spent in requests."""
    from django.urls import reverse

    client.force_login(user)
    started = time.perf_counter()
    for i in range(adds):
        product_id = product_ids[(offset + i * 7) % len(product_ids)]
        response = client.post(reverse("cart_add", args=[product_id]), {"quantity": 1 + i % 3})
        assert response.status_code == 302, response.status_code
    response = client.post(reverse("checkout"), {"full_name": "Bench Shopper", "address": "1 Bench Road"})
    assert response.status_code == 302 and "/confirmation/" in response.url, response
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="shoppers per mode")
    parser.add_argument("--adds", type=int, default=5, help="cart adds per shopper before checkout")
    parser.add_argument("--products", type=int, default=500)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="bench-capture-")
    try:
        with throwaway_database(folder) as database_url:
            result = measure(args, database_url)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"connected:    {result['connected_ms_per_request']:.2f} ms/request over {result['requests_per_mode']} requests")
    print(f"disconnected: {result['disconnected_ms_per_request']:.2f} ms/request over {result['requests_per_mode']} requests")
    print(f"events recorded while connected: {result['events_recorded']}")
    print(json.dumps(result))


def measure(args, database_url):
    setup_django(database_url)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from personalization.capture import receivers
    from personalization.models import Event

    product_ids = make_catalog(args.products)
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench{i}") for i in range(2 * args.rounds + 4)
    )
    client = Client()
    # Warm-up in both modes: templates, URL resolver and query compilation are cached first.
    for user, mode in zip(users[:4], ["on", "off", "on", "off"]):
        (receivers.connect if mode == "on" else receivers.disconnect)()
        shopping_round(client, user, product_ids, args.adds, 0)

    times = {"on": [], "off": []}
    events_before = Event.objects.count()
    for r in range(args.rounds):
        # ABBA order so drift on a noisy machine hits both modes alike.
        for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
            (receivers.connect if mode == "on" else receivers.disconnect)()
            user = users[4 + 2 * r + (mode == "off")]
            times[mode].append(shopping_round(client, user, product_ids, args.adds, r))
    receivers.connect()
    recorded = Event.objects.count() - events_before

    connected, disconnected = sum(times["on"]), sum(times["off"])
    requests = args.rounds * (args.adds + 1)
    result = {
        "bench": "capture",
        "rounds": args.rounds,
        "requests_per_mode": requests,
        "connected_ms_per_request": round(1000 * connected / requests, 3),
        "disconnected_ms_per_request": round(1000 * disconnected / requests, 3),
        "median_round_ratio": round(statistics.median(times["on"]) / statistics.median(times["off"]), 3),
        "events_recorded": recorded,
        "ratio": round(connected / disconnected, 3),
        "goal": f"ratio <= {GOAL}",
        "goal_met": connected / disconnected <= GOAL,
        "database": database_url.split("://")[0],
    }
    from django.db import connections

    connections.close_all()  # before the throwaway database is dropped
    return result


if __name__ == "__main__":
    main()
