"""The whole leave-last-basket-out evaluation (personalization_evaluate) timed: per model, in all, and
its peak memory, on the import CSV of a store or on a synthetic store.

    .venv/bin/python bench/evaluate.py --csv /tmp/cj/orders.csv [--models ...] [--ks 10 20] [--threads 2]
    .venv/bin/python bench/evaluate.py --synthetic 600 400 [--seed 7]        # shoppers, products

No Django, no database: the same personalization.ml.evaluate.evaluate_all the command runs. Prints the
table (with each model's difference to TIFU-KNN and its 95% paired bootstrap interval), then one
JSON line: wall and CPU seconds (CPU time tells what a machine shared with other work would have
taken alone), each model's seconds (tuning, refit, testing), peak resident memory, and the intervals.
Goal: every model on The Complete Journey (2,406 households) in at most 10 minutes on 2 CPU cores.
"""
import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from personalization.ml.evaluate import MODEL_NAMES, PHASES, REFERENCE_MODEL, as_table, evaluate_all  # noqa: E402
from personalization.operations.synthetic import generate_catalog, generate_histories  # noqa: E402

USED_COLUMNS = {"user_id", "order_id", "product_id", "order_number", "ordered_at", "quantity", "price", "category"}


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="order lines in the import format (e.g. bench/completejourney.py's orders.csv)")
    source.add_argument("--synthetic", type=int, nargs=2, metavar=("SHOPPERS", "PRODUCTS"))
    parser.add_argument("--seed", type=int, default=7, help="the synthetic store's seed")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started, cpu_started = time.perf_counter(), cpu_seconds()
    if args.csv:
        frame = pd.read_csv(args.csv, dtype=str, keep_default_na=False, usecols=lambda c: c in USED_COLUMNS)
    else:
        frame = generate_histories(generate_catalog(args.synthetic[1], seed=args.seed), args.synthetic[0], seed=args.seed)
    read = time.perf_counter() - started
    marks = []
    results = evaluate_all(
        frame,
        ks=tuple(args.ks),
        models=tuple(args.models),
        progress=lambda name, i, n: marks.append(time.perf_counter()) or print(f"[{i + 1}/{n}] {name}", file=sys.stderr),
    )
    wall = time.perf_counter() - started
    k = min(args.ks)
    print(as_table(results))
    by_model = results.set_index("model")
    intervals = {
        name: {
            metric: [round(float(row[f"{metric}_vs_{REFERENCE_MODEL}{end}"]), 4) for end in ("_low", "_high")]
            for metric in (f"recall@{k}", f"ndcg@{k}")
        }
        for name, row in by_model.iterrows()
        if f"recall@{k}_vs_{REFERENCE_MODEL}" in row
    }
    print(
        json.dumps(
            {
                "bench": "evaluate",
                "data": args.csv or f"synthetic {args.synthetic[0]} shoppers x {args.synthetic[1]} products",
                **results.attrs,
                "threads": args.threads,
                "wall_seconds": round(wall, 1),
                "cpu_seconds": round(cpu_seconds() - cpu_started, 1),
                "read_seconds": round(read, 1),
                "split_seconds": round(marks[0] - started - read, 1) if marks else None,
                "model_seconds": {
                    name: {"total": float(row["seconds"]), **{p: float(row[f"{p}_seconds"]) for p in PHASES}}
                    for name, row in by_model.iterrows()
                },
                "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                f"recall@{k}": {name: round(float(row[f"recall@{k}"]), 4) for name, row in by_model.iterrows()},
                f"ndcg@{k}": {name: round(float(row[f"ndcg@{k}"]), 4) for name, row in by_model.iterrows()},
                f"vs_{REFERENCE_MODEL}_95": intervals,
                "goal": "every model on The Complete Journey in at most 600 s on 2 CPU cores",
            }
        )
    )


if __name__ == "__main__":
    main()
