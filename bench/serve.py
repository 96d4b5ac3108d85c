"""Throughput and latency of GET /api/personalization/recommendations/ under gunicorn, for signed-in
shoppers, against a trivial DRF endpoint on the same server in the same run.

    .venv/bin/python bench/serve.py [--quick] [--products 50000] [--shoppers 100000] [--orders 3]
                                    [--clients 50] [--seconds 10] [--rounds 3] [--workers N]
                                    [--open-rounds 2] [--open-seconds 10] [--open-share 0.5]

Builds a throwaway store (a SQLite file in a temporary folder, or a new PostgreSQL database on the
server of DATABASE_URL, dropped afterwards): --products products from personalization.operations.synthetic, that
many shoppers with an API token each, and their purchase histories from the generator (each shopper's
last --orders orders only, so that setup takes minutes; stored with bulk inserts). It then trains the
next-basket CNN and the autoencoder for one epoch each (an epoch reads at most 20,000 sampled rows:
the models serve like fully trained ones, they are just less accurate) and activates them.

As the workers do after a retrain (personalization.tasks.precompute_recommendations), the bench then
precomputes the "home-for-you" recommendations of most shoppers into the shared cache, in batches;
enough shoppers stay cold for the cold loads (--cold-rps). Nothing is precomputed without Redis.

The store then runs under gunicorn on 127.0.0.1 with bench/serve_settings.py: DEBUG off, persistent
database connections, Redis as the shared cache when it answers at --redis (else one in-memory cache
per worker), throttle rates no bench reaches. --clients clients, each sending its next request as soon
as the last is answered, take turns on four loads for --rounds rounds of --seconds each:

- recommendations of "home-for-you" (the autoencoder, then trending, then popular) for shoppers whose
  recommendations were precomputed, each request for a shopper not served before in this run (their
  first page view after a retrain: the shortlist comes from the cache, the shop's rules and the
  texts are applied live);
- the same for cold shoppers (nothing precomputed or cached: their history is read and the model
  runs in the request);
- the same for shoppers served moments before (their recommendations are cached: a second page);
- the trivial endpoint (bench/serve_urls.py): the same authentication by token, permission, throttles
  and JSON rendering, and a constant answer.

Latency is measured by the client, from sending the request to reading the whole answer (so it holds
the time a request waits for a free worker). With 50 clients back to back, latency is mostly queueing
(mean = clients / throughput), so an open loop follows: requests arrive at a fixed rate, --open-share
(half) of the trivial endpoint's closed-loop requests per second in this run, Poisson arrivals, each
sent without waiting for the earlier answers (at most --open-in-flight at once), for --open-rounds
rounds of --open-seconds on the precomputed first views (cold without Redis) and on the trivial
endpoint in turn; there latency runs from the scheduled arrival to the end of the answer.

Prints a summary and one JSON line last: `ratio` = recommendations per second / trivial requests per
second for the precomputed first views (the cold ones without Redis; `measured` says which), with
their `p50_ms` and `p99_ms`; `cold_ratio`, `second_views_ratio`; `open_loop` (rate, each load's p50 and
p99) with `open_loop_p99_ratio` = first views' p99 / trivial p99; `goals` and `goals_met`. Goals
(issue 14): ratio >= 0.85, cold_ratio >= 0.6, second_views_ratio >= 0.9, open_loop_p99_ratio <= 2.
"""
import argparse
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

from serve_load import PLACEMENT, measure, report, say, split_shoppers

# The throwaway database ------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(folder):
    """DATABASE_URL of a new, empty database: a SQLite file in `folder`, or a PostgreSQL database created
    on the server of DATABASE_URL and dropped afterwards."""
    given = os.environ.get("DATABASE_URL", "")
    if not given.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{folder}/bench.sqlite3"
        return
    import psycopg

    name = f"bench_serve_{uuid.uuid4().hex[:10]}"
    url = urllib.parse.urlsplit(given)
    with psycopg.connect(given, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(url._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(given, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def forget_cached(url, prefix):
    """Deletes what the bench server cached in Redis (the shoppers' entries live up to a day)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = client.scan_iter(match=f"{prefix}:*", count=5000)
    while batch := list(itertools.islice(keys, 5000)):
        client.delete(*batch)


def redis_answers(url):
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# The store ---------------------------------------------------------------------------------------


def build_store(args):
    """Migrates, fills the catalog, the shoppers and their histories, trains and activates the models.
    Returns the shoppers' (user id, API token) pairs."""
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    product_ids = make_catalog(args.products)
    say(f"{len(product_ids)} products")
    shoppers = make_shoppers(args.shoppers)
    user_ids = [user_id for user_id, _ in shoppers]
    say(f"{len(user_ids)} shoppers with API tokens")
    lines = store_histories(user_ids, args.orders, args.seed)
    say(f"{lines} purchases stored (each shopper's last {args.orders} orders)")
    analyze()
    train_models(args.seed)
    say(f"store ready in {time.perf_counter() - started:.0f}s")
    from django.db import connections

    connections.close_all()
    return shoppers


def make_catalog(n_products):
    from decimal import Decimal

    from personalization.operations.synthetic import generate_catalog
    from shop.models import Category, Product

    catalog = generate_catalog(n_products, seed=7)
    categories = {}
    for n, name in enumerate(sorted(catalog["category"].unique())):
        categories[name] = Category.objects.create(name=name, slug=f"aisle-{n}")
    Product.objects.bulk_create(
        (
            Product(
                title=title,
                slug=f"product-{n}",
                category=categories[category],
                price=Decimal(str(price)),
                stock=1_000_000,
            )
            for n, (title, category, price) in enumerate(
                zip(catalog["product_name"], catalog["category"], catalog["price"])
            )
        ),
        batch_size=2000,
    )
    return list(Product.objects.values_list("pk", flat=True))


def make_shoppers(n_shoppers):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    unusable = make_password(None)
    user_model.objects.bulk_create(
        (user_model(username=f"bench{i:06d}", password=unusable) for i in range(n_shoppers)), batch_size=2000
    )
    user_ids = list(user_model.objects.filter(username__startswith="bench").order_by("pk").values_list("pk", flat=True))
    Token.objects.bulk_create((Token(key=Token.generate_key(), user_id=pk) for pk in user_ids), batch_size=2000)
    return list(Token.objects.order_by("user_id").values_list("user_id", "key"))


def store_histories(user_ids, orders, seed):
    """The generator's histories of these shoppers over the store's catalog, each shopper's last `orders`
    orders, stored as purchase events with bulk inserts (the rows are the generator's: nothing to validate)."""
    from personalization.models import Event, EventKind, EventSource
    from personalization.operations.demo import demo_histories, store_catalog
    from personalization.operations.history import stored_time

    frame = demo_histories(len(user_ids), seed, catalog=store_catalog(), user_ids=user_ids)
    last = frame.groupby("user_id", observed=True)["order_number"].transform("max")
    frame = frame[frame["order_number"] > last - orders]
    columns = ("user_id", "order_id", "product_id", "ordered_at", "quantity", "price", "category")
    rows = zip(*(frame[column].tolist() for column in columns))
    batch, stored = [], 0
    for user_id, order_id, product_id, ordered_at, quantity, price, category in rows:
        batch.append(
            Event(
                kind=EventKind.PURCHASE,
                user_id=user_id,
                product_id=product_id,
                order_id=order_id,
                quantity=quantity,
                unit_price=round(price, 2),
                category=category,
                dedupe_key=f"bench:{order_id}:{product_id}",
                source=EventSource.DEMO,
                created_at=stored_time(ordered_at.to_pydatetime()),
            )
        )
        if len(batch) == 20_000:
            Event.objects.bulk_create(batch, batch_size=2000)
            stored, batch = stored + len(batch), []
    Event.objects.bulk_create(batch, batch_size=2000)
    return stored + len(batch)


def analyze():
    """On PostgreSQL, the planner's statistics of the bulk-loaded tables, as autovacuum gathers them in
    a store (autovacuum is off on the development machine's server): without them, a shopper's history was read through the
    kind index over every event (19 ms at 574,000 events, against 0.08 ms after ANALYZE), and cold
    first views ran 7 times slower than on SQLite. SQLite stores have none unless they run ANALYZE."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        say("PostgreSQL statistics gathered (ANALYZE)")


def train_models(seed):
    """One epoch of each network on every stored purchase, published and activated."""
    from personalization import registry
    from personalization.learning.frames import purchase_frame
    from personalization.ml import checkpoint
    from personalization.ml.sequences import build_sequences
    from personalization.ml.train import TrainConfig, train_autoencoder, train_next_basket
    from personalization.models import ModelKind

    sequences = build_sequences(purchase_frame())
    for kind, trainer in ((ModelKind.NEXT_BASKET, train_next_basket), (ModelKind.AUTOENCODER, train_autoencoder)):
        started = time.perf_counter()
        config = TrainConfig(epochs=1, patience=None, seed=seed, device="cpu")
        model = trainer(sequences, train_config=config).model
        version = registry.activate(registry.publish(kind, checkpoint.save(model, vocabulary=sequences.vocabulary)))
        say(f"{version} trained on {sequences.n_items} products in {time.perf_counter() - started:.0f}s")


def precompute(user_ids):
    """What the workers do after a retrain (personalization.tasks.precompute_recommendations): the
    measured placement's recommendations of these shoppers, computed in batches into the shared cache."""
    import django

    django.setup()
    from django.db import connections

    from personalization.models import Placement
    from personalization.serving import precompute as precomputing

    started = time.perf_counter()
    precomputing.warm(user_ids, [Placement.objects.get(slug=PLACEMENT)])
    seconds = time.perf_counter() - started
    say(f"recommendations of {len(user_ids)} shoppers precomputed in {seconds:.0f}s "
        f"({1000 * seconds / max(1, len(user_ids)):.2f} ms per shopper)")
    connections.close_all()
    return seconds


# The server ---------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env, workers, threads, log):
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "shop.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--threads", str(threads),
        "--backlog", "2048",
        "--timeout", "300",
        "--pythonpath", f"{ROOT},{BENCH}",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}; see {log.name}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not listen within 120s; see {log.name}")
            time.sleep(0.2)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the group of the server this bench started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# Main ----------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 products and shoppers, short loads")
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--shoppers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=3, help="the last orders kept per shopper")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="gunicorn workers (default: CPU count)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (1: sync workers)")
    parser.add_argument("--cold-rps", type=float, default=400.0, help="shoppers kept cold: enough for this rate")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the shared cache; none: per-worker memory")
    parser.add_argument("--open-rounds", type=int, default=2, help="open-loop rounds (0: none)")
    parser.add_argument("--open-seconds", type=float, default=10.0, help="length of each open-loop load")
    parser.add_argument("--open-share", type=float, default=0.5, help="open-loop rate: this share of the trivial rps")
    parser.add_argument("--open-in-flight", type=int, default=512, help="open loop: most requests at once")
    parser.add_argument("--arrivals", choices=("poisson", "even"), default="poisson")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.products, args.shoppers, args.seconds, args.rounds, args.warmup = 5000, 5000, 3.0, 1, 5.0
        args.open_rounds, args.open_seconds = 1, 3.0

    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        with throwaway_database(folder) as database_url:
            redis = args.redis if args.redis != "none" and redis_answers(args.redis) else ""
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "DJANGO_SETTINGS_MODULE": "serve_settings",
                "DJANGO_DEBUG": "0",
                "BENCH_MEDIA_ROOT": str(folder / "media"),
                "BENCH_REDIS_URL": redis,
                "BENCH_CACHE_PREFIX": f"bench-serve-{uuid.uuid4().hex[:8]}",
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH), os.environ.get("PYTHONPATH", "")]),
            }
            os.environ.update({key: env[key] for key in env if key.startswith(("BENCH_", "DJANGO_", "DATABASE_"))})
            say(f"store: {args.products} products, {args.shoppers} shoppers; database {database_url.split('://')[0]}; "
                f"cache {'Redis' if redis else 'per worker'}")
            cold, precomputed = split_shoppers(build_store(args), args)
            if not redis:  # each worker's own cache: nothing the bench computes reaches them
                cold, precomputed, precompute_seconds = cold + [token for _, token in precomputed], [], None
            else:
                precompute_seconds = precompute([user_id for user_id, _ in precomputed])
                precomputed = [token for _, token in precomputed]
            with open(folder / "gunicorn.log", "w") as log, gunicorn(env, args.workers, args.threads, log) as port:
                say(f"gunicorn on 127.0.0.1:{port}: {args.workers} workers x {args.threads} thread(s), "
                    f"{args.clients} clients")
                results = measure(port, cold, precomputed, args)
            results["precompute"] = {"shoppers": len(precomputed), "seconds": precompute_seconds}
            if redis:
                forget_cached(redis, env["BENCH_CACHE_PREFIX"])
            report(args, results, database_url, redis)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
