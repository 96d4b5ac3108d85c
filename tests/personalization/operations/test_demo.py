"""personalization_demo_data --histories: real order histories (a file) become the demo's shoppers."""
import io
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from personalization.models import Event, EventKind, EventSource
from personalization.operations import demo
from tests.factories import CategoryFactory, ProductFactory

HEADER = "user_id,order_id,product_id,ordered_at,quantity,price,category,product_name\n"


@pytest.fixture
def store(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    category = CategoryFactory(name="CHEESE")
    return [ProductFactory(category=category) for _ in range(3)]


@pytest.fixture
def orders(tmp_path, store):
    """A history file over the store's products: household 1372 (2 orders), then household 7 (1)."""
    a, b, c = (product.pk for product in store)

    def write(extra=""):
        path = tmp_path / "orders.csv"
        path.write_text(
            HEADER
            + f"1372,B1,{a},2017-01-07T18:55:24,1,2.99,CHEESE,GRATED CHEESE\n"
            + f"1372,B1,{b},2017-01-07T18:55:24,2,1.50,CHEESE,\n"
            + f"1372,B2,{a},2017-12-30T09:10:00,1,2.99,CHEESE,GRATED CHEESE\n"
            + f"7,B3,{c},2017-06-01T12:00:00,3,0.99,CHEESE,\n"
            + extra,
            encoding="utf-8",
        )
        return path

    return write


def run_demo(*args):
    out = io.StringIO()
    call_command("personalization_demo_data", *args, stdout=out)
    return out.getvalue()


def test_each_shopper_of_the_file_becomes_a_demo_shopper_with_its_orders(orders, store):
    output = run_demo("--histories", str(orders()))

    users = get_user_model().objects.order_by("pk")
    assert [user.username for user in users] == ["shopper1", "shopper2"]
    assert all(user.check_password("demo") for user in users)
    first, second = (str(user.pk) for user in users)
    purchases = Event.objects.filter(kind=EventKind.PURCHASE)
    assert purchases.count() == Event.objects.count() == 4
    assert set(purchases.values_list("source", flat=True)) == {EventSource.DEMO}
    assert sorted(purchases.filter(user_id=first).values_list("order_id", "product_id", "quantity")) == [
        ("B1", str(store[0].pk), 1), ("B1", str(store[1].pk), 2), ("B2", str(store[0].pk), 1),
    ]  # fmt: skip
    assert list(purchases.filter(user_id=second).values_list("order_id", "quantity")) == [("B3", 3)]
    assert "Created 2 demo shoppers with 4 purchases" in output
    assert "Log in as shopper1, shopper2 with password 'demo'" in output


def test_the_orders_move_by_whole_weeks_to_end_in_the_last_week(orders, settings):
    settings.TIME_ZONE = "UTC"
    now = datetime(2026, 5, 20, 12, 0, tzinfo=dt_timezone.utc)

    demo.create_demo_shoppers_from(orders(), now=now)

    times = sorted(Event.objects.values_list("created_at", flat=True))
    latest = times[-1]
    assert now - timedelta(weeks=1) < latest <= now
    shift = latest - datetime(2017, 12, 30, 9, 10, tzinfo=dt_timezone.utc)
    assert shift % timedelta(weeks=1) == timedelta(0)
    assert times[0] == datetime(2017, 1, 7, 18, 55, 24, tzinfo=dt_timezone.utc) + shift


def test_a_bad_row_names_file_line_and_column_and_creates_nothing(orders, store):
    path = orders(f"7,B4,{store[0].pk},2017-06-02,two,1.00,CHEESE,\n")

    with pytest.raises(CommandError) as error:
        run_demo("--histories", str(path))

    assert str(error.value) == f"{path}, line 6, column 'quantity': 'two' is not a whole number"
    assert not get_user_model().objects.exists() and not Event.objects.exists()


def test_a_product_the_store_does_not_have_is_refused(orders):
    path = orders("7,B4,999999,2017-06-02,1,1.00,CHEESE,\n")

    with pytest.raises(CommandError) as error:
        run_demo("--histories", str(path))

    assert str(error.value) == f"{path}, line 6, column 'product_id': '999999' is not a product of the store"
    assert not get_user_model().objects.exists()


def test_a_file_without_order_lines_or_a_user_id_column_is_refused(tmp_path, store):
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER)
    headless = tmp_path / "headless.csv"
    headless.write_text("order_id,product_id\nB1,1\n")

    with pytest.raises(CommandError, match="empty.csv, line 2: no order lines after the header"):
        run_demo("--histories", str(empty))
    with pytest.raises(CommandError, match="headless.csv, line 1, column 'user_id': the header has no such column"):
        run_demo("--histories", str(headless))
    with pytest.raises(CommandError, match="missing.csv: cannot be read"):
        run_demo("--histories", str(tmp_path / "missing.csv"))


def test_histories_again_need_replace_or_if_empty(orders):
    path = orders()
    run_demo("--histories", str(path))

    with pytest.raises(CommandError, match="--replace"):
        run_demo("--histories", str(path))
    assert "nothing done" in run_demo("--histories", str(path), "--if-empty")
    run_demo("--histories", str(path), "--replace")

    assert get_user_model().objects.count() == 2 and Event.objects.count() == 4


def test_histories_replace_a_synthetic_demo_and_its_shoppers(orders):
    run_demo("--users", "6")

    run_demo("--histories", str(orders()), "--replace")

    assert sorted(get_user_model().objects.values_list("username", flat=True)) == ["shopper1", "shopper2"]
    assert set(Event.objects.values_list("kind", flat=True)) == {EventKind.PURCHASE}


def test_users_and_histories_do_not_go_together(orders):
    with pytest.raises(CommandError, match="--users and --histories"):
        run_demo("--histories", str(orders()), "--users", "5")
