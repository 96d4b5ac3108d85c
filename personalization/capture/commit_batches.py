"""The one place the plugin reads Django internals: the open transaction's on_commit queue.

Events recorded inside a transaction are written in it (in savepoints: stored or rolled back with
it), the version tokens of their shoppers are renewed once when it commits, and a checkout's cart
lines are not recorded as taken out of the cart. Both need the events of one transaction, at one
savepoint level, gathered in one callback: `pending()` answers the batch that is still the last
callback of the queue at the current savepoint level, or puts a new one there.

Why not public API only: Django offers `transaction.on_commit` but no way to tell whether a callback
registered earlier is still queued at this savepoint level or was dropped by a rollback (there is no
on_rollback); joining events to a dropped or outer-level batch would renew nobody's token for them,
or let a checkout delete the cart removals of another savepoint. One callback per recorded event
instead would renew the tokens in as many cache writes, and a checkout could not find the cart
removals recorded before its order. What is read: `connection.run_on_commit` (a list of (savepoint
ids, callable, robust) tuples), `connection.savepoint_ids` (a list, None for an atomic block without
one) and `connection.in_atomic_block`, as in Django 5.2;
tests/personalization/capture/test_commit_batches.py fails when any of them changes.
"""
from django.db import transaction


class Batch:
    """The events one transaction (one savepoint level) wrote, handed to `write` on commit.

    It lives in Django's on_commit list, so a rollback discards it with everything else the
    transaction scheduled; later events join it while it is still the last callback there."""

    def __init__(self, write):
        self.write = write
        self.events = []
        self.checkout_users = set()
        self.done = False

    def __call__(self):
        self.done = True
        self.write(self)


def in_transaction():
    """Whether a transaction.atomic block is open on the default connection."""
    return transaction.get_connection().in_atomic_block


def pending(write):
    """The Batch the current transaction's events join (created, with `write` as what it does on
    commit, when none is pending at this savepoint level); None outside a transaction."""
    if not in_transaction():
        return None
    connection = transaction.get_connection()
    last = connection.run_on_commit[-1] if connection.run_on_commit else None
    # None marks an atomic block without a savepoint: it cannot roll back on its own.
    savepoints = set(connection.savepoint_ids) - {None}
    if last and isinstance(last[1], Batch) and not last[1].done and last[0] - {None} == savepoints:
        return last[1]
    batch = Batch(write)
    transaction.on_commit(batch)
    return batch
