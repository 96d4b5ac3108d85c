"""The store's events as pandas frames for the models (ORM -> pandas), read in chunks."""
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
    blank = frame["category"].astype(str) == ""
    if not blank.any():
        return frame
    products = get_adapter().products(frame.loc[blank, "product_id"].astype(str).unique().tolist())
    known = {product_id: info.category for product_id, info in products.items()}
    looked_up = frame["product_id"].astype(str).map(pd.Series(known, dtype="string")).fillna("")
    filled = frame["category"].astype(str).where(~blank, looked_up.astype(str))
    frame["category"] = filled.astype("category")
    return frame
