"""What the plugin asks of a store: the `StoreAdapter` contract and the records it answers with.

Every member the receivers, services, coupons and commands use is declared here. A store whose
data is not in Django models subclasses `StoreAdapter` (and calls `personalization.track()` for its
cart); `ModelAdapter` is the ready subclass configured by the `PERSONALIZATION` settings.
"""
from dataclasses import dataclass
from decimal import Decimal


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
    category: str  # the primary category: what explanations name and affinities count
    price: Decimal | None
    stock: int | None  # None: the store does not count it
    active: bool
    url: str
    categories: tuple = ()  # every category the product is in, when it is in several

    @property
    def every_category(self):
        """The names a category rule of a placement looks at."""
        return self.categories or ((self.category,) if self.category else ())


@dataclass(frozen=True)
class ProductDraft:
    info: ProductInfo  # complete but for the fields only a model instance answers
    row: tuple | None = None  # what the adapter's finish_product builds them from
    context: tuple | None = None  # the URL context they are built in


class StoreAdapter:
    """What the plugin asks of a store. Override what your store can answer; the defaults say
    "this store has no such thing" (no cart model, no order signal), never guess."""

    #: The cart-line model whose saves and deletes are cart changes; None when the cart is not a
    #: model (the store then calls personalization.track("cart_add", ...)).
    cart_line_model = None
    #: The order-line model; None when orders are recorded with personalization.track("purchase", ...).
    order_line_model = None

    # Carts
    def cart_line(self, line):
        """A cart line instance -> CartLineInfo, or None when the line is not part of a shopper's
        open cart (a submitted or frozen cart's line). `user_id` and `session_key` may both be
        empty when the cart's owner is only known from the request (an anonymous cart without a
        session column): the plugin's ShopperMiddleware then names the shopper."""
        raise NotImplementedError(f"{type(self).__name__} has a cart_line_model but no cart_line()")

    def cart_line_quantity(self, line):
        """The quantity a cart line instance holds as loaded, without a query (the receivers record
        the difference when it is saved)."""
        raise NotImplementedError(f"{type(self).__name__} has a cart_line_model but no cart_line_quantity()")

    def cart_lines(self, user_id=None, session_key=""):
        """The lines of the shopper's open cart now, as CartLineInfo; None when the store's cart
        cannot be read (coupon checks and cart predictions then use what the store passes them)."""
        return None

    # Orders
    def order_placed_signal(self):
        """(signal, sender) marking a placed order, or None when orders are not models."""
        return None

    def order_from_signal(self, **kwargs):
        """The order object from the keyword arguments of the order-placed signal."""
        return kwargs.get("order") or kwargs.get("instance")

    def order_lines(self, order):
        """An order -> its lines as a list of OrderLineInfo (one purchase event each)."""
        raise NotImplementedError(f"{type(self).__name__} names an order signal but has no order_lines()")

    def order_model(self):
        """The order model, whose creation marks the transaction as a checkout (the cart lines it
        deletes were bought, not taken out); None when there is none."""
        return None

    def order_user_id(self, order):
        """The buyer's user id of an order object, or None when unknown."""
        return None

    # Products
    def products(self, product_ids):
        """Product ids -> {id: ProductInfo} for the ones that exist (inactive ones included: the
        rules decide). Called on every request that shows products: one query per call."""
        raise NotImplementedError(f"{type(self).__name__} must answer products()")

    def catalog(self):
        """Every product as ProductInfo, in a stable order (the demo data, the doctor's sample)."""
        return iter(())

    def product_drafts(self, product_ids):
        """{id: ProductDraft}: products() with the fields that are costly to build (URLs) possibly left
        for finish_product(), which ranking calls for the products it serves only."""
        return {pid: ProductDraft(info) for pid, info in self.products(product_ids).items()}

    def finish_product(self, draft):
        """The complete ProductInfo of a ProductDraft."""
        return draft.info

    def catalog_models(self):
        """The models whose saves and deletes change what products() answers (the product model,
        its categories, its stock records, ...). Products' facts are remembered between requests
        only for an adapter that names them, and forgotten when one of them changes; () (the
        default): every request reads the products it shows."""
        return ()
