"""The only code that knows the host store's models.

`StoreAdapter` (base.py) is the whole contract; `ModelAdapter` (model_adapter.py) is the ready
subclass configured by the `PERSONALIZATION` settings; `fields` is the one reader of their field
paths, shared with the checks.
"""
import functools

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from personalization.adapters.base import CartLineInfo, OrderLineInfo, ProductDraft, ProductInfo, StoreAdapter
from personalization.adapters.model_adapter import ModelAdapter, resolve_model, url_context
from personalization.conf import settings


@functools.cache
def get_adapter():
    """The configured adapter instance (cached; rebuilt when a setting changes)."""
    adapter_class = settings.ADAPTER
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, StoreAdapter)):
        raise ImproperlyConfigured("PERSONALIZATION['ADAPTER'] must name a StoreAdapter subclass.")
    return adapter_class()


def _reset(*, setting, **kwargs):
    # PERSONALIZATION configures the adapter; any other setting may change what a product instance
    # answers (its URL), which the adapter remembers.
    get_adapter.cache_clear()


setting_changed.connect(_reset, dispatch_uid="personalization.adapters.reset")

__all__ = [
    "StoreAdapter", "ModelAdapter", "get_adapter", "resolve_model", "url_context",
    "CartLineInfo", "OrderLineInfo", "ProductInfo", "ProductDraft",
]  # fmt: skip
