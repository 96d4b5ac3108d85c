from pathlib import Path

import pytest


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


# What Oscar 4.2 and its dependencies warn about in their own code, on every page and factory call:
# not this store's to fix, and it would bury the plugin's warnings.
OSCARS_OWN_WARNINGS = [
    "ignore::treebeard.deprecation.RemovedInTreebeard8Warning",
    "ignore:.*_after_postgeneration will stop saving:DeprecationWarning:factory",
    "ignore:update is not implemented in this backend:UserWarning:haystack",
]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        for spec in OSCARS_OWN_WARNINGS:
            item.add_marker(pytest.mark.filterwarnings(spec))
