"""What a process keeps between requests: a bounded memo that forgets the least recently used first."""
from personalization.cache import ProcessMemo


def test_the_memo_forgets_the_least_recently_used_entry_past_its_size():
    memo = ProcessMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "b" is now the least recently used
    memo.put("c", 3)

    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (1, None, 3)


def test_a_cleared_memo_holds_nothing():
    memo = ProcessMemo(4)
    memo.put("a", 1)
    memo.clear()

    assert memo.get("a") is None
