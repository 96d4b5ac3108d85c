"""Next-basket quality on synthetic shoppers: every model and baseline, leave-last-basket-out.

    .venv/bin/python bench/nbr_quality.py [--shoppers 600] [--products 400] [--seed 7] [--ks 10 20]
                                          [--data-seeds 7 8 9] [--threads 2]

No Django, no database: personalization.operations.synthetic draws the histories, personalization.ml.evaluate
chooses each model's parameters on the second-to-last basket and tests on the last. With several
--data-seeds, the table is the mean over independent synthetic stores (one seeded run each).
Also reports purchase propensity AUC. Prints one JSON line last: {"bench": "nbr_quality", ...}.
Goals: the served next-basket CNN beats TIFU-KNN on Recall@10 and NDCG@10; the autoencoder beats
popularity and co-occurrence on explore recall.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from personalization.ml.evaluate import SERVED_MODEL, as_table, evaluate_all  # noqa: E402
from personalization.ml.propensity_evaluation import evaluate_propensity  # noqa: E402
from personalization.operations.synthetic import generate_catalog, generate_histories, repeat_share  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=600)
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7, help="data seed (ignored when --data-seeds is given)")
    parser.add_argument("--data-seeds", type=int, nargs="+", help="average over these synthetic stores")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.data_seeds or [args.seed]
    k = min(args.ks)

    started = time.perf_counter()
    tables, propensity, stores = [], [], []
    for seed in seeds:
        catalog = generate_catalog(args.products, seed=seed)
        frame = generate_histories(catalog, args.shoppers, seed=seed)
        store_started = time.perf_counter()
        table = evaluate_all(frame, ks=tuple(args.ks), seed=0, progress=lambda name, i, n: print(f"  [{seed}] {name}", file=sys.stderr))
        tables.append(table.assign(data_seed=seed))
        propensity.append(evaluate_propensity(frame, horizon_days=7, seed=0))
        stores.append(
            {
                "data_seed": seed,
                "order_lines": len(frame),
                "orders": int(frame["order_id"].nunique()),
                "repeat_share": round(repeat_share(frame), 3),
                "evaluated_shoppers": table.attrs["evaluated_shoppers"],
                "seconds": round(time.perf_counter() - store_started, 1),
            }
        )
    wall = time.perf_counter() - started

    every = pd.concat(tables, ignore_index=True)
    metric_columns = [c for c in every.columns if "@" in c]
    mean = every.groupby("model", sort=False)[metric_columns + ["seconds"]].mean().reset_index()
    mean.attrs["ks"] = sorted(args.ks)
    by_model = mean.set_index("model")
    served, tifu = by_model.loc[SERVED_MODEL], by_model.loc["tifu_knn"]
    autoencoder = by_model.loc["autoencoder"]
    rivals = by_model.loc[["popularity", "co_occurrence"]]
    per_store_wins = {
        f"{metric}@{k}": int(
            sum(
                t.set_index("model").loc[SERVED_MODEL, f"{metric}@{k}"] > t.set_index("model").loc["tifu_knn", f"{metric}@{k}"]
                for t in tables
            )
        )
        for metric in ("recall", "ndcg")
    }

    print(
        f"{args.shoppers} shoppers x {len(seeds)} synthetic store(s) (seeds {seeds}), {args.products} products, "
        f"{sum(s['order_lines'] for s in stores)} order lines, wall {wall:.0f}s on {args.threads} thread(s)"
    )
    print(as_table(mean))
    auc = sum(p["auc"] for p in propensity) / len(propensity)
    overdue = sum(p["overdue_auc"] for p in propensity) / len(propensity)
    print(f"purchase propensity (orders within 7 days): AUC {auc:.3f} (overdue heuristic {overdue:.3f})")
    result = {
        "bench": "nbr_quality",
        "shoppers": args.shoppers,
        "products": args.products,
        "data_seeds": seeds,
        "stores": stores,
        "wall_seconds": round(wall, 1),
        "threads": args.threads,
        "mean": {row["model"]: {c: round(float(row[c]), 4) for c in metric_columns} for _, row in mean.iterrows()},
        "served_model": SERVED_MODEL,
        "served_minus_tifu": {
            f"recall@{k}": round(float(served[f"recall@{k}"] - tifu[f"recall@{k}"]), 4),
            f"ndcg@{k}": round(float(served[f"ndcg@{k}"] - tifu[f"ndcg@{k}"]), 4),
        },
        "served_beats_tifu_in_stores": per_store_wins,
        "served_beats_tifu": bool(served[f"recall@{k}"] > tifu[f"recall@{k}"] and served[f"ndcg@{k}"] > tifu[f"ndcg@{k}"]),
        "autoencoder_beats_popularity_and_co_occurrence": {
            f"explore_recall@{k}": bool((autoencoder[f"explore_recall@{k}"] > rivals[f"explore_recall@{k}"]).all()),
            f"discovery_recall@{k}": bool((autoencoder[f"discovery_recall@{k}"] > rivals[f"discovery_recall@{k}"]).all()),
        },
        "propensity_auc": round(auc, 4),
        "propensity_overdue_auc": round(overdue, 4),
        "goal": f"{SERVED_MODEL} > tifu_knn on recall@{k} and ndcg@{k}; autoencoder > popularity, co_occurrence on explore",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
