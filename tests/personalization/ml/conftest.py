"""Fixtures for the pure machine-learning tests: hand-built order lines and a small synthetic store."""
import pandas as pd
import pytest

from personalization.operations.synthetic import generate_catalog, generate_histories


def order_lines(baskets_by_user, start="2024-01-01"):
    """A frame in the import format: {user: [[product, ...], ...]} -> one row per line, a day apart."""
    rows = []
    for user, baskets in baskets_by_user.items():
        for number, basket in enumerate(baskets, start=1):
            for product in basket:
                rows.append(
                    {
                        "user_id": user,
                        "order_id": f"{user}-{number}",
                        "product_id": product,
                        "order_number": number,
                        "ordered_at": pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=number),
                        "quantity": 1,
                        "price": 2.0,
                        "category": product[0].upper(),
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def tiny_frame():
    return order_lines(
        {
            "ann": [["apple", "bread"], ["apple", "milk"], ["apple", "bread", "milk"], ["apple", "eggs"]],
            "bob": [["bread", "milk"], ["bread", "jam"], ["bread", "milk", "jam"]],
            "cat": [["eggs", "milk"], ["eggs"], ["eggs", "apple"]],
        }
    )


@pytest.fixture(scope="session")
def store_frame():
    """120 synthetic shoppers over 60 products: enough to train, small enough for seconds."""
    return generate_histories(generate_catalog(60, seed=3), 120, seed=3)
