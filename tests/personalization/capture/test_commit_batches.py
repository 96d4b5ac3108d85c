"""personalization.capture.commit_batches reads Django's on_commit queue, which is not public API: these tests
fail loudly when Django changes underneath it (then check the module against the new Django)."""
import django
import pytest
from django.db import connection, transaction

from personalization.capture import commit_batches

pytestmark = pytest.mark.django_db(transaction=True)


written = []


def write(batch):
    written.append(list(batch.events))


def test_it_was_checked_against_this_django():
    assert django.VERSION[:2] == (5, 2), (
        "personalization/commit_batches.py reads connection.run_on_commit and savepoint_ids as in Django "
        "5.2: check it against this Django (and the tests below), then update this version"
    )


def test_the_queue_and_the_savepoint_ids_are_as_it_reads_them():
    def callback():
        return None

    assert commit_batches.in_transaction() is False
    with transaction.atomic():
        assert connection.in_atomic_block is True and commit_batches.in_transaction() is True
        transaction.on_commit(callback)
        assert isinstance(connection.savepoint_ids, list)
        sids, func, robust = connection.run_on_commit[-1]
        assert (sids - {None}, func, robust) == (set(), callback, False)
        with transaction.atomic():
            transaction.on_commit(callback)
            inner_sids = connection.run_on_commit[-1][0]
            assert inner_sids - {None} == set(connection.savepoint_ids) - {None} and len(inner_sids - {None}) == 1


def test_one_batch_per_transaction_and_savepoint_level_written_once_committed():
    written.clear()
    assert commit_batches.pending(write) is None  # no transaction: the caller writes at once
    with transaction.atomic():
        outer = commit_batches.pending(write)
        assert commit_batches.pending(write) is outer
        outer.events.append("kept")
        try:
            with transaction.atomic():
                inner = commit_batches.pending(write)
                assert inner is not outer
                inner.events.append("rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
        assert commit_batches.pending(write) is outer  # the inner one went with its savepoint
        outer.events.append("kept too")
    assert written == [["kept", "kept too"]] and outer.done
