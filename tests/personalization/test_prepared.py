"""RowsByKey answers as the ORM's values_list over primary keys, through SQL compiled once."""
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalization.prepared import BUCKETS, RowsByKey
from shop.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

NAMES = ["pk", "title", "category__name", "price", "stock", "active", "created_at"]


def orm(model, names, ids):
    return sorted(model._default_manager.filter(pk__in=list(ids)).values_list(*names))


@pytest.fixture
def products():
    return [ProductFactory() for _ in range(40)]


@pytest.mark.parametrize("size", [1, 7, 8, 9, 33, 40])
def test_it_answers_what_the_orm_answers_whatever_the_number_of_keys(products, size):
    rows = RowsByKey(Product, NAMES)
    ids = [str(p.pk) for p in products[:size]] + ["987654321"]  # and a key no product has

    assert sorted(rows(ids)) == orm(Product, NAMES, ids)
    assert sorted(rows(ids)) == orm(Product, NAMES, ids)  # again, from the prepared SQL


def test_repeated_keys_give_each_row_once(products):
    ids = [products[0].pk, str(products[0].pk), products[1].pk]

    assert sorted(RowsByKey(Product, NAMES)(ids)) == orm(Product, NAMES, ids)


def test_values_are_converted_as_the_orm_converts_them(products):
    [row] = RowsByKey(Product, NAMES)([products[0].pk])

    assert row == orm(Product, NAMES, [products[0].pk])[0]
    assert [type(value) for value in row] == [type(value) for value in orm(Product, NAMES, [products[0].pk])[0]]


def test_the_sql_is_compiled_once_per_bucket_and_reused(products, monkeypatch):
    rows = RowsByKey(Product, NAMES)
    compiled = []
    real_compile = Product.objects.none().query.get_compiler.__func__

    def counted(query, *args, **kwargs):
        compiled.append(1)
        return real_compile(query, *args, **kwargs)

    monkeypatch.setattr(type(Product.objects.none().query), "get_compiler", counted)
    rows([p.pk for p in products[:3]])
    rows([p.pk for p in products[3:8]])
    assert len(compiled) == 1  # both fit the first bucket
    with CaptureQueriesContext(connection) as queries:
        rows([p.pk for p in products[8:10]])
    assert len(queries) == 1
    assert len(compiled) == 1


def test_more_keys_than_the_largest_bucket_go_through_the_orm(products):
    ids = [p.pk for p in products] + list(range(10**6, 10**6 + BUCKETS[-1]))

    assert sorted(RowsByKey(Product, NAMES)(ids)) == orm(Product, NAMES, ids)


def test_a_key_no_row_can_have_finds_nothing_instead_of_failing(products):
    """ "abc" or a number past the column's range comes from a client's request: no such product."""
    with pytest.raises(ValueError, match="expected a number"):
        orm(Product, NAMES, ["abc"])  # what the ORM does

    found = RowsByKey(Product, NAMES)(["abc", "9" * 30, products[0].pk])

    assert [row[0] for row in found] == [products[0].pk]


def test_text_keys(db):
    expires = timezone.now() + timedelta(days=1)
    for key in ("alpha", "beta", "gamma"):
        Session.objects.create(session_key=key, session_data="x", expire_date=expires)
    names = ["session_key", "expire_date"]

    assert sorted(RowsByKey(Session, names)(["alpha", "gamma", "nobody"])) == orm(Session, names, ["alpha", "gamma", "nobody"])


def test_a_manager_that_annotates_goes_through_the_orm(products, monkeypatch):
    from django.db.models import Value

    annotated = Product._default_manager.annotate(shelf=Value("x"))
    monkeypatch.setattr(Product._default_manager, "get_queryset", lambda: annotated.all())
    rows = RowsByKey(Product, ["pk", "title", "shelf"])
    ids = [p.pk for p in products[:3]]

    assert sorted(rows(ids)) == sorted(annotated.filter(pk__in=ids).values_list("pk", "title", "shelf"))


def test_values_not_named_converted_wait_for_complete(products):
    rows = RowsByKey(Product, NAMES, converted=["pk", "price"])
    expected = orm(Product, NAMES, [products[0].pk])[0]

    [row] = rows([products[0].pk])

    assert row[0] == expected[0] and row[3] == expected[3]  # converted at once
    if connection.vendor == "sqlite":  # a naive datetime until converted; PostgreSQL's driver needs no converting
        assert row[-1] != expected[-1]
    assert rows.complete(row) == expected and type(rows.complete(row)) is tuple
    assert rows.complete(expected) is expected  # a complete row stays as it is
