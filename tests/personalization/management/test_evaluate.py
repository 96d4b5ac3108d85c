"""personalization_evaluate reads the import CSV format and reports bad input as a CommandError."""
import io
import json

import pytest
from django.core.management import CommandError, call_command


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match="nope.csv: no such file"):
        call_command("personalization_evaluate", "--csv", str(tmp_path / "nope.csv"))


def test_too_little_data_says_why(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("user_id,order_id,product_id,order_number\n1,A,9,1\n1,B,9,2\n")

    with pytest.raises(CommandError, match="orders.csv: no shopper has 3 orders or more"):
        call_command("personalization_evaluate", "--csv", str(path), "--models", "popularity")


def test_a_small_store_is_evaluated_and_written_as_json(tmp_path):
    rows = ["user_id,order_id,product_id,order_number"]
    for user in range(6):
        for order in range(4):
            rows += [f"{user},{user}-{order},{item},{order}" for item in (user % 3, 3 + order % 2, 7)]
    path, out = tmp_path / "orders.csv", tmp_path / "results.json"
    path.write_text("\n".join(rows) + "\n")

    call_command("personalization_evaluate", "--csv", str(path), "--models", "popularity", "personal_frequency", "--json", str(out))

    results = {row["model"]: row for row in json.loads(out.read_text())["results"]}
    assert set(results) == {"popularity", "personal_frequency"}
    assert results["personal_frequency"]["recall@10"] == 1.0


def test_each_model_is_printed_with_its_interval_against_tifu_knn(tmp_path):
    rows = ["user_id,order_id,product_id,order_number"]
    for user in range(12):
        for order in range(5):
            rows += [f"{user},{user}-{order},{item},{order}" for item in (user % 4, 4 + order % 3, 9)]
    path, out = tmp_path / "orders.csv", tmp_path / "results.json"
    path.write_text("\n".join(rows) + "\n")
    printed = io.StringIO()

    options = ["--models", "popularity", "tifu_knn", "--k", "5", "--resamples", "300", "--json", str(out)]
    call_command("personalization_evaluate", "--csv", str(path), *options, stdout=printed, stderr=io.StringIO())

    assert "recall@5 vs tifu_knn" in printed.getvalue() and "300 resamples" in printed.getvalue()
    popularity = next(row for row in json.loads(out.read_text())["results"] if row["model"] == "popularity")
    low, mean, high = (popularity[f"ndcg@5_vs_tifu_knn{end}"] for end in ("_low", "", "_high"))
    assert low <= mean <= high


def test_resamples_must_be_positive(tmp_path):
    with pytest.raises(CommandError, match="--resamples"):
        call_command("personalization_evaluate", "--csv", str(tmp_path / "orders.csv"), "--resamples", "0")


def test_threads_must_be_positive(tmp_path):
    with pytest.raises(CommandError, match="--threads"):
        call_command("personalization_evaluate", "--csv", str(tmp_path / "orders.csv"), "--threads", "0")
