"""Do explanations name related products, and are "similar" products similar? Before and after relations.

    .venv/bin/python bench/explanations.py [--orders /tmp/cj/orders.csv --catalog /tmp/cj/catalog.csv]
                                           [--shoppers 1000] [--row 8] [--products 1000] [--epochs 2]
                                           [--model-file /tmp/cj/bench_cnn.pt]

Without --orders: a synthetic store (personalization.operations.synthetic: --synthetic-products, --synthetic-shoppers),
whose products have a category and no department (the category stands in for it).

The item space is what serving reads (scoring.item_space): a next-basket CNN trained here on the
order lines (--epochs over at most --rows-per-epoch pairs each) supplies the learned item vectors,
and ml.related.Related counted over the same baskets is stored in its checkpoint (extra["related"]),
which is then loaded as a model version is. Django's settings are loaded (the serving code imports
the plugin's models); no database is used.

Explanations: for --shoppers shoppers (seeded sample), the row is the --row products the CNN scores
highest among those they never bought (the "for you" picks), explained by candidates._explained,
the function serving runs: "before" = the learned vectors alone (the closest favourite, no limit on
how often one is named; what served before), "after" = the relations (a related anchor, no product
for more than half a row). An anchor counts as related when, over all the baskets, the two products
share at least 2 baskets with a raw lift above 1, or are in the same category (the plugin's category).
Reported: the share of picks with a named anchor, the share of named anchors that are related (and
that share the pick's department), and per row the largest share of picks naming one anchor.

Similar: for --products products (seeded, uniform among those in at least 10 baskets),
candidates.similar_in (what the "similar" strategy serves) gives the first --similar-k products;
reported: the share in the product's department (catalog.csv) before (vectors alone) and after.
Prints a table, then one JSON line.
"""
import argparse
import collections
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-no-requests-served")

import django

django.setup()

import numpy as np
import pandas as pd
import torch

from personalization.ml import checkpoint as checkpoints
from personalization.ml.related import Related, item_categories
from personalization.ml.scoring import score_shoppers
from personalization.ml.sequences import SPECIAL_ITEMS, build_sequences
from personalization.ml.train import TrainConfig, train_next_basket
from personalization.models import Placement
from personalization.operations.synthetic import generate_catalog, generate_histories
from personalization.serving import candidates
from personalization.serving.scoring import ItemSpace, item_space
from personalization.serving.shoppers import ShopperHistory

Strategy = Placement.Strategy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", help="order lines CSV (import format); default: a synthetic store")
    parser.add_argument("--catalog", help="catalog CSV with product_id and department")
    parser.add_argument("--synthetic-products", type=int, default=3000)
    parser.add_argument("--synthetic-shoppers", type=int, default=2000)
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--row", type=int, default=8)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--similar-k", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rows-per-epoch", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-file", help="keep the trained CNN's checkpoint here; reuse it when the file exists")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    frame, departments, source = load(args)
    sequences = build_sequences(frame)
    vocabulary = sequences.vocabulary
    codes, names = item_categories(frame["product_id"].astype(str), frame["category"].astype(str), vocabulary)
    timings = {"read": time.perf_counter() - started}

    mark = time.perf_counter()
    related = Related.from_sequences(sequences, codes, names)
    timings["relations"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model = trained_model(args, sequences)
    timings["training"] = time.perf_counter() - mark
    # Loaded as serving loads a version: the checkpoint's bytes, with the relations in extra.
    loaded = checkpoints.load(checkpoints.save(model, vocabulary=vocabulary, extra={"related": related.state()}))
    after = item_space(loaded)
    before = ItemSpace(after.vocabulary, after.vectors, None)

    judge = Judge(sequences, codes)
    department = np.array([departments.get(p, "") for p in vocabulary.items], dtype=object)
    rng = np.random.default_rng(args.seed)
    mark = time.perf_counter()
    rows = explanation_rows(loaded, sequences, args.shoppers, args.row, rng)
    results = {}
    for name, space, share in (("before", before, None), ("after", after, candidates.relations.MAX_ANCHOR_SHARE)):
        explained = [candidates._explained(loaded, items, values, Strategy.FOR_YOU, context, space=space, max_share=share) for items, values, context in rows]
        results[name] = explanation_figures(explained, vocabulary, judge, department)
    timings["explanations"] = time.perf_counter() - mark
    mark = time.perf_counter()
    products = similar_queries(sequences, args.products, rng)
    for name, space in (("before", before), ("after", after)):
        results[name].update(similar_figures(space, products, args.similar_k, vocabulary, department, codes))
    timings["similar"] = time.perf_counter() - mark

    print_table(source, sequences, results, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    line = {"bench": "explanations", "data": source, "shoppers": len(rows), "row": args.row, "similar_products": len(products),
            "similar_k": args.similar_k}
    for key in ("explained_share", "anchor_related_share", "anchor_same_department", "max_anchor_share_per_row",
                "mean_top_anchor_share", "rows_over_half", "similar_same_department", "similar_same_category"):
        line[key] = round(results["after"][key], 4)
        line[f"baseline_{key}"] = round(results["before"][key], 4)
    line.update({f"{k}_seconds": round(v, 1) for k, v in timings.items()})
    line.update({"related_pairs": len(related.neighbours), "peak_gb": round(peak, 2), "seconds": round(time.perf_counter() - started, 1)})
    print(json.dumps(line))


def load(args):
    """(order lines, {product id: department}, what they are)."""
    if args.orders:
        frame = pd.read_csv(args.orders, dtype={"user_id": str, "order_id": str, "product_id": str, "category": str})
        frame["category"] = frame["category"].fillna("")
        departments = {}
        if args.catalog:
            catalog = pd.read_csv(args.catalog, dtype={"product_id": str, "department": str})
            departments = dict(zip(catalog["product_id"], catalog["department"].fillna("")))
        return frame, departments, Path(args.orders).name
    catalog = generate_catalog(args.synthetic_products, seed=args.seed)
    frame = generate_histories(catalog, args.synthetic_shoppers, seed=args.seed)
    return frame, dict(zip(catalog["product_id"], catalog["category"])), f"synthetic {args.synthetic_products} products"


def trained_model(args, sequences):
    """The CNN: trained on the sequences, or read from --model-file (trained on the same vocabulary)."""
    if args.model_file and Path(args.model_file).exists():
        kept = checkpoints.load(args.model_file)
        if kept.vocabulary == sequences.vocabulary:
            return kept.model.eval()
        print(f"{args.model_file} was trained on another vocabulary: training again", file=sys.stderr)
    config = TrainConfig(epochs=args.epochs, patience=None, rows_per_epoch=args.rows_per_epoch, device="cpu", seed=args.seed)
    model = train_next_basket(sequences, train_config=config).model.eval()
    if args.model_file:
        checkpoints.save(model, args.model_file, vocabulary=sequences.vocabulary)
    return model


def explanation_rows(loaded, sequences, n_shoppers, row, rng):
    """[(item indices, scores, candidates.Context)]: each sampled shopper's `row` best-scored products
    they never bought, and their history as serving reads it."""
    users = np.sort(rng.choice(sequences.n_users, size=min(n_shoppers, sequences.n_users), replace=False))
    scores = score_shoppers(loaded.model, sequences, users)
    decode = sequences.vocabulary.items
    out = []
    for user, user_scores in zip(users, scores):
        baskets = sequences.baskets_of(user)
        history = ShopperHistory(
            baskets=tuple(tuple(decode[i] for i in basket) for basket in baskets),
            bought=dict(collections.Counter(decode[i] for basket in baskets for i in basket)),
        )
        items, values = candidates._top(user_scores, row, exclude=np.unique(np.concatenate(baskets)))
        out.append((items, values, candidates.Context(history, None, (), row)))
    return out


class Judge:
    """Whether two items are related: in at least 2 shared baskets with a raw lift above 1, or in
    the same category; counted over every basket, independently of the relations' top-k table."""

    def __init__(self, sequences, categories):
        basket = np.repeat(np.arange(sequences.n_baskets), np.diff(sequences.basket_offsets))
        order = np.argsort(sequences.items, kind="stable")
        self.baskets = basket[order]
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(sequences.items, minlength=sequences.n_items))])
        self.n_baskets = sequences.n_baskets
        self.categories = categories

    def related(self, a, b):
        one = self.baskets[self.offsets[a] : self.offsets[a + 1]]
        other = self.baskets[self.offsets[b] : self.offsets[b + 1]]
        together = len(np.intersect1d(one, other, assume_unique=True))
        lift = together * self.n_baskets / max(len(one) * len(other), 1)
        return (together >= 2 and lift > 1) or (self.categories[a] >= 0 and self.categories[a] == self.categories[b])


def explanation_figures(explained, vocabulary, judge, department):
    index = {product: i for i, product in enumerate(vocabulary.items)}
    picks = named = related = same_department = 0
    top_shares = []
    for row in explained:
        anchors = [c.anchor for c in row if c.anchor]
        picks += len(row)
        named += len(anchors)
        for c in row:
            if c.anchor:
                item, anchor = index[c.product_id], index[c.anchor]
                related += judge.related(item, anchor)
                same_department += bool(department[item]) and department[item] == department[anchor]
        top = max(collections.Counter(anchors).values(), default=0)
        top_shares.append(top / max(len(row), 1))
    top_shares = np.asarray(top_shares)
    return {
        "explained_share": named / max(picks, 1),
        "anchor_related_share": related / max(named, 1),
        "anchor_same_department": same_department / max(named, 1),
        "max_anchor_share_per_row": float(top_shares.max(initial=0)),
        "mean_top_anchor_share": float(top_shares.mean()) if len(top_shares) else 0.0,
        "rows_over_half": float((top_shares > 0.5).mean()) if len(top_shares) else 0.0,
    }


def similar_queries(sequences, n, rng):
    """Product ids: a seeded uniform sample of those in at least 10 baskets."""
    counts = np.bincount(sequences.items, minlength=sequences.n_items)
    counts[: len(SPECIAL_ITEMS)] = 0
    eligible = np.flatnonzero(counts >= 10)
    chosen = np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))
    return sequences.vocabulary.decode(chosen)


def similar_figures(space, products, k, vocabulary, department, categories):
    index = {product: i for i, product in enumerate(vocabulary.items)}
    shown = same_department = same_category = 0
    for product in products:
        found = candidates.similar_in(space, [product], max(4 * k + 20, k))[:k]
        for candidate in found:
            item, anchor = index[candidate.product_id], index[product]
            shown += 1
            same_department += bool(department[anchor]) and department[item] == department[anchor]
            same_category += categories[anchor] >= 0 and categories[item] == categories[anchor]
    return {"similar_same_department": same_department / max(shown, 1), "similar_same_category": same_category / max(shown, 1),
            "similar_shown": shown}


def print_table(source, sequences, results, args):
    print(f"{source}: {sequences.n_users:,} shoppers, {sequences.n_baskets:,} baskets, {sequences.vocabulary.n_products:,} products")
    print(f"| method | picks named | named related | named same dept. | top anchor share (max / mean) | rows over half | similar@{args.similar_k} same dept. |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, label in (("before", "learned vectors only"), ("after", "relations (lift, category, spread)")):
        r = results[name]
        print(f"| {label} | {r['explained_share']:.3f} | {r['anchor_related_share']:.3f} | {r['anchor_same_department']:.3f} | "
              f"{r['max_anchor_share_per_row']:.3f} / {r['mean_top_anchor_share']:.3f} | {r['rows_over_half']:.3f} | "
              f"{r['similar_same_department']:.3f} |")


if __name__ == "__main__":
    main()
