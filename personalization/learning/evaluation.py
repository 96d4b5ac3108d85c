"""The offline evaluation of every next-basket model and baseline on a set of orders (the
personalization_evaluate command): an order file in the import CSV format, or the store's purchases.

    frame = evaluation.orders_from_csv("orders.csv")      # or evaluation.store_orders()
    results = evaluation.evaluate(frame, ks=(10, 20))      # a DataFrame: a row per model
    print(evaluation.as_table(results))

The harness itself (leave-last-basket-out, tuning on the basket before, paired bootstrap intervals)
is personalization.ml.evaluate; this module reads the orders and hands them over.
"""
import json

import pandas as pd

from personalization.learning.frames import purchase_frame
from personalization.ml import evaluate as harness

#: The models the harness evaluates, the one every other is compared with, and the one that predicts.
MODEL_NAMES = harness.MODEL_NAMES
REFERENCE_MODEL = harness.REFERENCE_MODEL
SERVED_MODEL = harness.SERVED_MODEL
USED_COLUMNS = {"user_id", "order_id", "product_id", "order_number", "ordered_at", "quantity", "price", "category"}


class UnreadableOrders(ValueError):
    """The order file cannot be read (missing, not CSV); the message names the file."""


def orders_from_csv(path):
    """The order lines of an import CSV file as a frame (only the columns the harness reads)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=lambda c: c in USED_COLUMNS)
    except FileNotFoundError:
        raise UnreadableOrders(f"{path}: no such file") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UnreadableOrders(f"{path}: cannot be read as CSV ({exc})") from None
    for column in ("quantity", "price"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def store_orders():
    """The store's purchase events as order lines."""
    return purchase_frame()


def evaluate(frame, *, ks, models, seed=0, progress=None, resamples=2000):
    """A DataFrame of each model's metrics (and differences to REFERENCE_MODEL with their intervals);
    raises ValueError when the orders cannot be evaluated (too few shoppers with enough baskets)."""
    return harness.evaluate_all(
        frame, ks=tuple(ks), models=tuple(models), seed=seed, progress=progress, resamples=resamples
    )


def as_table(results):
    return harness.as_table(results)


def as_json(results):
    """The results and what they were computed on, as a JSON text."""
    return json.dumps({"data": results.attrs, "results": json.loads(results.to_json(orient="records"))}, indent=2)


def write_predictions(frame, path, seed=0, n=20):
    """One JSON line per shopper in `path`: the SERVED_MODEL's `n` best items. Returns how many shoppers."""
    best = harness.predictions(frame, n=n, seed=seed)
    with open(path, "w") as out:
        for user_id, items in best.items():
            out.write(json.dumps({"user_id": user_id, "items": items}) + "\n")
    return len(best)
