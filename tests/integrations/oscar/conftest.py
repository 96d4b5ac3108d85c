import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client(client, django_capture_on_commit_callbacks):
    """Oscar's pages through the Django test client, each request committed as in production
    (ATOMIC_REQUESTS): the work a request leaves for on_commit (the plugin writes its events then)
    runs when the request ends, redirects followed included."""
    send = client.request

    def committed(**request):
        with django_capture_on_commit_callbacks(execute=True):
            return send(**request)

    client.request = committed
    return client
