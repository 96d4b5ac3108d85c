"""Order lines as the models read them: checked and normalised frames, orders, days."""

import numpy as np
import pandas as pd

#: Columns every frame of order lines needs; plus `order_number` or `ordered_at` (or both).
REQUIRED_COLUMNS = ("user_id", "order_id", "product_id")
ORDER_COLUMNS = ("ordered_at", "order_number")
_DAY = pd.Timedelta(days=1)


# Frames ---------------------------------------------------------------------------------------


def prepare_frame(frame):
    """The order lines of `frame`, checked and normalised: ids as strings, `time` in days, `spend`.

    Accepts the import format (user_id, order_id, product_id, order_number and/or ordered_at,
    optional quantity, price, category). Raises ValueError with what is missing or empty.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame of order lines, got {type(frame).__name__}")
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if not any(column in frame.columns for column in ORDER_COLUMNS):
        missing.append("order_number or ordered_at")
    if missing:
        raise ValueError(
            "order lines need the columns user_id, order_id, product_id and order_number or ordered_at; "
            f"missing: {', '.join(missing)}"
        )
    if frame.empty:
        raise ValueError("there are no order lines: the frame is empty")
    lines = pd.DataFrame(
        {column: frame[column].astype("string").astype(str) for column in REQUIRED_COLUMNS},
        index=frame.index,
    )
    usable = frame[list(REQUIRED_COLUMNS)].notna().all(axis=1).to_numpy(copy=True)
    if "ordered_at" in frame.columns:
        ordered_at = _parse_times(frame["ordered_at"])
        lines["time"] = ((ordered_at - pd.Timestamp(0, tz="UTC")) / _DAY).astype(float)
    else:
        lines["time"] = np.nan
    if "order_number" in frame.columns:
        lines["order_number"] = pd.to_numeric(frame["order_number"], errors="coerce").astype(float)
    else:
        lines["order_number"] = np.nan
    usable &= (lines["time"].notna() | lines["order_number"].notna()).to_numpy()
    quantity = pd.to_numeric(frame["quantity"], errors="coerce").fillna(1.0) if "quantity" in frame.columns else 1.0
    price = pd.to_numeric(frame["price"], errors="coerce") if "price" in frame.columns else np.nan
    lines["spend"] = (quantity * price).astype(float) if "price" in frame.columns else np.nan
    lines["category"] = frame["category"].astype("string").fillna("").astype(str) if "category" in frame.columns else ""
    lines = lines[usable].reset_index(drop=True)
    if lines.empty:
        raise ValueError("no order line has a user_id, order_id, product_id and an order time or number")
    return lines


def _parse_times(values):
    """Order times as UTC timestamps: datetimes as they are, text as ISO 8601 or any format pandas reads."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    given = values.notna() & (values.astype(str).str.strip() != "")
    if (parsed.isna() & given).any():
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    return parsed


def order_table(lines):
    """One row per order, each shopper's orders in time: columns user_id, order_id, time, order_number."""
    key = lines.groupby(["user_id", "order_id"], sort=False)
    orders = key.agg(time=("time", "min"), order_number=("order_number", "min")).reset_index()
    orders["line_group"] = np.arange(len(orders))
    orders = orders.sort_values(["user_id", "time", "order_number", "order_id"], kind="stable", na_position="first")
    return orders.reset_index(drop=True), key.ngroup().to_numpy()


def last_order_ranks(lines):
    """For each line of a prepared frame: 0 if it is in its shopper's last order, 1 second-to-last, ...;
    and, per line, how many orders its shopper has."""
    orders, group_of_line = order_table(lines)
    per_user = orders.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    count = orders.groupby("user_id", sort=False)["order_id"].transform("size").to_numpy()
    rank = np.empty(len(orders), dtype=np.int64)
    total = np.empty(len(orders), dtype=np.int64)
    rank[orders["line_group"].to_numpy()] = per_user
    total[orders["line_group"].to_numpy()] = count
    return rank[group_of_line], total[group_of_line]

def to_days(timestamp):
    """Days since 1970 (UTC) of a timestamp; naive timestamps are taken as UTC."""
    timestamp = pd.Timestamp(timestamp)
    timestamp = timestamp.tz_localize("UTC") if timestamp.tzinfo is None else timestamp.tz_convert("UTC")
    return (timestamp - pd.Timestamp(0, tz="UTC")) / _DAY


def from_days(days):
    return pd.Timestamp(0, tz="UTC") + float(days) * _DAY

def data_window(frame):
    """What a model was trained on: shoppers, orders, lines and the first and last order time."""
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    times = lines["time"].dropna()
    return {
        "shoppers": int(lines["user_id"].nunique()),
        "orders": int(lines[["user_id", "order_id"]].drop_duplicates().shape[0]),
        "lines": int(len(lines)),
        "products": int(lines["product_id"].nunique()),
        "first_order_at": from_days(times.min()).isoformat() if len(times) else None,
        "last_order_at": from_days(times.max()).isoformat() if len(times) else None,
    }
