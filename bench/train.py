"""Training time, peak memory and scoring latency of each model on real or synthetic order lines.

    .venv/bin/python bench/train.py [--orders /tmp/cj/orders.csv] [--threads 2]
                                    [--order-lines 1000000] [--products 50000]
                                    [--device cpu|cuda|auto] [--models next_basket autoencoder propensity]
                                    [--scoring-products 50000] [--seed 7]

No Django, no database. With --orders, the order lines of that CSV (the import format, e.g. The
Complete Journey from bench/completejourney.py); otherwise personalization.operations.synthetic draws a store
of --products products and as many shoppers as give about --order-lines order lines. Each model
then trains in its own process (so each peak memory is its own: the process's peak resident set,
reading the data included), the way `personalization_train` fits it: early stopping on the data's
own validation pairs. The baseline, measured in the same run on the same data, is the field's strongest
simple model: TIFU-KNN (fit and score every shopper); the ratios say how many TIFU-KNN runs one
training costs, so they compare across machines and runs.

Scoring: the median and p99 milliseconds to score one shopper (their basket history -> a score for
every product -> the best 20), for the trained model and for the same architecture sized to
--scoring-products products (latency depends on the number of products, not on the weights), against
a dot-product scorer of the same size (user vector x item matrix, then top 20) in the same process,
on one thread, as a web worker serves.

On a GPU (`--device cuda`) the same figures come out for that device. Prints one JSON line last.
Goals: each model trains in at most 3 minutes on a 2-core CPU (on the full Complete Journey: 1.46M
order lines, 68,205 products); scoring one shopper against 50,000 products takes at most 5 ms (median).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from personalization.ml.autoencoder import ShopperAutoencoder  # noqa: E402
from personalization.ml.baselines import TifuKnn  # noqa: E402
from personalization.ml.batches import model_inputs  # noqa: E402
from personalization.ml.next_basket import NextBasketCNN  # noqa: E402
from personalization.ml.orders import prepare_frame  # noqa: E402
from personalization.ml.sequences import SPECIAL_ITEMS, BasketSequences, Vocabulary, build_sequences  # noqa: E402
from personalization.ml.train import (  # noqa: E402
    AUTOENCODER_TRAINING,
    NEXT_BASKET_TRAINING,
    PROPENSITY_TRAINING,
    choose_device,
    propensity_data,
    train_autoencoder,
    train_next_basket,
    train_propensity,
)
from personalization.operations.synthetic import generate_catalog, generate_histories  # noqa: E402

MODELS = ("next_basket", "autoencoder", "propensity")
TRAIN_GOAL_SECONDS = 180
LINES_PER_SHOPPER = 124  # what the generator draws on average (measured: 1,031,394 lines for 8,300)
TOP = 20


def peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def milliseconds(samples):
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 3),
    }


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_scoring(model, histories, vocabulary, device, repeats):
    """Seconds per shopper: product ids of their baskets -> top 20 product ids, as serving does."""
    model.eval()
    samples = []
    with torch.no_grad():
        for i in range(repeats):
            baskets = histories[i % len(histories)]
            started = time.perf_counter()
            sequences = BasketSequences.from_baskets([[vocabulary.encode(b) for b in baskets]], vocabulary)
            config = model.config
            features = getattr(config, "reads_repeat_features", True)
            x = model_inputs(sequences, [0], window=config.window, max_basket_size=config.max_basket_size, decay=config.decay, features=features)
            scores, _ = model(x.to(device))
            best = scores[0].topk(TOP).indices.cpu().numpy()
            vocabulary.decode(best)
            sync(device)
            samples.append(time.perf_counter() - started)
    return samples[min(20, len(samples) // 10):]  # the first calls warm caches up


def time_dot_product(n_items, dim, device, repeats):
    """The trivial scorer of the same size: a user vector times the item matrix, then top 20."""
    items = torch.randn(n_items, dim, device=device)
    samples = []
    with torch.no_grad():
        for _ in range(repeats):
            started = time.perf_counter()
            user = torch.randn(dim, device=device)
            (items @ user).topk(TOP).indices.cpu().numpy()
            sync(device)
            samples.append(time.perf_counter() - started)
    return samples[min(20, len(samples) // 10):]


def shopper_histories(sequences, count, seed):
    rng = np.random.default_rng(seed)
    out = []
    for user in rng.choice(sequences.n_users, size=min(count, sequences.n_users), replace=False):
        baskets = sequences.baskets_of(int(user))
        out.append([sequences.vocabulary.decode(b) for b in baskets])
    return out


def run_child(model_name, data_path, args):
    """Trains one model (or the baseline) in this process and returns its figures."""
    torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    frame = pd.read_pickle(data_path)
    started = time.perf_counter()
    if model_name == "propensity":
        features, labels = propensity_data(prepare_frame(frame), 7)
        result = train_propensity(features, labels, train_config=replace(PROPENSITY_TRAINING, device=str(device)))
        return {"train_seconds": round(time.perf_counter() - started, 1), "epochs": result.epochs_run, "shoppers": len(features), "peak_mb": peak_mb()}
    sequences = build_sequences(frame)
    if model_name == "tifu_knn":
        TifuKnn().fit(sequences).score(sequences)
        return {"train_seconds": round(time.perf_counter() - started, 1), "peak_mb": peak_mb()}
    if model_name == "next_basket":
        result = train_next_basket(sequences, train_config=replace(NEXT_BASKET_TRAINING, device=str(device)))
        sized = NextBasketCNN(replace(result.model.config, n_items=args.scoring_products + 2))
    else:
        result = train_autoencoder(sequences, train_config=replace(AUTOENCODER_TRAINING, device=str(device)))
        sized = ShopperAutoencoder(replace(result.model.config, n_items=args.scoring_products + 2))
    seconds = time.perf_counter() - started
    figures = {
        "train_seconds": round(seconds, 1),
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "seconds_per_epoch": round(sum(r.seconds for r in result.history) / len(result.history), 1),
        "products": sequences.vocabulary.n_products,
        "pairs": int(sequences.n_baskets - sequences.n_users),
        "peak_mb": peak_mb(),
    }
    if device.type == "cuda":
        figures["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    histories = shopper_histories(sequences, 200, args.seed)
    torch.set_num_threads(1)  # a web worker scores one shopper on one thread
    trained = time_scoring(result.model, histories, sequences.vocabulary, device, args.scoring_repeats)
    sized_vocabulary = Vocabulary(SPECIAL_ITEMS + tuple(f"p{i:05d}" for i in range(1, args.scoring_products + 1)))
    sized.to(device)
    at_size = time_scoring(sized, histories, sized_vocabulary, device, args.scoring_repeats)
    dim = getattr(result.model.config, "embedding_dim", None) or result.model.config.latent_dim
    dot = time_dot_product(args.scoring_products + 2, dim, device, args.scoring_repeats)
    figures["scoring_trained"] = milliseconds(trained)
    figures["scoring_at_size"] = milliseconds(at_size)
    figures["scoring_dot_product"] = milliseconds(dot)
    figures["scoring_ratio"] = round(statistics.median(at_size) / statistics.median(dot), 2)
    return figures


def spawn(model_name, data_path, args):
    command = [sys.executable, __file__, "--child", model_name, "--data", data_path]
    command += ["--threads", str(args.threads), "--device", args.device, "--seed", str(args.seed)]
    command += ["--scoring-products", str(args.scoring_products), "--scoring-repeats", str(args.scoring_repeats)]
    print(f"  {model_name} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", help="a CSV of order lines in the import format (default: synthetic)")
    parser.add_argument("--order-lines", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--scoring-products", type=int, default=50_000)
    parser.add_argument("--scoring-repeats", type=int, default=300)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.data, args)))
        return

    started = time.perf_counter()
    if args.orders:
        frame = pd.read_csv(args.orders, dtype={"user_id": str, "order_id": str, "product_id": str})
    else:
        shoppers = max(1, round(args.order_lines / LINES_PER_SHOPPER))
        frame = generate_histories(generate_catalog(args.products, seed=args.seed), shoppers, seed=args.seed)
    shoppers = int(frame["user_id"].nunique())
    data = {
        "source": args.orders or "synthetic",
        "order_lines": len(frame),
        "orders": int(frame["order_id"].nunique()),
        "shoppers": shoppers,
        "products_sold": int(frame["product_id"].nunique()),
    }
    print(f"{data['order_lines']:,} order lines, {data['orders']:,} orders, {shoppers:,} shoppers", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "lines.pkl")
        frame.to_pickle(path)
        del frame
        baseline = spawn("tifu_knn", path, args)
        models = {name: spawn(name, path, args) for name in args.models}

    print(f"{'model':<14}{'train s':>9}{'epochs':>8}{'peak MB':>9}{'score ms':>10}{'@size ms':>10}{'x TIFU':>8}")
    for name, figures in {"tifu_knn": baseline, **models}.items():
        if "error" in figures:
            print(f"{name:<14} failed: {figures['error']}")
            continue
        figures["train_ratio"] = round(figures["train_seconds"] / baseline["train_seconds"], 2) if "train_seconds" in baseline else None
        print(
            f"{name:<14}{figures['train_seconds']:>9}{figures.get('epochs', ''):>8}{figures['peak_mb']:>9}"
            f"{figures.get('scoring_trained', {}).get('median_ms', ''):>10}{figures.get('scoring_at_size', {}).get('median_ms', ''):>10}"
            f"{figures['train_ratio']:>8}"
        )
    goals = {
        f"train_at_most_{TRAIN_GOAL_SECONDS}s": all(
            m.get("train_seconds", float("inf")) <= TRAIN_GOAL_SECONDS for m in models.values()
        ),
        "score_median_at_most_5ms": all(
            m["scoring_at_size"]["median_ms"] <= 5 for m in models.values() if "scoring_at_size" in m
        ),
    }
    result = {
        "bench": "train",
        "device": str(choose_device(args.device)),
        "threads": args.threads,
        "data": data,
        "baseline": {"tifu_knn": baseline},
        "models": models,
        "scoring_products": args.scoring_products,
        "goals": goals,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
