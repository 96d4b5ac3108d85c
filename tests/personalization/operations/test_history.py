"""personalization_import: past orders from CSV become purchase events, all or nothing."""
import io
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from personalization.models import Event, EventKind, EventSource, OptOut
from personalization.operations import history
from personalization.operations.synthetic import generate_catalog, generate_histories
from tests.factories import UserFactory

HEADER = "user_id,order_id,product_id,ordered_at,quantity,price,category,product_name,note\n"
GOOD = HEADER + (
    "7,A1,p1,2024-03-01T10:00:00,2,3.49,Fruit,Fuji Apples,first order\n"
    "7,A1,p2,2024-03-01T10:00:00,,1.00,Dairy,,\n"
    "8,B1,p1,2024-03-02T09:30:00+02:00,1,,Fruit,Fuji Apples,\n"
)


@pytest.fixture
def csv_file(tmp_path):
    def write(text, name="orders.csv", encoding="utf-8"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
        return path

    return write


def run_import(path, *args):
    out = io.StringIO()
    call_command("personalization_import", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_a_good_file_becomes_purchase_events(csv_file):
    output = run_import(csv_file(GOOD))

    assert "3 rows read, 3 imported" in output
    events = {(e.order_id, e.product_id): e for e in Event.objects.all()}
    assert set(events) == {("A1", "p1"), ("A1", "p2"), ("B1", "p1")}
    apples = events["A1", "p1"]
    assert (apples.kind, apples.source, apples.user_id) == (EventKind.PURCHASE, EventSource.IMPORT, "7")
    assert (apples.quantity, apples.unit_price, apples.category) == (2, Decimal("3.49"), "Fruit")
    assert apples.data == {"product_name": "Fuji Apples"}
    assert apples.dedupe_key == "import:A1:p1"
    assert apples.created_at == datetime(2024, 3, 1, 10, 0, tzinfo=dt_timezone.utc)
    assert (events["A1", "p2"].quantity, events["A1", "p2"].data) == (1, {})
    assert events["B1", "p1"].unit_price is None
    assert events["B1", "p1"].created_at == datetime(2024, 3, 2, 7, 30, tzinfo=dt_timezone.utc)


@pytest.mark.django_db
def test_importing_the_same_file_again_adds_nothing(csv_file):
    path = csv_file(GOOD)
    run_import(path)

    output = run_import(path)

    assert "0 imported, 3 already imported" in output
    assert Event.objects.count() == 3


@pytest.mark.django_db
def test_a_product_listed_twice_in_an_order_keeps_the_first_row(csv_file):
    result = history.import_history(csv_file(HEADER + "1,A,p1,,2,,,,\n1,A,p1,,5,,,,\n"))

    assert (result.imported, result.duplicates_ignored) == (1, 1)
    assert Event.objects.get().quantity == 2


@pytest.mark.django_db
def test_a_bad_row_names_file_line_and_column_and_imports_nothing(csv_file):
    path = csv_file(GOOD + "9,C1,p3,2024-03-03,abc,1.00,,,\n")

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value) == f"{path}, line 5, column 'quantity': 'abc' is not a whole number"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "row, message",
    [
        (",C1,p3,,,,,,", "column 'user_id': a value is required"),
        ("9,C1," + "x" * 65 + ",,,,,,", "column 'product_id': 'xxxxxxxx"),
        ("9,C1,p3,yesterday,,,,,", "column 'ordered_at': 'yesterday' is not an ISO 8601 date and time"),
        ("9,C1,p3,,0,,,,", "column 'quantity': '0' must be at least 1"),
        ("9,C1,p3,,,-1,,,", "column 'price': '-1' is negative"),
        ("9,C1,p3,,,1;50,,,", "column 'price': '1;50' is not a number"),
        ("9,C1,p3,,,,,,,extra", "line 5: expected 9 fields, saw 10"),
    ],
)
@pytest.mark.django_db
def test_each_kind_of_invalid_value_is_reported_at_its_line(csv_file, row, message):
    with pytest.raises(history.InvalidRow) as error:
        history.import_history(csv_file(GOOD + row + "\n"))

    assert error.value.line == 5
    assert message in str(error.value)
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_skip_invalid_imports_the_good_rows_and_reports_the_skipped_ones(csv_file):
    path = csv_file(GOOD + "9,C1,p3,,abc,,,,\n9,C1,p4,,,-2,,,\n9,C1,p5,,x,,,,\n")

    output = run_import(path, "--skip-invalid")

    assert Event.objects.count() == 3
    assert "6 rows read, 3 imported" in output and "3 skipped" in output
    assert "skipped 2: column 'quantity': is not a whole number" in output
    assert "skipped 1: column 'price': is negative" in output
    assert f"{path}, line 5, column 'quantity': 'abc' is not a whole number" in output
    assert f"{path}, line 7, column 'quantity': 'x' is not a whole number" in output


@pytest.mark.django_db
def test_the_result_counts_every_row_once(csv_file):
    result = history.import_history(csv_file(GOOD + "9,C1,p3,,abc,,,,\n7,A1,p1,,,,,,\n"), skip_invalid=True)

    assert result.rows_read == 5
    assert (result.imported, result.duplicates_ignored, result.skipped, result.opted_out) == (3, 1, 1, 0)
    assert result.skip_reasons == {"column 'quantity': is not a whole number": 1}
    assert [(e.line, e.column) for e in result.skip_examples] == [(5, "quantity")]


@pytest.mark.django_db
def test_a_missing_required_column_is_reported_on_line_1(csv_file):
    path = csv_file("user_id,product_id,quantity\n1,p1,1\n")

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value).startswith(f"{path}, line 1, column 'order_id': the header has no such column")


@pytest.mark.django_db
def test_header_names_are_matched_without_case_or_spaces(csv_file):
    history.import_history(csv_file(" User_ID ,ORDER_ID,Product_Id\n1,A,p1\n"))

    assert Event.objects.get().product_id == "p1"


@pytest.mark.django_db
def test_a_missing_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "nowhere.csv"

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value).startswith(f"{path}: cannot be read")


@pytest.mark.django_db
def test_an_empty_file_needs_a_header(csv_file):
    with pytest.raises(CommandError, match="line 1: the file is empty"):
        run_import(csv_file(""))


@pytest.mark.django_db
def test_small_chunks_keep_physical_line_numbers(csv_file):
    rows = [f"1,O{n},p{n},,1,,,,\n" for n in range(1, 9)]
    # A blank line (4) and a line with too many fields (7) shift the data rows after them.
    lines = [HEADER, *rows[:2], "\n", *rows[2:4], "1,X,p9,,1,,,,,,\n", *rows[4:6], "1,Z,p1,,oops,,,,\n"]
    path = csv_file("".join(lines))

    with pytest.raises(CommandError, match=r"line 7: expected 9 fields, saw 11"):
        run_import(path, "--chunk-size", "2")
    with pytest.raises(CommandError, match=r"line 9, column 'quantity': 'oops'"):
        run_import(csv_file("".join(lines[:6] + lines[7:]), name="fields-ok.csv"), "--chunk-size", "2")
    result = history.import_history(path, skip_invalid=True, chunk_size=2)

    assert [(error.line, error.column) for error in result.skip_examples] == [(7, None), (10, "quantity")]
    assert result.imported == 6
    assert Event.objects.count() == 6


@pytest.mark.django_db
def test_rows_of_shoppers_who_opted_out_are_left_out(csv_file):
    opted_out = UserFactory()
    OptOut.objects.create(user=opted_out)
    text = HEADER + f"{opted_out.pk},A,p1,,,,,,\n{opted_out.pk},A,p2,,,,,,\n{opted_out.pk + 1},B,p1,,,,,,\n"

    output = run_import(csv_file(text))

    assert list(Event.objects.values_list("user_id", flat=True)) == [str(opted_out.pk + 1)]
    assert "2 of opted-out shoppers left out" in output


@pytest.mark.django_db
def test_order_number_alone_keeps_each_shoppers_order(csv_file):
    text = "user_id,order_id,product_id,order_number\n1,b,p2,2\n1,a,p1,1\n1,c,p3,10\n"

    history.import_history(csv_file(text))

    times = dict(Event.objects.values_list("order_id", "created_at"))
    assert times["a"] < times["b"] < times["c"]
    assert times["c"] - times["a"] == timedelta(days=9)
    assert times["c"] < timezone.now()


@pytest.mark.django_db
@override_settings(TIME_ZONE="Europe/Berlin")
def test_times_without_a_zone_are_in_the_projects_time_zone(csv_file):
    history.import_history(csv_file("user_id,order_id,product_id,ordered_at\n1,a,p1,2024-07-01 12:00\n"))

    assert Event.objects.get().created_at == datetime(2024, 7, 1, 10, 0, tzinfo=dt_timezone.utc)


@pytest.mark.django_db
def test_progress_hears_rows_and_bytes_after_each_chunk(csv_file):
    path = csv_file(GOOD)
    calls = []

    history.import_history(path, chunk_size=2, progress=lambda rows, position: calls.append((rows, position)))

    assert [rows for rows, _ in calls] == [2, 3]
    assert calls[-1][1] == path.stat().st_size


@pytest.mark.django_db
def test_generated_histories_import_cleanly(tmp_path):
    frame = generate_histories(generate_catalog(60, seed=1), 15, seed=1, end="2025-01-01")
    path = tmp_path / "generated.csv"
    frame.to_csv(path, index=False)

    result = history.import_history(path, chunk_size=100)

    assert (result.rows_read, result.imported, result.skipped) == (len(frame), len(frame), 0)
    first = frame.iloc[0]
    stored = Event.objects.get(order_id=first["order_id"], product_id=first["product_id"])
    assert stored.created_at == first["ordered_at"].to_pydatetime()


# Bad bytes ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_nul_byte_names_file_line_and_column_and_imports_nothing(csv_file):
    path = csv_file(GOOD + "9,C1,p3,,,,,Fuji\0Apples,\n")

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value) == f"{path}, line 5, column 'product_name': 'Fuji\\x00Apples' contains a NUL byte"
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_skip_invalid_skips_a_row_with_a_nul_byte_and_reports_it(csv_file):
    path = csv_file(GOOD + "9,C1,p\0,,,,,,\n")

    output = run_import(path, "--skip-invalid")

    assert "4 rows read, 3 imported" in output and "1 skipped" in output
    assert "skipped 1: column 'product_id': contains a NUL byte" in output
    assert f"{path}, line 5, column 'product_id': 'p\\x00' contains a NUL byte" in output
    assert sorted(Event.objects.values_list("product_id", flat=True)) == ["p1", "p1", "p2"]


@pytest.mark.django_db
@pytest.mark.parametrize("args", [(), ("--skip-invalid",)])
def test_a_file_that_is_not_utf8_names_line_column_and_byte_and_imports_nothing(csv_file, args):
    path = csv_file(GOOD + "9,C1,p3,,,,Caf\xe9,,\n", encoding="latin-1")

    with pytest.raises(CommandError) as error:
        run_import(path, *args)

    assert str(error.value) == (
        f"{path}, line 5, column 'category': not UTF-8 text (byte 0xe9 at byte 4 of the value); save the file as UTF-8"
    )
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_utf16_file_is_rejected_at_its_header(csv_file):
    path = csv_file(GOOD, encoding="utf-16")

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value).startswith(f"{path}, line 1: not UTF-8 text (byte 0xff at byte 1 of the 1st field)")


# Lengths -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_10_mb_product_name_is_a_row_error_naming_the_column_and_the_limit(csv_file):
    path = csv_file(GOOD + "9,C1,p3,,,,," + "x" * 10_000_000 + ",\n")

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value).startswith(f"{path}, line 5, column 'product_name': 'xxx")
    assert str(error.value).endswith("is longer than 255 characters (10,000,000)")
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_text_values_as_long_as_the_event_fields_hold_are_stored_whole(csv_file):
    user, order, product, category, name = "u" * 64, "o" * 64, "p" * 64, "c" * 128, "n" * 255
    path = csv_file(HEADER + f"{user},{order},{product},,,,{category},{name},\n")

    run_import(path)

    event = Event.objects.get()
    assert (event.user_id, event.order_id, event.product_id, event.category) == (user, order, product, category)
    assert event.data == {"product_name": name}


# Unknown products --------------------------------------------------------------------------


@pytest.mark.django_db
def test_rows_of_unknown_products_import_and_the_summary_counts_them(csv_file, make_product):
    known = make_product()
    path = csv_file(HEADER + f"1,A,{known.pk},,,,,,\n1,A,p9,,,,,,\n2,B,p9,,,,,,\n2,B,999999,,,,,,\n")

    output = run_import(path)

    assert Event.objects.count() == 4
    assert "4 rows read, 4 imported" in output
    assert "3 rows of 2 unknown products" in output


@pytest.mark.django_db
def test_known_products_only_refuses_an_unknown_product_by_line_and_imports_nothing(csv_file, make_product):
    known = make_product()
    path = csv_file(HEADER + f"1,A,{known.pk},,,,,,\n1,A,p9,,,,,,\n")

    with pytest.raises(CommandError) as error:
        run_import(path, "--known-products-only")

    assert str(error.value) == f"{path}, line 3, column 'product_id': 'p9' is not a product of the store"
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_known_products_only_with_skip_invalid_skips_the_rows_of_unknown_products(csv_file, make_product):
    known = make_product()
    path = csv_file(HEADER + f"1,A,{known.pk},,,,,,\n1,A,p9,,,,,,\n2,B,999999,,,,,,\n")

    output = run_import(path, "--known-products-only", "--skip-invalid")

    assert list(Event.objects.values_list("product_id", flat=True)) == [str(known.pk)]
    assert "3 rows read, 1 imported" in output and "2 skipped" in output
    assert "skipped 2: column 'product_id': not a product of the store" in output
    assert "0 rows of 0 unknown products" in output


@pytest.mark.django_db
def test_the_catalog_is_asked_once_per_chunk(csv_file, make_product, monkeypatch):
    from personalization.adapters import get_adapter

    adapter = get_adapter()
    asked = []
    products = adapter.products
    monkeypatch.setattr(adapter, "products", lambda ids: asked.append(sorted(ids)) or products(ids))
    known = make_product()
    path = csv_file(HEADER + f"1,A,{known.pk},,,,,,\n1,A,999999,,,,,,\n2,B,{known.pk},,,,,,\n")

    history.import_history(path, chunk_size=2)

    assert asked == [sorted([str(known.pk), "999999"]), [str(known.pk)]]


# Line numbers ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_quoted_newline_does_not_shift_the_lines_of_later_rows(csv_file):
    path = csv_file(HEADER + '1,A,p1,,,,,"Fuji\nApples",\n1,A,p2,,abc,,,,\n')

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value) == f"{path}, line 4, column 'quantity': 'abc' is not a whole number"


@pytest.mark.django_db
def test_a_row_spanning_lines_is_reported_at_its_first_line_in_every_chunk(csv_file):
    rows = ['1,A,p1,,,,,"two\nlines",\n', '1,B,p2,,x,,,"three\n\nlines",\n', "1,C,p3,,,,,,,extra\n", "1,D,p4,,y,,,,\n"]
    path = csv_file(HEADER + "".join(rows))

    result = history.import_history(path, skip_invalid=True, chunk_size=1)

    skipped = [(error.line, error.column) for error in result.skip_examples]
    assert skipped == [(4, "quantity"), (7, None), (8, "quantity")]
    assert result.imported == 1


@pytest.mark.django_db
def test_a_quote_left_open_names_the_line_where_it_opens_and_imports_nothing(csv_file):
    path = csv_file(GOOD + '9,C1,"p3,,,,,,\n9,C2,p4,,,,,,\n')

    with pytest.raises(CommandError) as error:
        run_import(path, "--skip-invalid")

    assert str(error.value) == f"{path}, line 5: a quoted value is not closed before the end of the file"
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_the_first_bad_row_is_told_even_when_a_later_one_is_not_utf8(csv_file):
    path = csv_file(GOOD + "9,C1,p3,,abc,,,,\n9,C1,p4,,,,Caf\xe9,,\n", encoding="latin-1")

    with pytest.raises(CommandError) as error:
        run_import(path)

    assert str(error.value) == f"{path}, line 5, column 'quantity': 'abc' is not a whole number"
