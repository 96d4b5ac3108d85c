"""personalization_evaluate reads the import CSV format and reports bad input as a CommandError."""
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
    import json

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
