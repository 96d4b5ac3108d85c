"""The store's events as pandas frames for the models (ORM -> pandas), read in chunks."""
import numpy as np
import pandas as pd

from personalization.adapters import get_adapter
from personalization.models import Event, EventKind

#: The import CSV's columns: what every model and evaluation in `ml` reads.
PURCHASE_COLUMNS = ["user_id", "order_id", "product_id", "ordered_at", "quantity", "price", "category"]
_FIELDS = ["user_id", "order_id", "product_id", "created_at", "quantity", "unit_price", "category"]


def _chunk(rows):
    frame = pd.DataFrame.from_records(rows, columns=PURCHASE_COLUMNS)
    for column in ("user_id", "order_id", "product_id", "category"):
        frame[column] = frame[column].astype("category")
    frame["price"] = pd.to_numeric(frame["price"], errors="coerce").astype("float32")
    frame["quantity"] = frame["quantity"].astype("int32")
    return frame


def purchase_frame(since=None, chunk_size=100_000):
    """Every signed-in shopper's purchases as order lines in the import format.

    Reads `chunk_size` rows at a time into categorical columns, so a million lines stay in tens of
    megabytes; a purchase recorded without a category takes the product's category from the store.
    """
    events = Event.objects.filter(kind=EventKind.PURCHASE).exclude(user_id="")
    if since is not None:
        events = events.filter(created_at__gte=since)
    chunks, rows = [], []
    for row in events.order_by().values_list(*_FIELDS).iterator(chunk_size=chunk_size):
        rows.append(row)
        if len(rows) == chunk_size:
            chunks.append(_chunk(rows))
            rows = []
    if rows or not chunks:
        chunks.append(_chunk(rows))
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    for column in ("user_id", "order_id", "product_id", "category"):
        frame[column] = frame[column].astype(str).astype("category")
    return _fill_categories(frame)


def _fill_categories(frame):
    blank = (frame["category"].astype(str) == "").to_numpy(copy=True)
    if not blank.any():
        return frame
    products = frame["product_id"]  # categorical: look each product up once, not once per line
    known = get_adapter().products(products[blank].astype(str).unique().tolist())
    by_code = np.array([known[p].category if p in known else "" for p in products.cat.categories], dtype=object)
    looked_up = by_code[products.cat.codes.to_numpy(copy=True)]
    frame["category"] = pd.Categorical(np.where(blank, looked_up, frame["category"].astype(str).to_numpy(copy=True)))
    return frame
