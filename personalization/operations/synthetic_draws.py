"""The sampling building blocks of personalization.operations.synthetic: Zipf weights, cumulative "ladders"
drawn from by row, unique basket lines, complements and order times. Pure numpy (no Django)."""
import numpy as np
import pandas as pd

#: Items in a basket, fewest and most.
MIN_BASKET, MAX_BASKET = 2, 20
# Longest history, in days: heavy shoppers shop more often rather than for longer.
MAX_SPAN_DAYS = 330

# Category keywords of products that go together: (anchor, partner). Matched in lower-case names.
COMPLEMENTS = [
    ("pasta", "sauce"),
    ("bakery", "dairy"),
    ("breakfast", "dairy"),
    ("coffee", "bakery"),
    ("snack", "drink"),
    ("meat", "vegetable"),
    ("fish", "vegetable"),
    ("fruit", "dairy"),
    ("baby", "household"),
    ("frozen", "dessert"),
]


def prepare_catalog(catalog):
    missing = {"product_id", "category", "price"} - set(catalog.columns)
    if missing:
        raise ValueError(f"the catalog needs columns product_id, category, price; missing {', '.join(sorted(missing))}")
    products = catalog[["product_id", "category", "price"]].copy()
    products["product_id"] = products["product_id"].astype(str)
    products["category"] = products["category"].fillna("").astype(str)
    products["price"] = pd.to_numeric(products["price"], errors="coerce")
    return products.reset_index(drop=True)


def zipf(ranks, exponent):
    weight = 1.0 / (np.asarray(ranks) + 1.0) ** exponent
    return weight / weight.sum()


def row_ladder(weights):
    """Cumulative rows lifted by their row index, so one sorted array samples every row at once."""
    ladder = np.cumsum(weights, axis=1)
    ladder /= ladder[:, -1:]
    ladder[:, -1] = 1.0
    return ladder + np.arange(len(weights))[:, None]


def draw(ladder, rows, rng):
    """One column index per entry of `rows`, drawn with that row's weights (see row_ladder)."""
    width = ladder.shape[1]
    picked = np.searchsorted(ladder.ravel(), rows + rng.random(len(rows)), side="right") - rows * width
    return np.clip(picked, 0, width - 1)


def product_ladder(category_codes, n_categories, rng):
    """(order, ladder): products sorted by category; within each, Zipf popularity over a random rank."""
    n = len(category_codes)
    order = np.lexsort((rng.random(n), category_codes))
    codes = category_codes[order]
    start = np.searchsorted(codes, np.arange(n_categories))
    rank = np.arange(n) - start[codes]
    weight = 1.0 / (rank + 1.0) ** 1.1
    cumulative = np.cumsum(weight)
    before = np.concatenate([[0.0], cumulative])[start][codes]
    total = np.add.reduceat(weight, start)[codes]
    ladder = codes + (cumulative - before) / total
    ends = np.append(start[1:], n) - 1
    ladder[ends] = np.arange(n_categories) + 1.0
    return order, ladder


def in_category(product_ladder, category, rng):
    """A product of each given category, by popularity within it."""
    order, ladder = product_ladder
    index = np.searchsorted(ladder, category + rng.random(len(category)), side="right")
    ends = np.searchsorted(ladder, category + 1.0, side="left")
    return order[np.minimum(index, ends)]


def first_unique(line_order, line_product, limit):
    """Drops repeats of a product within an order (keeping the first) and keeps `limit[order]` lines."""
    frame = pd.DataFrame({"order": line_order, "product": line_product}).drop_duplicates()
    rank = frame.groupby("order", sort=False).cumcount().to_numpy()
    kept = frame[rank < limit[frame["order"].to_numpy()]]
    return kept["order"].to_numpy(), kept["product"].to_numpy()


def fill_short(line_order, line_product, basket_size, n_products, rng):
    """Tops up the rare basket left under MIN_BASKET by repeats with products picked at random."""
    wanted = np.minimum(basket_size, MIN_BASKET)
    for _ in range(100):
        short = np.flatnonzero(np.bincount(line_order, minlength=len(basket_size)) < wanted)
        if not len(short):
            break
        extra = np.repeat(short, 2 * MIN_BASKET)
        line_order = np.concatenate([line_order, extra])
        line_product = np.concatenate([line_product, rng.integers(0, n_products, len(extra))])
        keep = np.argsort(line_order, kind="stable")
        line_order, line_product = first_unique(line_order[keep], line_product[keep], basket_size)
    return line_order, line_product


def complements(codes, names, product_ladder, rng):
    """partner[i]: the product that tends to be bought with product i, or -1.

    Categories are paired by name (pasta with sauces, bakery with dairy, ...); a catalog whose
    names match none of them gets random category pairs.
    """
    lowered = [str(name).lower() for name in names]
    pairs = [
        (a, b)
        for anchor, mate in COMPLEMENTS
        for a, name_a in enumerate(lowered)
        if anchor in name_a
        for b, name_b in enumerate(lowered)
        if mate in name_b and a != b
    ]
    if not pairs and len(names) > 1:
        shuffled = rng.permutation(len(names))
        pairs = list(zip(shuffled[0::2], shuffled[1::2]))
    partner = np.full(len(codes), -1, dtype=np.int64)
    for a, b in pairs:
        members = np.flatnonzero((codes == a) & (partner < 0))
        members = members[rng.random(len(members)) < 0.4]
        partner[members] = in_category(product_ladder, np.full(len(members), b), rng)
    return partner


def order_times(order_shopper, n_orders, rng, end):
    """Order times: each shopper's own rhythm (days between orders) and time of day."""
    n_shoppers = len(n_orders)
    end = pd.Timestamp.now(tz="UTC").normalize() if end is None else pd.Timestamp(end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    rhythm = np.clip(rng.lognormal(np.log(8.0), 0.5, size=n_shoppers), 2.0, 40.0)
    rhythm = np.maximum(1.0, np.minimum(rhythm, MAX_SPAN_DAYS / n_orders))
    hour = np.clip(rng.normal(17.0, 3.0, size=n_shoppers), 7.0, 21.5)
    # Days from this order to the next one of the same shopper (0 after the last).
    gap = np.maximum(1, np.rint(rng.gamma(4.0, rhythm[order_shopper] / 4.0))).astype(np.int64)
    last = np.cumsum(n_orders) - 1
    gap[last] = 0
    total = np.cumsum(gap)
    until_last = total[last][order_shopper] - total + gap
    lag = np.floor(rng.uniform(0, 1, n_shoppers) * np.minimum(rhythm, 14)).astype(np.int64)
    days_before_end = until_last + lag[order_shopper] + 1
    seconds = np.clip(hour[order_shopper] + rng.normal(0, 1.0, len(order_shopper)), 6.0, 23.5) * 3600
    at = end.normalize() - pd.to_timedelta(days_before_end, unit="D") + pd.to_timedelta(np.rint(seconds), unit="s")
    return at.tz_localize(None).to_numpy()  # UTC, without the zone: fast to index
