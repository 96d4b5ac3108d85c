"""Synthetic shopping histories, and the demo shoppers built from them over the store's catalog."""
import io
from itertools import combinations

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from personalization.models import Event, EventKind, EventSource
from personalization.operations import history, synthetic
from tests.factories import CategoryFactory, ProductFactory

END = "2025-06-30"


@pytest.fixture(scope="module")
def catalog():
    return synthetic.generate_catalog(400, seed=3)


@pytest.fixture(scope="module")
def histories(catalog):
    return synthetic.generate_histories(catalog, 600, seed=3, end=END)


# The generator ---------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_histories(catalog):
    first = synthetic.generate_histories(catalog, 50, seed=11, end=END)
    again = synthetic.generate_histories(catalog, 50, seed=11, end=END)
    other = synthetic.generate_histories(catalog, 50, seed=12, end=END)

    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_histories_are_in_the_import_format(histories):
    assert list(histories.columns) == synthetic.HISTORY_COLUMNS
    assert not histories.duplicated(["order_id", "product_id"]).any()
    assert (histories["quantity"] >= 1).all()
    assert histories["ordered_at"].max() < pd.Timestamp(END, tz="UTC")


def test_about_two_thirds_of_a_next_basket_was_bought_before(histories):
    assert 0.55 <= synthetic.repeat_share(histories) <= 0.75


@pytest.mark.parametrize("n_products", [200, 3000])
def test_the_repeat_share_holds_for_small_and_large_catalogs(n_products):
    frame = synthetic.generate_histories(synthetic.generate_catalog(n_products, seed=5), 400, seed=5, end=END)

    assert 0.55 <= synthetic.repeat_share(frame) <= 0.75


def test_baskets_have_a_few_to_twenty_items(histories):
    sizes = histories.groupby("order_id").size()

    assert sizes.min() >= synthetic.MIN_BASKET
    assert sizes.max() <= synthetic.MAX_BASKET
    assert 5 <= sizes.mean() <= 14


def test_each_shopper_has_3_to_50_orders_in_time_order(histories):
    orders = histories.drop_duplicates("order_id").sort_values(["user_id", "order_number"])
    per_shopper = orders.groupby("user_id")["order_number"]

    assert per_shopper.max().between(synthetic.MIN_ORDERS, synthetic.MAX_ORDERS).all()
    assert (per_shopper.max() == per_shopper.size()).all()
    assert (orders.groupby("user_id")["ordered_at"].diff().dropna() >= pd.Timedelta(hours=1)).all()


def test_shoppers_keep_their_own_rhythm(histories):
    orders = histories.drop_duplicates("order_id").sort_values(["user_id", "order_number"])
    gap_days = orders.groupby("user_id")["ordered_at"].diff().dt.total_seconds() / 86400
    typical = gap_days.groupby(orders["user_id"]).median()

    assert typical.quantile(0.1) < 6 and typical.quantile(0.9) > 9


def test_a_few_products_sell_most(histories, catalog):
    sales = histories.groupby("product_id").size().sort_values(ascending=False)

    assert sales.head(len(catalog) // 10).sum() / sales.sum() > 0.4


def test_complementary_products_are_bought_together(histories):
    baskets = histories.groupby("order_id")["product_id"].agg(frozenset)
    share = histories.groupby("product_id")["order_id"].nunique() / len(baskets)
    pairs = pd.Series([pair for basket in baskets for pair in combinations(sorted(basket), 2)]).value_counts()
    frequent = pairs[pairs >= 0.005 * len(baskets)]
    # Lift: how much more often a pair shares a basket than if its products were bought independently.
    lift = pd.Series([count / len(baskets) / (share[a] * share[b]) for (a, b), count in frequent.items()])

    assert (lift > 5).sum() >= 10


def test_the_catalog_looks_like_a_grocery(catalog):
    assert list(catalog.columns) == ["product_id", "category", "price", "product_name"]
    assert catalog["product_id"].is_unique
    assert catalog["category"].nunique() >= 15
    assert (catalog["price"] > 0).all()
    assert catalog["product_name"].str.len().min() > 3


def test_browsing_adds_a_cart_addition_per_purchase_and_views_before_it(histories, catalog):
    small = histories[histories["user_id"].isin(["1", "2", "3"])]

    browsing = synthetic.browsing_events(small, catalog, seed=1)

    kinds = browsing["kind"].value_counts()
    assert kinds["cart_add"] == len(small)
    assert kinds["view"] > 0
    assert browsing["created_at"].max() < small["ordered_at"].max()


# The demo data command -------------------------------------------------------------------


@pytest.fixture
def store(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    categories = [CategoryFactory(name=name) for name in ("Pasta", "Sauces", "Dairy", "Bakery")]
    return [ProductFactory(category=categories[n % 4]) for n in range(40)]


def run_demo(*args):
    out = io.StringIO()
    call_command("personalization_demo_data", *args, stdout=out)
    return out.getvalue()


def test_demo_data_creates_shoppers_with_histories(store):
    output = run_demo("--users", "20", "--seed", "1")

    users = get_user_model().objects.order_by("pk")
    assert users.count() == 20
    assert users[0].username == "shopper1" and users[0].check_password("demo")
    assert users.get(username="demo_00004").has_usable_password() is False
    events = Event.objects.filter(source=EventSource.DEMO)
    kinds = set(events.values_list("kind", flat=True))
    # impressions and clicks: the synthetic recommendation history of the dashboard's charts
    assert kinds == {EventKind.PURCHASE, EventKind.VIEW, EventKind.CART_ADD, EventKind.IMPRESSION, EventKind.CLICK}
    assert set(events.values_list("user_id", flat=True)) == {str(pk) for pk in users.values_list("pk", flat=True)}
    assert set(events.values_list("product_id", flat=True)) <= {str(product.pk) for product in store}
    assert events.filter(kind=EventKind.PURCHASE).exclude(dedupe_key__startswith="demo:").count() == 0
    assert "Repeat share of the last baskets" in output
    assert "shopper1, shopper2, shopper3" in output


def test_demo_data_has_a_labelled_synthetic_recommendation_history(store):
    run_demo("--users", "20", "--seed", "1")

    shown = Event.objects.filter(source=EventSource.DEMO, kind__in=[EventKind.IMPRESSION, EventKind.CLICK])
    assert shown.exists()
    assert all(event.data["synthetic"] and event.data["placement"] and event.recommendation_id for event in shown)
    credited = Event.objects.filter(kind=EventKind.CART_ADD).exclude(recommendation_id="")
    assert credited.exists()
    for addition in credited:
        click = shown.get(kind=EventKind.CLICK, recommendation_id=addition.recommendation_id)
        assert (click.user_id, click.product_id) == (addition.user_id, addition.product_id)
        assert click.created_at < addition.created_at


def test_demo_data_again_needs_replace_or_if_empty(store):
    run_demo("--users", "5")
    events = Event.objects.count()

    with pytest.raises(CommandError, match="--replace"):
        run_demo("--users", "5")
    run_demo("--users", "5", "--if-empty")

    assert Event.objects.count() == events


def test_replace_deletes_earlier_demo_shoppers_and_their_events(store):
    run_demo("--users", "8", "--seed", "1")
    live = Event.objects.create(kind=EventKind.VIEW, product_id="1", session_key="someone")

    run_demo("--users", "4", "--seed", "2", "--replace")

    assert get_user_model().objects.count() == 4
    assert set(Event.objects.exclude(pk=live.pk).values_list("source", flat=True)) == {EventSource.DEMO}
    assert Event.objects.filter(pk=live.pk).exists()
    pks = {str(pk) for pk in get_user_model().objects.values_list("pk", flat=True)}
    assert set(Event.objects.filter(source=EventSource.DEMO).values_list("user_id", flat=True)) == pks


def test_demo_data_without_products_says_how_to_add_them(db):
    with pytest.raises(CommandError, match="seed_catalog"):
        run_demo()


def test_demo_data_to_csv_writes_an_importable_file_and_no_accounts(store, tmp_path):
    path = tmp_path / "demo.csv"

    run_demo("--users", "10", "--csv", str(path))

    assert not get_user_model().objects.exists()
    result = history.import_history(path)
    assert result.imported == len(pd.read_csv(path)) > 0
