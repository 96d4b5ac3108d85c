"""The plugin's cache: the store's default cache, except that a failing cache server never raises
into the store. Every plugin module caches through `cache` here.

Nothing the plugin caches is the only copy (events and opt-outs live in the database; the rest can
be computed again), so with the cache down each call answers as for a missing key and the caller
does the work the cache would have spared: `get` gives the default, `get_many` nothing, `add` True,
writes and deletes do nothing. The failure is logged, at most once a minute per process.
"""
import collections
import logging
import threading
import time

from django.core.cache import cache as default_cache

logger = logging.getLogger("personalization.cache")

#: Seconds between two log lines about a failing cache in one process.
LOG_EVERY_SECONDS = 60


class ForgivingCache:
    """The subset of Django's cache API the plugin uses, answering as for a missing key on failure."""

    def __init__(self):
        self._logged_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, key, default=None):
        return self._call("get", default, key, default)

    def get_many(self, keys):
        return self._call("get_many", {}, keys)

    def add(self, key, value, timeout):
        return self._call("add", True, key, value, timeout)

    def set(self, key, value, timeout):
        return self._call("set", None, key, value, timeout)

    def set_many(self, entries, timeout):
        return self._call("set_many", list(entries), entries, timeout)

    def delete(self, key):
        return self._call("delete", False, key)

    def delete_many(self, keys):
        return self._call("delete_many", None, keys)

    def _call(self, name, fallback, *args):
        try:
            return getattr(default_cache, name)(*args)
        except Exception as exc:
            self._log(name, exc)
            return fallback

    def _log(self, name, exc):
        now = time.monotonic()
        with self._lock:
            if now - self._logged_at < LOG_EVERY_SECONDS:
                return
            self._logged_at = now
        logger.error("The cache is failing (%s in cache.%s): personalization goes on without it", exc, name)


cache = ForgivingCache()


class ProcessMemo:
    """What one process keeps between requests, beside the shared cache: a bounded map that forgets
    the least recently used entry first; safe across threads."""

    def __init__(self, size):
        self.size, self._entries, self._lock = size, collections.OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value):
        with self._lock:
            self._entries[key] = value
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()
