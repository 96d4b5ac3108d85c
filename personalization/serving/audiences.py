"""Who a coupon campaign is for: a shopper segment, affinity to a category, a purchase-propensity
range, an abandoned cart, or the shoppers likeliest to redeem. Each returns the user ids (as events
store them) of signed-in shoppers; the likeliest to redeem come in order, best first.

The segment and propensity audiences read the active model versions; torch is imported only there,
so that checking a coupon at checkout never loads it.
"""
import logging
from datetime import timedelta

import pandas as pd
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from personalization import registry
from personalization.adapters import get_adapter
from personalization.learning.frames import purchase_frame
from personalization.models import Coupon, CouponCampaign, Event, EventKind, ModelKind

logger = logging.getLogger("personalization.coupons")

Audience = CouponCampaign.Audience


class AudienceUnavailable(Exception):
    """The audience cannot be computed now (e.g. no active model); the message says why."""


def members(campaign, now=None):
    """The user ids in the campaign's audience; for a likely to redeem audience, every candidate,
    likeliest first (issuing keeps the first `audience_size` who can get a coupon)."""
    now = now or timezone.now()
    if campaign.audience == Audience.SEGMENT:
        return segment_members(campaign.segment)
    if campaign.audience == Audience.CATEGORY_AFFINITY:
        shares = category_shares(campaign.affinity_category)
        return {user_id for user_id, share in shares.items() if share >= float(campaign.affinity_share)}
    if campaign.audience == Audience.PROPENSITY:
        low = float(campaign.propensity_min) if campaign.propensity_min is not None else 0.0
        high = float(campaign.propensity_max) if campaign.propensity_max is not None else 1.0
        return {user_id for user_id, p in purchase_propensities(now).items() if low <= p <= high}
    if campaign.audience == Audience.CART_ABANDONMENT:
        return abandoned_carts(timedelta(hours=campaign.abandoned_hours), now)
    if campaign.audience == Audience.LIKELY_TO_REDEEM:
        return likely_redeemers(campaign.category_names, now)
    raise AudienceUnavailable(_("%(audience)r is not an audience") % {"audience": campaign.audience})


def category_shares(category):
    """{user id: share of the shopper's purchased order lines in `category`} (names compared
    without regard to case), for every shopper who bought something. A product in several
    categories counts in each of them."""
    frame = purchase_frame()
    if frame.empty:
        return {}
    return purchase_shares(frame, [category], _also_in([category]))


def _also_in(categories):
    """The ids of the store's products filed under several categories, one of them in `categories`
    (names compared without regard to case): their order lines may carry another of their categories."""
    wanted = {str(category).strip().casefold() for category in categories}
    return {p.id for p in get_adapter().catalog() if len(p.every_category) > 1
            and wanted & {name.strip().casefold() for name in p.every_category}}  # fmt: skip


def purchase_shares(frame, categories, products=()):
    """{user id: share of the shopper's order lines (a frame in the import format) in any of
    `categories` (names compared without regard to case) or of `products` (ids)}."""
    shares = _lines_in(frame, categories, products).groupby(frame["user_id"].astype(str), observed=True).mean()
    return {str(user_id): float(share) for user_id, share in shares.items()}


def _lines_in(frame, categories, products=()):
    """Whether each order line of `frame` is in one of `categories` or of `products`."""
    wanted = {str(category).strip().casefold() for category in categories}
    inside = frame["category"].astype(str).str.strip().str.casefold().isin(wanted)
    if products:
        inside |= frame["product_id"].astype(str).isin({str(product) for product in products})
    return inside


def likely_redeemers(categories=(), now=None):
    """The user ids of shoppers likely to redeem a coupon for `categories` (any, when empty),
    likeliest first: `redeem_ranking` of every signed-in shopper's purchases and of the store's
    coupons redeemed before `now`."""
    now = now or timezone.now()
    redeemed = Coupon.objects.filter(status=Coupon.Status.REDEEMED, redeemed_at__lt=now, user__isnull=False)
    frame = purchase_frame()
    products = _also_in(categories) if categories else ()
    ranking = redeem_ranking(frame, redeemed.values_list("user_id", flat=True), categories, products)
    return ranking.index.tolist()


def redeem_ranking(frame, redemptions, categories=(), products=()):
    """Shoppers ranked by how likely they are to redeem a coupon for `categories` or `products`:
    first by `coupons_redeemed`, how many coupons each redeemed before (`redemptions`: one user id
    per redeemed coupon), then by `lines_bought`, their order lines in `frame` (the import format)
    in any of the categories or products (every line when both are empty), then by user id. A
    DataFrame indexed by user id (text), best first, of shoppers with a redemption or such a line.

    On The Complete Journey's real campaigns this finds redeemers better than past redemption
    alone, purchase propensity or category affinity (bench/campaigns.py, bench/README.md)."""
    redeemed = pd.Series([str(user_id) for user_id in redemptions], dtype=object).value_counts()
    if frame.empty:
        bought = pd.Series(dtype="int64")
    else:
        inside = _lines_in(frame, categories, products) if categories or products else pd.Series(True, frame.index)
        bought = inside.groupby(frame["user_id"].astype(str), observed=True).sum()
    ranking = pd.DataFrame({"coupons_redeemed": redeemed, "lines_bought": bought}).fillna(0).astype("int64")
    ranking = ranking[(ranking["coupons_redeemed"] > 0) | (ranking["lines_bought"] > 0)]
    ranking.index = ranking.index.astype(str).rename("user_id")
    return ranking.reset_index().sort_values(
        ["coupons_redeemed", "lines_bought", "user_id"], ascending=[False, False, True]
    ).set_index("user_id")


def abandoned_carts(idle, now=None):
    """Shoppers whose cart still holds something they added, untouched for at least `idle`, with no
    purchase since: the cart_add and cart_remove events after each shopper's last purchase."""
    now = now or timezone.now()
    cart_kinds = [EventKind.CART_ADD, EventKind.CART_REMOVE]
    last_cart = dict(
        Event.objects.filter(kind__in=cart_kinds)
        .exclude(user_id="")
        .values("user_id")
        .annotate(last=Max("created_at"))
        .filter(last__lte=now - idle)
        .values_list("user_id", "last")
    )
    if not last_cart:
        return set()
    last_purchase = dict(
        Event.objects.filter(kind=EventKind.PURCHASE, user_id__in=list(last_cart))
        .values("user_id")
        .annotate(last=Max("created_at"))
        .values_list("user_id", "last")
    )
    candidates = {
        user_id for user_id, last in last_cart.items() if user_id not in last_purchase or last > last_purchase[user_id]
    }
    held = {}
    changes = (
        Event.objects.filter(kind__in=cart_kinds, user_id__in=list(candidates))
        .values_list("user_id", "product_id", "kind", "quantity", "created_at")
        .order_by()
    )
    for user_id, product_id, kind, quantity, created_at in changes.iterator():
        since = last_purchase.get(user_id)
        if since is not None and created_at <= since:
            continue
        delta = quantity if kind == EventKind.CART_ADD else -quantity
        held[(user_id, product_id)] = held.get((user_id, product_id), 0) + delta
    return {user_id for (user_id, _), quantity in held.items() if quantity > 0}


def segment_members(segment):
    """Shoppers of segment number `segment` of the active shopper autoencoder.

    Segments are k-means clusters of the shoppers the model learned from; its checkpoint lists them
    (extra "segments") but not who is in each. Training's segmentation is run again on the same
    shoppers' purchases (those up to the model's data window), which gives back the same clusters.
    """
    from personalization.ml.autoencoder import segment_shoppers
    from personalization.ml.sequences import build_sequences, item_categories

    loaded = registry.load_active(ModelKind.AUTOENCODER)
    if loaded is None:
        raise AudienceUnavailable(_("there is no active shopper autoencoder: train one first"))
    segments = loaded.extra.get("segments") or []
    if segment not in {described["segment"] for described in segments}:
        raise AudienceUnavailable(
            _("the active shopper autoencoder has no segment %(segment)s; it has %(count)d (numbered from 0)")
            % {"segment": segment, "count": len(segments)}
        )
    frame = _within_window(purchase_frame(), loaded.data_window)
    if frame.empty:
        return set()
    sequences = build_sequences(frame, vocabulary=loaded.vocabulary)
    labels, again = segment_shoppers(loaded.model, sequences, item_categories(frame, sequences.vocabulary))
    if [s["shoppers"] for s in again] != [s["shoppers"] for s in segments]:
        logger.warning(
            "The active autoencoder's segments could not be rebuilt exactly (purchases up to its data window "
            "changed since training); segment %s is the nearest rebuild",
            segment,
        )
    return {str(user_id) for user_id, label in zip(sequences.user_ids, labels.tolist()) if label == segment}


def purchase_propensities(now=None):
    """{user id: probability of ordering within the active propensity model's horizon}, from each
    shopper's orders before `now`."""
    loaded = registry.load_active(ModelKind.PROPENSITY)
    if loaded is None:
        raise AudienceUnavailable(_("there is no active purchase propensity model: train one first"))
    frame = purchase_frame()
    if frame.empty:
        return {}
    return propensity_scores(loaded.model, frame, now or timezone.now(), loaded.extra.get("features"))


def propensity_scores(model, frame, at, features=None):
    """{user id: a PurchasePropensity `model`'s probability}, from each shopper's order lines in
    `frame` (the import format, or prepared) before `at`; `features`: the columns it learned from."""
    import torch

    from personalization.ml.features import shopper_features

    table = shopper_features(frame, pd.Timestamp(at))
    columns = features or list(table.columns)
    probabilities = model.probability(torch.from_numpy(table[columns].to_numpy(dtype="float32", copy=True)))
    return {str(user_id): float(p) for user_id, p in zip(table.index, probabilities.tolist())}


def _within_window(frame, window):
    """The order lines up to the last order a model learned from."""
    last = (window or {}).get("last_order_at")
    if not last or frame.empty:
        return frame
    ordered_at = pd.to_datetime(frame["ordered_at"], utc=True)
    # The window's time went through float days: allow for the rounding.
    return frame[(ordered_at <= pd.Timestamp(last) + pd.Timedelta(milliseconds=1)).to_numpy()]


__all__ = [
    "AudienceUnavailable",
    "members",
    "category_shares",
    "purchase_shares",
    "likely_redeemers",
    "redeem_ranking",
    "abandoned_carts",
    "segment_members",
    "purchase_propensities",
    "propensity_scores",
]
