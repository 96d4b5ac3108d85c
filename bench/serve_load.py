"""The loads of bench/serve.py: its clients (closed loop: clients back to back; open loop: requests at
a fixed rate), the rounds of the four loads it measures, and its report (a summary and one JSON line)."""
import asyncio
import itertools
import json
import os
import random
import statistics
import time

PLACEMENT = "home-for-you"
RECOMMENDATIONS = f"/api/personalization/recommendations/?placement={PLACEMENT}"
PING = "/bench/ping/"
#: Issue 14: closed-loop throughput / the trivial endpoint's (at least), and the open-loop p99 of the
#: first views / the trivial endpoint's p99 at half the trivial endpoint's capacity (at most).
GOALS = {"ratio": 0.85, "cold_ratio": 0.6, "second_views_ratio": 0.9, "open_loop_p99_ratio": 2.0}


def say(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# The clients --------------------------------------------------------------------------------------


async def fetch(port, path, token, connection):
    """One GET on a kept-alive connection (opened again when the server closed it). Returns
    (status, seconds, connection)."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    if connection is None:
        connection = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = connection
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {name.lower(): value for name, value in headers.items()}
    await reader.readexactly(int(headers.get("content-length", 0)))
    seconds = time.perf_counter() - started
    if headers.get("connection", "").lower() == "close":
        writer.close()
        connection = None
    return status, seconds, connection


async def load(port, path, tokens, clients, seconds):
    """`clients` clients send GET `path` back to back for `seconds`, each request with the next token.
    Returns (latencies of the answers received in time, {status: count})."""
    latencies, statuses = [], {}
    stop = time.perf_counter() + seconds

    async def client():
        connection = None
        while time.perf_counter() < stop:
            status, took, connection = await fetch(port, path, next(tokens), connection)
            if time.perf_counter() <= stop:
                latencies.append(took)
                statuses[status] = statuses.get(status, 0) + 1
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


async def open_loop(port, path, tokens, rate, seconds, *, in_flight, rng, even=False):
    """Requests arriving at `rate` per second for `seconds` (Poisson arrivals, or evenly spaced with
    `even`), each sent on its own connection from a pool of at most `in_flight`, without waiting for
    the answers to the earlier ones. A request's latency runs from its scheduled arrival to the end of
    its answer, so time spent waiting for a free connection (the pool full) or a worker counts.
    Returns (latencies, {status: count}, {"sent", "rate", "queued"}): `queued` arrivals found every
    connection busy."""
    latencies, statuses = [], {}
    idle = []  # kept-alive connections, when the server keeps them
    slots = asyncio.Semaphore(in_flight)
    queued = 0

    async def one(arrival, token):
        nonlocal queued
        if slots.locked():
            queued += 1
        async with slots:
            connection = idle.pop() if idle else None
            status, _, connection = await fetch(port, path, token, connection)
            latencies.append(time.perf_counter() - arrival)
            statuses[status] = statuses.get(status, 0) + 1
            if connection is not None:
                idle.append(connection)

    tasks = []
    start = time.perf_counter()
    arrival = start
    while True:
        arrival += 1 / rate if even else rng.expovariate(rate)
        if arrival - start >= seconds:
            break
        delay = arrival - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(arrival, next(tokens))))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return latencies, statuses, {"sent": len(tasks), "rate": round(len(tasks) / seconds, 1), "queued": queued}


def summary(latencies, statuses, seconds):
    ordered = sorted(latencies)

    def at(share):
        return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2) if ordered else None

    return {
        "requests": len(ordered),
        "rps": round(len(ordered) / seconds, 1),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "mean_ms": round(1000 * statistics.fmean(ordered), 2) if ordered else None,
        "statuses": statuses,
    }


def measure(port, cold, precomputed, args):
    """Rounds of the four loads (precomputed first views, cold first views, second views, trivial), in
    rotating order. `cold` and `precomputed`: the tokens of shoppers without and with precomputed
    recommendations, shuffled."""
    rng = random.Random(args.seed)
    served = []  # shoppers served in this run, for the second views

    def first_views(tokens):
        for token in tokens:
            served.append(token)
            yield token
        raise RuntimeError("every shopper has been served: use more --shoppers or fewer --seconds")

    def second_views():
        while True:
            yield served[rng.randrange(max(0, len(served) - 5000), len(served))]

    loads = {
        "precomputed": (RECOMMENDATIONS, first_views(iter(precomputed))),
        "cold": (RECOMMENDATIONS, first_views(iter(cold))),
        "second": (RECOMMENDATIONS, second_views()),
        "trivial": (PING, itertools.cycle(cold + precomputed)),
    }
    if not precomputed:
        del loads["precomputed"]
    say(f"warming up for {args.warmup}s (the workers load the models; popular and trending lists are computed)")
    asyncio.run(load(port, RECOMMENDATIONS, loads["cold"][1], args.clients, args.warmup))
    asyncio.run(load(port, PING, loads["trivial"][1], args.clients, 1))
    results = {name: ([], {}) for name in loads}
    names = list(loads)
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            path, token_source = loads[name]
            latencies, statuses = asyncio.run(load(port, path, token_source, args.clients, args.seconds))
            results[name][0].extend(latencies)
            for status, count in statuses.items():
                results[name][1][status] = results[name][1].get(status, 0) + count
            say(f"round {round_number + 1} {name:11s}: {len(latencies) / args.seconds:7.1f} requests/s")
    seconds = args.rounds * args.seconds
    summaries = {name: summary(*results.get(name, ([], {})), seconds) for name in ("precomputed", "cold", "second", "trivial")}
    if args.open_rounds:
        opened = "precomputed" if precomputed else "cold"
        rate = args.open_share * summaries["trivial"]["rps"]
        summaries["open_loop"] = measure_open(port, {name: loads[name] for name in (opened, "trivial")}, rate, args)
    return summaries


def measure_open(port, loads, rate, args):
    """Rounds of open-loop loads at `rate` requests per second (--open-share of the trivial endpoint's
    closed-loop throughput) on the first views and on the trivial endpoint, in alternating order."""
    rng = random.Random(args.seed + 1)
    results = {name: ([], {}, {"sent": 0, "queued": 0}) for name in loads}
    names = list(loads)
    for round_number in range(args.open_rounds):
        for name in names if round_number % 2 == 0 else names[::-1]:
            path, token_source = loads[name]
            latencies, statuses, counts = asyncio.run(open_loop(
                port, path, token_source, rate, args.open_seconds,
                in_flight=args.open_in_flight, rng=rng, even=args.arrivals == "even",
            ))  # fmt: skip
            latencies_of, statuses_of, counts_of = results[name]
            latencies_of.extend(latencies)
            for status, count in statuses.items():
                statuses_of[status] = statuses_of.get(status, 0) + count
            counts_of["sent"] += counts["sent"]
            counts_of["queued"] += counts["queued"]
            say(f"open loop {round_number + 1} {name:11s}: {counts['rate']:7.1f} requests/s sent, "
                f"p99 {1000 * sorted(latencies)[int(0.99 * len(latencies))] if latencies else 0:.1f} ms")
    seconds = args.open_rounds * args.open_seconds
    out = {"rate": round(rate, 1), "arrivals": args.arrivals, "in_flight": args.open_in_flight}
    for name, (latencies, statuses, counts) in results.items():
        out[name] = {**summary(latencies, statuses, seconds), "queued": counts["queued"]}
    first = out[names[0]]
    out["measured"] = f"{names[0]} first views"
    out["p99_ratio"] = round(first["p99_ms"] / out["trivial"]["p99_ms"], 3) if first["requests"] else None
    return out


def split_shoppers(shoppers, args):
    """(cold tokens, precomputed (user id, token) pairs), shuffled: enough shoppers stay cold for the
    warm-up and the cold loads at up to --cold-rps requests per second."""
    order = list(shoppers)
    random.Random(args.seed).shuffle(order)
    n_cold = min(len(order) // 2, int(args.cold_rps * (args.warmup + args.rounds * args.seconds)))
    return [token for _, token in order[:n_cold]], order[n_cold:]


def report(args, results, database_url, redis):
    precomputed, cold, second, trivial = (results[name] for name in ("precomputed", "cold", "second", "trivial"))
    headline = precomputed if precomputed["requests"] else cold
    print()
    print(f"{'':34s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s}  statuses")
    for label, row in (
        ("recommendations, precomputed 1st", precomputed),
        ("recommendations, cold 1st view", cold),
        ("recommendations, 2nd view", second),
        ("trivial endpoint", trivial),
    ):
        if row["requests"]:
            print(f"{label:34s} {row['rps']:8.1f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['mean_ms']:8.2f}  "
                  f"{row['statuses']}")
    ratio = round(headline["rps"] / trivial["rps"], 3)

    def of(row):
        return round(row["rps"] / trivial["rps"], 3) if row["requests"] else None

    opened = results.get("open_loop")
    ratios = {
        "ratio": ratio,
        "cold_ratio": of(cold),
        "second_views_ratio": of(second),
        "open_loop_p99_ratio": opened["p99_ratio"] if opened else None,
    }
    met = {
        name: None if value is None else (value <= GOALS[name] if name == "open_loop_p99_ratio" else value >= GOALS[name])
        for name, value in ratios.items()
    }
    print(f"\nratio ({'precomputed' if headline is precomputed else 'cold'} 1st views / trivial): {ratio} "
          f"(goal >= {GOALS['ratio']}); cold 1st views / trivial: {of(cold)} (goal >= {GOALS['cold_ratio']}); "
          f"2nd views / trivial: {of(second)} (goal >= {GOALS['second_views_ratio']})")
    if opened:
        first = opened[opened["measured"].split()[0]]
        print(f"open loop at {opened['rate']} requests/s ({opened['arrivals']} arrivals): "
              f"{opened['measured']} p50 {first['p50_ms']} ms, "
              f"p99 {first['p99_ms']} ms; trivial p50 {opened['trivial']['p50_ms']} ms, "
              f"p99 {opened['trivial']['p99_ms']} ms; p99 ratio {opened['p99_ratio']} "
              f"(goal <= {GOALS['open_loop_p99_ratio']})")
    print(f"goals met: {met}")
    errors = sum(
        count for name in ("precomputed", "cold", "second", "trivial")
        for status, count in results[name]["statuses"].items() if status != 200
    ) + sum(
        count for name, row in (opened or {}).items() if isinstance(row, dict)
        for status, count in row["statuses"].items() if status != 200
    )
    print(json.dumps({
        "bench": "serve",
        "ratio": ratio,
        "p50_ms": headline["p50_ms"],
        "p99_ms": headline["p99_ms"],
        "rps": headline["rps"],
        "measured": "precomputed first views" if headline is precomputed else "cold first views",
        "trivial": trivial,
        "precomputed_first_views": precomputed,
        "cold_first_views": cold,
        "cold_ratio": of(cold),
        "second_views": second,
        "second_views_ratio": of(second),
        "open_loop": opened,
        "open_loop_p99_ratio": ratios["open_loop_p99_ratio"],
        "goals": {name: (">=" if name != "open_loop_p99_ratio" else "<=") + f" {goal}" for name, goal in GOALS.items()},
        "goals_met": met,
        "all_goals_met": all(met.values()),
        "precompute": results["precompute"],
        "non_200": errors,
        "products": args.products,
        "shoppers": args.shoppers,
        "orders_per_shopper": args.orders,
        "clients": args.clients,
        "workers": args.workers,
        "threads": args.threads,
        "database": database_url.split("://")[0],
        "cache": "redis" if redis else "per-worker",
        "cpus": os.cpu_count(),
    }))  # fmt: skip
