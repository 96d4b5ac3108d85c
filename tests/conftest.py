"""For every suite (the demo store's and the Oscar test store's): each test starts with an empty cache."""
import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()
