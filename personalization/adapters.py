"""The only code that knows the host store's models.

`StoreAdapter` is the extension point: a store whose data does not live in Django models
subclasses it (or calls `personalization.track()`). `ModelAdapter` is the ready subclass
configured entirely by the `PERSONALIZATION` settings (model paths and field names).
"""
import collections
import functools
import threading
from dataclasses import dataclass, replace
from decimal import Decimal

from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections
from django.db.models.signals import post_save
from django.urls import get_script_prefix, get_urlconf
from django.utils import translation

from personalization.conf import settings
from personalization.prepared import RowsByKey

#: The ProductInfo fields a ModelAdapter reads from the product.
PRODUCT_KEYS = ("title", "category", "price", "stock", "active", "url")
#: Product rows whose instance-only values (URLs) a ModelAdapter remembers, per process (each entry
#: holds the row: about a kilobyte with a short description).
INSTANCE_MEMO_SIZE = 8192


@dataclass(frozen=True)
class CartLineInfo:
    user_id: object
    session_key: str
    product_id: str
    quantity: int


@dataclass(frozen=True)
class OrderLineInfo:
    line_id: str
    order_id: str
    user_id: object
    product_id: str
    quantity: int
    unit_price: Decimal | None
    ordered_at: object


@dataclass(frozen=True)
class ProductInfo:
    id: str
    title: str
    category: str
    price: Decimal | None
    stock: int | None
    active: bool
    url: str


class StoreAdapter:
    """What the plugin asks of a store. Override the methods your store can answer."""

    #: Model classes whose signals are observed; None when the store's cart is not a model.
    cart_line_model = None
    order_line_model = None

    def cart_line(self, line):
        """A cart line instance -> CartLineInfo."""
        raise NotImplementedError

    def order_lines(self, order):
        """An order -> its lines as a list of OrderLineInfo."""
        raise NotImplementedError

    def order_user_id(self, order):
        """The buyer's user id of an order object, or None when unknown."""
        return None

    def order_placed_signal(self):
        """(signal, sender) marking a placed order, or None when orders are not models."""
        return None

    def order_from_signal(self, **kwargs):
        """The order object from the keyword arguments of the order-placed signal."""
        return kwargs.get("order") or kwargs.get("instance")

    def products(self, product_ids):
        """Product ids -> {id: ProductInfo} for the ones that exist."""
        raise NotImplementedError

    def cart_lines(self, user_id=None, session_key=""):
        """The lines of the shopper's cart now, as CartLineInfo; None when the store's cart cannot be read."""
        return None


def resolve_model(setting_name):
    """The model a `*_MODEL` setting names, or ImproperlyConfigured with the fix."""
    label = getattr(settings, setting_name)
    if not label:
        raise ImproperlyConfigured(f"PERSONALIZATION[{setting_name!r}] is not set; use 'app_label.ModelName'.")
    try:
        return apps.get_model(label, require_ready=False)
    except (LookupError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"PERSONALIZATION[{setting_name!r}] = {label!r} is not an installed model ('app_label.ModelName')."
        ) from exc


def resolve_field_path(model, path):
    """Walks a `__` lookup from `model`; returns the final field, raising FieldDoesNotExist when broken."""
    field = None
    for part in path.split("__"):
        if model is None:
            raise FieldDoesNotExist(f"{path!r}: {part!r} follows a field that is not a relation")
        field = model._meta.get_field(part)
        model = field.related_model if field.is_relation else None
    return field


def read_path(instance, path):
    """The value at a `__` lookup on an instance, using foreign-key ids to avoid extra queries."""
    if path == "pk":
        return instance.pk
    parts = path.split("__")
    for part in parts[:-1]:
        instance = getattr(instance, part)
        if instance is None:
            return None
    last = parts[-1]
    try:
        field = instance._meta.get_field(last)
    except FieldDoesNotExist:
        value = getattr(instance, last)
        return value() if callable(value) else value
    if field.is_relation and field.concrete and not field.many_to_many:
        return getattr(instance, field.attname)
    return getattr(instance, last)


def _single_valued(model, path):
    """True when a `__` lookup reads one value per row of `model` (concrete fields through forward
    foreign keys); False for many-valued ones; FieldDoesNotExist when it names no field."""
    for part in path.split("__"):
        if model is None:
            raise FieldDoesNotExist(f"{path!r}: {part!r} follows a field that is not a relation")
        field = model._meta.get_field(part)
        if not field.concrete or field.many_to_many or field.one_to_many:
            return False
        model = field.related_model if field.is_relation else None
    return True


def _as_id(value):
    return None if value is None else str(value)


class ModelAdapter(StoreAdapter):
    """A store whose products, cart lines and order lines are Django models named in settings."""

    def __init__(self):
        self.product_fields = settings.PRODUCT_FIELDS
        self.cart_fields = settings.CART_LINE_FIELDS
        self.order_fields = settings.ORDER_LINE_FIELDS
        self.product_model = resolve_model("PRODUCT_MODEL")
        self.cart_line_model = resolve_model("CART_LINE_MODEL") if settings.CART_LINE_MODEL else None
        self.order_line_model = resolve_model("ORDER_LINE_MODEL") if settings.ORDER_LINE_MODEL else None

    # Cart lines
    def cart_line(self, line):
        fields = self.cart_fields
        quantity = read_path(line, fields["quantity"])
        if hasattr(quantity, "resolve_expression"):  # saved as F("quantity") + n: read the stored value
            line.refresh_from_db(fields=[fields["quantity"]])
            quantity = read_path(line, fields["quantity"])
        return CartLineInfo(
            user_id=read_path(line, fields["user"]) if fields.get("user") else None,
            session_key=(read_path(line, fields["session_key"]) or "") if fields.get("session_key") else "",
            product_id=_as_id(read_path(line, fields["product"])),
            quantity=int(quantity or 0),
        )

    def cart_lines(self, user_id=None, session_key=""):
        if self.cart_line_model is None:
            return None
        fields = self.cart_fields
        if user_id is not None and fields.get("user"):
            owner = {fields["user"]: user_id}
        elif session_key and fields.get("session_key"):
            owner = {fields["session_key"]: session_key}
        else:
            return []
        rows = self.cart_line_model._default_manager.filter(**owner).values_list(fields["product"], fields["quantity"])
        return [
            CartLineInfo(user_id=user_id, session_key=session_key or "", product_id=_as_id(product), quantity=int(quantity or 0))
            for product, quantity in rows
        ]

    # Orders
    def order_model(self):
        return resolve_field_path(self.order_line_model, self.order_fields["order"]).related_model

    def order_user_id(self, order):
        order_path, user_path = self.order_fields["order"], self.order_fields.get("user") or ""
        prefix = f"{order_path}__"
        return read_path(order, user_path.removeprefix(prefix)) if user_path.startswith(prefix) else None

    def order_placed_signal(self):
        if self.order_line_model is None:
            return None
        if settings.ORDER_PLACED_SIGNAL is not None:
            return settings.ORDER_PLACED_SIGNAL, None
        return post_save, self.order_model()

    def order_lines(self, order):
        fields = self.order_fields
        names = ["line_id", "order_id", "user_id", "product_id", "quantity", "unit_price", "ordered_at"]
        lookups = [
            "pk",
            fields["order"],
            fields.get("user"),
            fields["product"],
            fields.get("quantity"),
            fields.get("unit_price"),
            fields.get("ordered_at"),
        ]
        present = [lookup for lookup in lookups if lookup]
        rows = self.order_line_model._default_manager.filter(**{fields["order"]: order}).values_list(*present)
        lines = []
        for row in rows:
            values = dict(zip(present, row))
            raw = {name: values.get(lookup) if lookup else None for name, lookup in zip(names, lookups)}
            lines.append(
                OrderLineInfo(
                    line_id=_as_id(raw["line_id"]),
                    order_id=_as_id(raw["order_id"]),
                    user_id=raw["user_id"],
                    product_id=_as_id(raw["product_id"]),
                    quantity=int(raw["quantity"] if raw["quantity"] is not None else 1),
                    unit_price=raw["unit_price"],
                    ordered_at=raw["ordered_at"],
                )
            )
        return lines

    # Products
    def products(self, product_ids):
        plan = self._product_plan()
        if plan is None:
            return self._product_instances(product_ids)
        return {pid: self.finish_product(draft) for pid, draft in self.product_drafts(product_ids).items()}

    def product_drafts(self, product_ids):
        """{id: ProductDraft}: each product's ProductInfo read as plain values in one query, but for the
        fields only a model instance answers (a `get_absolute_url` URL), left empty until finish_product
        (ranking builds them for the products it serves only)."""
        plan = self._product_plan()
        if plan is None:
            return {pid: ProductDraft(info, None) for pid, info in self._product_instances(product_ids).items()}
        names, at, attnames, instance_keys = plan
        positions = [at.get(key) for key in PRODUCT_KEYS]
        context = url_context() if instance_keys else None
        found = {}
        for row in self._rows_by_key(product_ids):
            title, category, price, stock, active, url = [None if n is None else row[n] for n in positions]
            if not title and "title" not in instance_keys:
                title = str(self._instance(row))
            pk = str(row[0])
            info = ProductInfo(
                id=pk,
                title=str(title) if title else "",
                category="" if category is None else str(category),
                price=price,
                stock=stock,
                active=True if active is None else bool(active),
                url=url or "",
            )
            draft = ProductDraft(info, row, context) if instance_keys else ProductDraft(info, None)
            if set(instance_keys) - {"url"}:  # what the rules or an explanation read: at once
                draft = ProductDraft(self.finish_product(draft), None)
            found[pk] = draft
        return found

    def finish_product(self, draft):
        """The ProductInfo of a ProductDraft, with the fields read from a model instance."""
        plan = self._product_plan()
        if draft.row is None or plan is None or not plan[3]:
            return draft.info
        return replace(draft.info, **self._instance_fields(draft.row, plan[3], draft.context))

    def _instance_fields(self, row, keys, context):
        """{ProductInfo field: value} of the fields only an instance answers (a get_absolute_url URL),
        remembered per product row: the row holds every column, so the same row gives the same values,
        unless they read other rows (a query ran: not remembered) or the URLs or the language changed
        (`context`, the url_context() of the request)."""
        memo_key = (row, context)
        changes = self._instance_memo.get(memo_key)
        if changes is not None:
            return changes
        queries = []
        connection = connections[self.product_model._default_manager.db]
        with connection.execute_wrapper(lambda execute, *args: queries.append(1) or execute(*args)):
            instance = self._instance(row)
            values = {key: read_path(instance, self.product_fields[key]) for key in keys}
            changes = {}
            if "title" in values:
                changes["title"] = str(values["title"] or instance)
        if "url" in values:
            changes["url"] = values["url"] or ""
        if "category" in values:
            changes["category"] = "" if values["category"] is None else str(values["category"])
        for key in ("price", "stock"):
            if key in values:
                changes[key] = values[key]
        if "active" in values:
            changes["active"] = True if values["active"] is None else bool(values["active"])
        if not queries:
            self._instance_memo.put(memo_key, changes)
        return changes

    def _instance(self, row):
        """A product instance from the concrete columns of a product_drafts row (no query)."""
        _, at, attnames, _ = self._product_plan()
        row = self._rows_by_key.complete(row)
        return self.product_model.from_db(
            self.product_model._default_manager.db, attnames, [row[at[("column", name)]] for name in attnames]
        )

    def _product_plan(self):
        """(values_list names, {key: position}, concrete column names, keys only an instance answers),
        or None when a field path ends in something other than a field behind a relation."""
        plan = self.__dict__.get("_plan", _UNPLANNED)
        if plan is not _UNPLANNED:
            return plan
        fields = self.product_fields
        names, at, instance_keys = ["pk"], {}, []
        for key in PRODUCT_KEYS:
            path = fields.get(key)
            if not path:
                continue
            try:
                single = path == "pk" or _single_valued(self.product_model, path)
            except FieldDoesNotExist:
                single = None
            if single is None and "__" not in path:  # a method or property of the product
                instance_keys.append(key)
                continue
            if not single:  # a field behind a many-valued relation, or a method behind a relation
                self._plan = None
                return None
            if path not in names:
                names.append(path)
            at[key] = names.index(path)
        # Every column too, so that an instance (a URL, a title from str()) needs no second query.
        attnames = [field.attname for field in self.product_model._meta.concrete_fields]
        for name in attnames:
            if name not in names:
                names.append(name)
            at[("column", name)] = names.index(name)
        self._plan = (names, at, attnames, tuple(instance_keys))
        # The values of ProductInfo converted at once; the other columns only for an instance.
        converted = [names[at[key]] for key in PRODUCT_KEYS if key in at]
        self._rows_by_key = RowsByKey(self.product_model, names, converted=converted)
        self._instance_memo = _Memo(INSTANCE_MEMO_SIZE)
        return self._plan

    def _product_instances(self, product_ids):
        fields = self.product_fields
        related = [path.rsplit("__", 1)[0] for path in fields.values() if path and "__" in path]
        queryset = self.product_model._default_manager.filter(pk__in=list(product_ids))
        if related:
            queryset = queryset.select_related(*related)
        found = {}
        for product in queryset:
            get = lambda key: read_path(product, fields[key]) if fields.get(key) else None  # noqa: E731
            category = get("category")
            found[str(product.pk)] = ProductInfo(
                id=str(product.pk),
                title=str(get("title") or product),
                category="" if category is None else str(category),
                price=get("price"),
                stock=get("stock"),
                active=True if get("active") is None else bool(get("active")),
                url=get("url") or "",
            )
        return found


def url_context():
    """What reverse() answers depends on besides its arguments: the language, the script prefix and
    the URLconf (the request's or the project's)."""
    return translation.get_language(), get_script_prefix(), get_urlconf(), django_settings.ROOT_URLCONF


class _Memo:
    """A bounded map that forgets the least recently used entry first; safe across threads."""

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


@dataclass(frozen=True)
class ProductDraft:
    info: ProductInfo  # complete but for the fields only a model instance answers
    row: tuple | None  # what ModelAdapter.finish_product builds them from
    context: tuple | None = None  # the url_context() they are built in


_UNPLANNED = object()


@functools.cache
def get_adapter():
    """The configured adapter instance (cached; rebuilt when PERSONALIZATION changes)."""
    adapter_class = settings.ADAPTER
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, StoreAdapter)):
        raise ImproperlyConfigured("PERSONALIZATION['ADAPTER'] must name a StoreAdapter subclass.")
    return adapter_class()


def _reset(*, setting, **kwargs):
    # PERSONALIZATION configures the adapter; any other setting may change what a product instance
    # answers (its URL), which the adapter remembers.
    get_adapter.cache_clear()


setting_changed.connect(_reset, dispatch_uid="personalization.adapters.reset")

__all__ = ["StoreAdapter", "ModelAdapter", "get_adapter", "CartLineInfo", "OrderLineInfo", "ProductInfo"]
