"""The CPU scorer (catalog-wide layers in int8) against the float32 network: ranking quality on
synthetic shoppers, and the time to score one shopper at a large catalog, measured in the same run.

    .venv/bin/python bench/int8_scoring.py [--shoppers 600] [--products 400] [--data-seeds 7 8]
                                           [--catalog 43500] [--repeats 100]

Quality: each network is trained on the histories of personalization.operations.synthetic (leave-last-basket-
out, as bench/nbr_quality.py) and scored twice, by itself and by ml.scoring.cpu_scorer; reports
Recall@10 and NDCG@10 of both and how many of each shopper's top 10 products agree. Speed: networks
of --catalog products (untrained: the time does not depend on the weights), one shopper with three
baskets, one thread, median of --repeats. Prints one JSON line last: {"bench": "int8_scoring", ...}.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from personalization.ml.autoencoder import AutoencoderConfig, ShopperAutoencoder  # noqa: E402
from personalization.ml.evaluate import candidates, leave_last_out, ranking_metrics, top_items  # noqa: E402
from personalization.ml.next_basket import NextBasketCNN, NextBasketConfig  # noqa: E402
from personalization.ml.scoring import cpu_scorer, score_shoppers  # noqa: E402
from personalization.ml.sequences import BasketSequences  # noqa: E402
from personalization.operations.synthetic import generate_catalog, generate_histories  # noqa: E402

NAMES = {"next_basket_cnn": "next-basket CNN", "autoencoder": "autoencoder"}


def quality(args):
    rows = []
    for seed in args.data_seeds:
        frame = generate_histories(generate_catalog(args.products, seed=seed), args.shoppers, seed=seed)
        split = leave_last_out(frame)
        for name in NAMES:
            build, grid = candidates(name, seed=0)
            network = build(grid[0]).fit(split.history).result.model
            ranked = {}
            for label, scoring in (("float32", network), ("int8", cpu_scorer(network))):
                ranked[label] = top_items(score_shoppers(scoring, split.history, split.users), 20)
            metrics = {label: ranking_metrics(r, split.targets, split.bought(), (10,)) for label, r in ranked.items()}
            agree = np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(ranked["float32"], ranked["int8"])])
            rows.append({
                "data_seed": seed, "model": name, "top10_agreement": round(float(agree), 4),
                **{f"{metric}_{label}": round(float(metrics[label][metric]), 4)
                   for label in ranked for metric in ("recall@10", "ndcg@10")},
            })  # fmt: skip
    return rows


def speed(args):
    class Catalog:  # a vocabulary whose size is all that matters
        def __len__(self):
            return args.catalog

    torch.set_num_threads(1)
    shopper = BasketSequences.from_baskets([[[5, 9, 100], [7, 8, 2000, 30000], [11, 12]]], Catalog())
    out = {}
    for network in (ShopperAutoencoder(AutoencoderConfig(n_items=args.catalog)), NextBasketCNN(NextBasketConfig(n_items=args.catalog))):
        times = {}
        for label, scoring in (("float32", network), ("int8", cpu_scorer(network))):
            score_shoppers(scoring, shopper)
            runs = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                score_shoppers(scoring, shopper)
                runs.append(1000 * (time.perf_counter() - started))
            times[label] = statistics.median(runs)
        out[type(network).__name__] = {
            "float32_ms": round(times["float32"], 3),
            "int8_ms": round(times["int8"], 3),
            "speedup": round(times["float32"] / times["int8"], 2),
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=600)
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--catalog", type=int, default=43_500, help="products of the networks timed")
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(2)

    rows = quality(args)
    print(f"{'store':>5s} {'model':16s} {'R@10 f32':>9s} {'R@10 int8':>9s} {'N@10 f32':>9s} {'N@10 int8':>9s} {'top-10 agree':>12s}")
    for row in rows:
        print(f"{row['data_seed']:5d} {NAMES[row['model']]:16s} {row['recall@10_float32']:9.4f} {row['recall@10_int8']:9.4f} "
              f"{row['ndcg@10_float32']:9.4f} {row['ndcg@10_int8']:9.4f} {row['top10_agreement']:12.4f}")  # fmt: skip
    timed = speed(args)
    for name, row in timed.items():
        print(f"{name}: one shopper at {args.catalog} products: float32 {row['float32_ms']} ms, int8 {row['int8_ms']} ms "
              f"({row['speedup']}x)")  # fmt: skip
    print(json.dumps({"bench": "int8_scoring", "quality": rows, "one_shopper": timed, "catalog": args.catalog}))


if __name__ == "__main__":
    main()
