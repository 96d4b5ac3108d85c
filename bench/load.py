"""Shoppers through the store's HTML pages under gunicorn on PostgreSQL, then what the plugin recorded
against what the store did: every order line one purchase event, every cart change its cart event.

    .venv/bin/python bench/load.py [--quick] [--shoppers 20] [--seconds 60] [--products 200] [--workers 2]

Builds a throwaway store in a new PostgreSQL database on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/postgres; dropped afterwards): migrate, `seed_catalog --products`
(stock then raised so that every add and checkout is accepted: the shoppers' own tally stays exact),
and one account per shopper. The store then runs under gunicorn on 127.0.0.1 with shop/settings.py
(DEBUG off, sync workers) and --shoppers threads shop through it for --seconds, each with its own
cookies: home, a category, product pages, POST /cart/add/<id>/ (the CSRF token from the cookie),
sometimes /cart/update/<id>/ (a new quantity, 0 included) and /cart/remove/<id>/, the cart, and
/checkout/ (one checkout in eight submitted twice at once, as a double click: the second is answered
"already placed" with the same order). Half the shoppers sign in once at the start; the other half
shop anonymously, are sent to /accounts/login/ by the checkout (their cart and events merge into
the account), and sign out after each order. Every redirect is followed, as a browser does.

Then, from the database: order lines against purchase events, as sets of (order, product, quantity,
user); and cart events against the store's own state. For each shopper (account, or session of an
anonymous cart never signed in) and product, cart_add minus cart_remove from one checkout to the next
must equal the quantity of that checkout's order line (for events after the last checkout: the
quantity still in the cart). A shortfall is a lost event, an excess a duplicated one. The shoppers'
own count of accepted cart changes (each should be one event) is printed beside the events recorded.

Prints a summary and one JSON line last; exits with 1 when anything is lost or duplicated, a
response is 5xx, or nothing was checked out.
"""
import argparse
import bisect
import collections
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

from serve import gunicorn, say, throwaway_database

SECRET_KEY = "bench-only-not-secret"
PASSWORD = "bench-shopper-password"
STOCK = 1_000_000
MAX_ROUNDS = 10_000  # a shopper's loop ends at the deadline; this only bounds it


# The store -----------------------------------------------------------------------------------------


def build_store(n_products, n_shoppers):
    """Migrates, seeds the catalog, raises its stock and creates the shoppers' accounts (one
    password hash for all: hashing is slow on purpose). Returns the products' (id, slug) pairs and
    the categories' slugs."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connections

    from shop.models import Category, Product

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_catalog", products=n_products, verbosity=0)
    Product.objects.update(stock=STOCK, active=True)
    hashed = make_password(PASSWORD)
    get_user_model().objects.bulk_create(
        get_user_model()(username=username(n), password=hashed) for n in range(n_shoppers)
    )
    products = list(Product.objects.values_list("pk", "slug"))
    categories = list(Category.objects.values_list("slug", flat=True))
    connections.close_all()
    return products, categories


def username(n):
    return f"shopper{n:03d}"


# The shoppers ----------------------------------------------------------------------------------------


class Traffic:
    """Every response the shoppers got, shared by their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.errors = collections.Counter()  # (status, path pattern) of 4xx and 5xx
        self.failures = collections.Counter()  # exceptions: connection errors, timeouts
        self.accepted_changes = 0
        self.double_submits = 0
        self.merges = 0  # anonymous carts signed in at checkout
        self.double_submit_mismatches = []
        self.orders = []  # (user name, order id)

    def note(self, response):
        for hop in [*response.history, response]:
            with self.lock:
                self.statuses[hop.status_code] += 1
                if hop.status_code >= 400:
                    self.errors[(hop.status_code, pattern(hop.request.path_url))] += 1

    @property
    def requests(self):
        return sum(self.statuses.values())


def pattern(path):
    """A path with its ids and slugs replaced, to list errors by page."""
    path = path.split("?")[0]
    path = re.sub(r"/(products|categories)/[^/]+/", r"/\1/<slug>/", path)
    return re.sub(r"/\d+/", "/<id>/", path)


class Shopper:
    """One simulated shopper with their own cookies; `cart` is what they believe their cart holds."""

    def __init__(self, n, base, products, categories, traffic, deadline, signed_in):
        self.name = username(n)
        self.base = base
        self.products = products
        self.categories = categories
        self.traffic = traffic
        self.deadline = deadline
        self.signed_in_shopper = signed_in
        self.rng = random.Random(n)
        self.session = requests.Session()
        self.cart = collections.Counter()
        self.signed_in = False

    def run(self):
        try:
            if self.signed_in_shopper:
                self.get("/accounts/login/")
                self.log_in()
            for _ in range(MAX_ROUNDS):
                if self.over():
                    break
                self.shop_once()
        except requests.RequestException as error:
            with self.traffic.lock:
                self.traffic.failures[type(error).__name__] += 1
        finally:
            self.session.close()

    def over(self):
        return time.monotonic() >= self.deadline

    # requests

    def get(self, path, **kwargs):
        response = self.session.get(self.base + path, timeout=120, **kwargs)
        self.traffic.note(response)
        return response

    def post(self, path, data, session=None):
        session = session or self.session
        data = {**data, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")}
        response = session.post(self.base + path, data=data, timeout=120)
        self.traffic.note(response)
        return response

    def log_in(self, next_path=""):
        response = self.post("/accounts/login/", {"username": self.name, "password": PASSWORD, "next": next_path})
        if not response.history or "sessionid" not in self.session.cookies:
            raise RuntimeError(f"{self.name} could not sign in: {response.status_code} {response.url}")
        self.signed_in = True
        return response

    # one visit, ending with an order

    def shop_once(self):
        self.get("/")
        self.get(f"/categories/{self.rng.choice(self.categories)}/")
        for _ in range(self.rng.randint(2, 5)):
            if self.over():
                return
            product_id, slug = self.rng.choice(self.products)
            self.get(f"/products/{slug}/")
            if self.rng.random() < 0.7:
                self.change(f"/cart/add/{product_id}/", {"quantity": self.rng.randint(1, 3), "next": f"/products/{slug}/"},
                            product_id, "add")  # fmt: skip
        if self.cart and self.rng.random() < 0.4 and not self.over():
            product_id = self.rng.choice(sorted(self.cart))
            quantity = self.rng.choice([q for q in range(6) if q != self.cart[product_id]])
            self.change(f"/cart/update/{product_id}/", {"quantity": quantity}, product_id, "update", quantity)
        if len(self.cart) > 1 and self.rng.random() < 0.3 and not self.over():
            product_id = self.rng.choice(sorted(self.cart))
            self.change(f"/cart/remove/{product_id}/", {}, product_id, "remove")
        if self.over():
            return
        self.get("/cart/")
        if self.cart:
            self.check_out()

    def change(self, path, data, product_id, how, quantity=0):
        """A cart change; each accepted one is one cart event (a quantity that does not change is never sent)."""
        response = self.post(path, data)
        if not response.history or response.history[0].status_code != 302:
            return
        before = self.cart[product_id]
        after = {"add": before + data.get("quantity", 0), "update": quantity, "remove": 0}[how]
        self.cart[product_id] = after
        if after == 0:
            del self.cart[product_id]
        with self.traffic.lock:
            self.traffic.accepted_changes += 1

    def check_out(self):
        response = self.get("/checkout/")
        if "/accounts/login/" in response.url:  # an anonymous shopper: sign in, their cart merges into the account's
            self.log_in(next_path="/checkout/")
            with self.traffic.lock:
                self.traffic.merges += 1
        details = {"full_name": f"Bench {self.name}", "address": "1 Bench Road"}
        if self.rng.random() < 1 / 8:
            order_id = self.submit_twice(details)
        else:
            order_id = confirmed_order(self.post("/checkout/", details))
        if order_id is not None:
            self.cart.clear()
            with self.traffic.lock:
                self.traffic.orders.append((self.name, order_id))
        if not self.signed_in_shopper:
            self.post("/accounts/logout/", {})
            self.session.cookies.clear()
            self.signed_in = False

    def submit_twice(self, details):
        """The checkout form sent twice at once, with the same cookies: one order, both answered with it."""
        twin = requests.Session()
        twin.cookies.update(self.session.cookies)
        try:
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda session: self.post("/checkout/", details, session), (self.session, twin)))
        finally:
            twin.close()
        orders = [confirmed_order(answer) for answer in answers]
        with self.traffic.lock:
            self.traffic.double_submits += 1
            if orders[0] != orders[1] or orders[0] is None:
                self.traffic.double_submit_mismatches.append((self.name, orders))
        return orders[0] or orders[1]


def confirmed_order(response):
    found = re.search(r"/orders/(\d+)/confirmation/", response.url)
    return int(found.group(1)) if found else None


def shop(port, products, categories, n_shoppers, seconds):
    traffic = Traffic()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    deadline = started + seconds
    shoppers = [Shopper(n, base, products, categories, traffic, deadline, signed_in=n % 2 == 0) for n in range(n_shoppers)]
    threads = [threading.Thread(target=shopper.run, name=shopper.name) for shopper in shoppers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    traffic.seconds = time.monotonic() - started
    traffic.open_carts = {shopper.name: +shopper.cart for shopper in shoppers if shopper.signed_in}
    return traffic


# The comparison --------------------------------------------------------------------------------------


def compare_purchases():
    """(order lines, purchase events, lost, duplicated): order lines without their purchase event, and
    purchase events beyond one per order line (a second one, or one no order line has)."""
    from personalization.models import Event, EventKind
    from shop.models import OrderLine

    lines = collections.Counter(
        (str(order), str(product), quantity, str(user or ""))
        for order, product, quantity, user in OrderLine.objects.values_list("order_id", "product_id", "quantity", "order__user_id")
    )  # fmt: skip
    recorded = collections.Counter(
        Event.objects.filter(kind=EventKind.PURCHASE).values_list("order_id", "product_id", "quantity", "user_id")
    )
    lost = sum((lines - recorded).values())
    duplicated = sum((recorded - lines).values())
    return sum(lines.values()), sum(recorded.values()), lost, duplicated


def compare_cart_events():
    """Per shopper, product and checkout: the net quantity of the cart events against the store's order
    line (or, after the shopper's last checkout, their cart line). Returns (quantities compared, cart
    events, lost, duplicated, mismatches): lost and duplicated count the compared quantities the
    events fall short of or exceed."""
    from personalization.models import Event, EventKind
    from shop.models import CartLine, Order, OrderLine

    placed = collections.defaultdict(list)  # user id -> [(placed_at, order id)] in time order
    for order_id, user_id, placed_at in Order.objects.order_by("placed_at", "pk").values_list("pk", "user_id", "placed_at"):
        placed[f"u{user_id}"].append((placed_at, str(order_id)))
    store = collections.Counter()  # (owner, order id or "cart", product id) -> quantity
    for order_id, user_id, product_id, quantity in OrderLine.objects.values_list(
        "order_id", "order__user_id", "product_id", "quantity"
    ):
        store[(f"u{user_id}", str(order_id), str(product_id))] += quantity
    for user_id, session_key, product_id, quantity in CartLine.objects.values_list(
        "cart__user_id", "cart__session_key", "product_id", "quantity"
    ):
        store[(f"u{user_id}" if user_id else f"s{session_key}", "cart", str(product_id))] += quantity

    recorded = collections.defaultdict(int)
    n_events = 0
    for kind, user_id, session_key, product_id, quantity, created_at in Event.objects.filter(
        kind__in=[EventKind.CART_ADD, EventKind.CART_REMOVE]
    ).values_list("kind", "user_id", "session_key", "product_id", "quantity", "created_at"):
        n_events += 1
        owner = f"u{user_id}" if user_id else f"s{session_key}"
        orders = placed.get(owner, [])
        at = bisect.bisect_left([placed_at for placed_at, _ in orders], created_at)
        segment = orders[at][1] if at < len(orders) else "cart"
        recorded[(owner, segment, product_id)] += quantity if kind == EventKind.CART_ADD else -quantity

    lost = duplicated = 0
    mismatches = []
    for key in sorted(set(store) | set(recorded)):
        difference = recorded.get(key, 0) - store.get(key, 0)
        if difference:
            mismatches.append((*key, store.get(key, 0), recorded.get(key, 0)))
            lost += difference < 0
            duplicated += difference > 0
    return sum(1 for quantity in store.values() if quantity), n_events, lost, duplicated, mismatches


def store_state(traffic):
    """The orders the store holds, and the signed-in shoppers' carts as they believe them and as the
    store holds them (the store's doing, not the plugin's: a difference here is the bench's to explain)."""
    from shop.models import CartLine, Order

    orders = Order.objects.count()
    believed = {
        (name, product_id): quantity for name, cart in traffic.open_carts.items() for product_id, quantity in cart.items()
    }
    held = {
        (name, product_id): quantity
        for name, product_id, quantity in CartLine.objects.filter(cart__user__isnull=False).values_list(
            "cart__user__username", "product_id", "quantity"
        )
    }
    return orders, believed, held


# Main ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 shoppers for 10 s")
    parser.add_argument("--shoppers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--cache-down", action="store_true",
                        help="the web processes' cache is a Redis nobody listens on (127.0.0.1:1)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.shoppers, args.seconds = 5, 10.0

    given = os.environ.get("DATABASE_URL", "")
    if not given.startswith(("postgres://", "postgresql://")):
        if given:
            sys.exit(f"bench/load.py runs on PostgreSQL; DATABASE_URL is {given.split('://')[0]}")
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/postgres"
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    with throwaway_database(folder) as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "shop.settings",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        }
        os.environ.update({key: env[key] for key in env if key.startswith(("DJANGO_", "DATABASE_"))})
        if args.cache_down:  # the web processes only: setting the store up uses the cache (django-admin-charts)
            env["CACHE_URL"] = "redis://127.0.0.1:1/0"
        started = time.perf_counter()
        products, categories = build_store(args.products, args.shoppers)
        say(f"store: {len(products)} products in {len(categories)} categories, {args.shoppers} accounts "
            f"({time.perf_counter() - started:.0f}s)")
        with open(folder / "gunicorn.log", "w") as log, gunicorn(env, args.workers, 1, log) as port:
            say(f"gunicorn on 127.0.0.1:{port}, {args.workers} sync workers; {args.shoppers} shoppers for {args.seconds:g}s")
            traffic = shop(port, products, categories, args.shoppers, args.seconds)
        say(f"{traffic.requests} requests in {traffic.seconds:.1f}s; comparing")
        result = report(args, traffic)
        if result["status_5xx"]:
            print(f"gunicorn's log ({folder / 'gunicorn.log'}) is kept")
        else:
            (folder / "gunicorn.log").unlink()
            folder.rmdir()
    print(json.dumps(result))
    sys.exit(1 if failed(result) else 0)


def failed(result):
    return bool(
        result["status_5xx"] or result["failures"] or not result["order_lines"]
        or result["lost_purchases"] or result["duplicated_purchases"]
        or result["lost_cart_events"] or result["duplicated_cart_events"]
    )  # fmt: skip


def report(args, traffic):
    order_lines, purchase_events, lost_purchases, duplicated_purchases = compare_purchases()
    compared, cart_events, lost_cart, duplicated_cart, mismatches = compare_cart_events()
    orders, believed, held = store_state(traffic)
    status_5xx = sum(count for status, count in traffic.statuses.items() if status >= 500)
    status_4xx = {f"{status} {path}": count for (status, path), count in sorted(traffic.errors.items()) if status < 500}

    print()
    print(f"requests:        {traffic.requests} in {traffic.seconds:.1f}s ({traffic.requests / traffic.seconds:.1f}/s), "
          f"statuses {dict(sorted(traffic.statuses.items()))}")
    if traffic.errors:
        print("errors by page:  " + ", ".join(f"{status} {path}: {n}" for (status, path), n in sorted(traffic.errors.items())))
    if traffic.failures:
        print(f"client failures: {dict(traffic.failures)}")
    print(f"orders:          {orders} in the store, {len(traffic.orders)} confirmed to the shoppers; "
          f"{traffic.double_submits} submitted twice at once"
          + (f", answered with different orders: {traffic.double_submit_mismatches}" if traffic.double_submit_mismatches else ""))
    print(f"purchases:       {order_lines} order lines, {purchase_events} purchase events: "
          f"{lost_purchases} lost, {duplicated_purchases} duplicated")
    print(f"cart:            {traffic.accepted_changes} accepted cart changes, {cart_events} cart events "
          f"({traffic.merges} anonymous carts merged at sign-in); "
          f"{compared} quantities compared (order lines and open cart lines): {lost_cart} short, {duplicated_cart} in excess")
    for owner, segment, product, in_store, net in mismatches[:20]:
        print(f"  shopper {owner}, {'cart' if segment == 'cart' else 'order ' + segment}, product {product}: "
              f"store {in_store}, events net {net}")
    if believed != held:
        print(f"note: the signed-in shoppers' carts as they believe them ({len(believed)} lines) differ from the "
              f"store's ({len(held)} lines); the comparison above uses the store's")
    return {
        "bench": "load",
        "cache": "down" if args.cache_down else "up",
        "seconds": args.seconds,
        "shoppers": args.shoppers,
        "workers": args.workers,
        "products": args.products,
        "requests": traffic.requests,
        "rps": round(traffic.requests / traffic.seconds, 1),
        "status_5xx": status_5xx,
        "status_4xx": status_4xx,
        "failures": sum(traffic.failures.values()),
        "orders": orders,
        "double_submits": traffic.double_submits,
        "order_lines": order_lines,
        "purchase_events": purchase_events,
        "lost_purchases": lost_purchases,
        "duplicated_purchases": duplicated_purchases,
        "anonymous_carts_merged": traffic.merges,
        "cart_changes": traffic.accepted_changes,
        "cart_events": cart_events,
        "cart_quantities_compared": compared,
        "lost_cart_events": lost_cart,
        "duplicated_cart_events": duplicated_cart,
        "database": "postgresql",
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
