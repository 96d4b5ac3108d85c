"""Where the time of one recommendations request goes, in one process: Django's WSGI handler called
directly (no server, no clients), for a signed-in shopper whose recommendations are cached, against
the trivial endpoint of bench/serve_urls.py, with the time of each part of the request.

    .venv/bin/python bench/serve_parts.py [--products 50000] [--shoppers 4000] [--requests 400] [--rounds 6]
        [--profile N]

Builds the store as bench/serve.py does (a SQLite file in a temporary folder; Redis as the cache
when it answers at --redis, else the process's memory), serves each shopper once so that their
recommendations are cached, then times rounds of --requests trivial and recommendations requests
in turn and keeps each one's fastest round (the machine is shared and noisy). Parts are timed by
wrapping the functions that do them. Prints a table and one JSON line last: `ratio` =
recommendations ms / trivial ms per request, and the ms of each part.
"""
import argparse
import collections
import functools
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import serve  # bench/serve.py: the store and the Redis helpers
from serve_load import PING, RECOMMENDATIONS  # its endpoints

#: (label, module path, attribute path): the parts timed.
PARTS = [
    ("authentication and throttles", "rest_framework.views", "APIView.initial"),
    ("query validation", "personalization.api.views", "validated"),
    ("placement, shopper state, shortlist (cache)", "personalization.state", "read"),
    ("live products (adapter query)", "personalization.adapters", "ModelAdapter.product_drafts"),
    ("product URLs (get_absolute_url)", "personalization.adapters", "ModelAdapter.finish_product"),
    ("reasons and signed click links", "personalization.serving.ranking", "_item"),
    ("answer", "personalization.api.serializers", "RecommendationsSerializer.to_representation"),
    ("the view", "personalization.api.views", "RecommendationsView.get"),
]


def timed(spent):
    import importlib

    for label, module_name, path in PARTS:
        owner = importlib.import_module(module_name)
        *owners, name = path.split(".")
        for part in owners:
            owner = getattr(owner, part)
        function = getattr(owner, name)

        def wrapper(*args, __function=function, __label=label, **kwargs):
            started = time.perf_counter()
            try:
                return __function(*args, **kwargs)
            finally:
                spent[__label] += time.perf_counter() - started

        setattr(owner, name, functools.wraps(function)(wrapper))


def caller():
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()

    def call(path, token):
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}", "HTTP_ACCEPT": "application/json",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        }  # fmt: skip
        statuses = []
        b"".join(handler(environ, lambda status, headers, *rest: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"{path}: {statuses[0]}")

    return call


def profile(call, tokens, count):
    """Prints the `count` functions where one round of recommendations requests spends most own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for token in tokens:
        call(RECOMMENDATIONS, token)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(count)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--shoppers", type=int, default=4000)
    parser.add_argument("--orders", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="requests per round and endpoint")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the cache; none: the process's memory")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also print the N functions of most own time (cProfile)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-serve-parts-"))
    redis = args.redis if args.redis != "none" and serve.redis_answers(args.redis) else ""
    prefix = f"bench-parts-{uuid.uuid4().hex[:8]}"
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
        "DJANGO_SETTINGS_MODULE": "serve_settings",
        "DJANGO_DEBUG": "0",
        "BENCH_MEDIA_ROOT": str(folder / "media"),
        "BENCH_REDIS_URL": redis,
        "BENCH_CACHE_PREFIX": prefix,
    })  # fmt: skip
    try:
        shoppers = serve.build_store(args)
        tokens = [token for _, token in shoppers]
        random.Random(args.seed).shuffle(tokens)
        tokens = tokens[: args.requests]
        call = caller()
        for token in tokens:  # each shopper's recommendations are computed and cached
            call(RECOMMENDATIONS, token)
        spent = collections.Counter()
        timed(spent)
        best = {"trivial": float("inf"), "recommendations": float("inf")}
        parts = {}
        for _ in range(args.rounds):
            for name, path in (("trivial", PING), ("recommendations", RECOMMENDATIONS)):
                spent.clear()
                started = time.perf_counter()
                for token in tokens:
                    call(path, token)
                ms = 1000 * (time.perf_counter() - started) / len(tokens)
                if ms < best[name]:
                    best[name] = ms
                    if name == "recommendations":
                        parts = {label: 1000 * seconds / len(tokens) for label, seconds in spent.items()}
        if args.profile:
            profile(call, tokens, args.profile)
    finally:
        if redis:
            serve.forget_cached(redis, prefix)
        shutil.rmtree(folder, ignore_errors=True)

    ratio = best["recommendations"] / best["trivial"]
    print(f"\n{'per request, fastest of ' + str(args.rounds) + ' rounds':48s} {'ms':>7s}")
    print(f"{'trivial endpoint':48s} {best['trivial']:7.3f}")
    print(f"{'recommendations (cached)':48s} {best['recommendations']:7.3f}")
    for label, _, _ in PARTS:
        print(f"  {label:46s} {parts.get(label, 0.0):7.3f}")
    print(f"\nratio (recommendations ms / trivial ms): {ratio:.3f}")
    print(json.dumps({
        "bench": "serve_parts",
        "ratio": round(ratio, 3),
        "trivial_ms": round(best["trivial"], 3),
        "recommendations_ms": round(best["recommendations"], 3),
        "parts_ms": {label: round(ms, 3) for label, ms in parts.items()},
        "products": args.products,
        "shoppers": args.shoppers,
        "cache": "redis" if redis else "memory",
    }))  # fmt: skip


if __name__ == "__main__":
    main()
