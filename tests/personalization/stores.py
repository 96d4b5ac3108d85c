"""A tiny store for the ranking tests: two kinds of shoppers, their orders as purchase events, and
real models trained on those orders (a few epochs, well under a second)."""
import random
from dataclasses import dataclass, field
from datetime import timedelta

import torch
from django.contrib.auth import get_user_model
from django.utils import timezone

from personalization import registry
from personalization.learning.frames import purchase_frame
from personalization.ml import checkpoint
from personalization.ml.sequences import build_sequences
from personalization.ml.train import TrainConfig, train_autoencoder, train_next_basket
from personalization.models import Event, EventKind, ModelKind
from tests.factories import CategoryFactory, ProductFactory

SHELVES = {
    "Dairy": ["Milk", "Butter", "Cheese", "Yogurt", "Cream", "Kefir"],
    "Bakery": ["Bread", "Croissant", "Bagel", "Muffin", "Baguette", "Rye"],
    "Fruit": ["Apples", "Bananas", "Pears", "Plums"],
}


@dataclass
class TinyStore:
    products: dict = field(default_factory=dict)  # title -> Product
    shoppers: dict = field(default_factory=dict)  # "dairy" / "bakery" -> [users]

    def product(self, title):
        return self.products[title]

    def ids(self, *titles):
        return [str(self.products[t].pk) for t in titles]

    def title_of(self, product_id):
        return next(p.title for p in self.products.values() if str(p.pk) == str(product_id))


def build_store(shoppers_per_taste=8, orders=5, seed=0):
    """Dairy shoppers always buy Milk and Butter and some other dairy; bakery shoppers Bread and
    Croissant and some other bakery; both now and then a fruit. Orders are a few days apart."""
    rng = random.Random(seed)
    store = TinyStore()
    for category, titles in SHELVES.items():
        shelf = CategoryFactory(name=category, slug=category.lower())
        for title in titles:
            store.products[title] = ProductFactory(title=title, category=shelf, price="3.00", stock=20)
    staples = {"dairy": ("Milk", "Butter"), "bakery": ("Bread", "Croissant")}
    others = {"dairy": SHELVES["Dairy"][2:], "bakery": SHELVES["Bakery"][2:]}
    start = timezone.now() - timedelta(days=orders * 7 + 10)  # the last orders are older than "trending"
    purchases = []
    for taste in ("dairy", "bakery"):
        store.shoppers[taste] = []
        for n in range(shoppers_per_taste):
            user = get_user_model().objects.create_user(f"{taste}{n}")  # no password: nothing to hash
            store.shoppers[taste].append(user)
            for number in range(orders):
                basket = list(staples[taste]) + rng.sample(others[taste], 2)
                if rng.random() < 0.3:
                    basket.append(rng.choice(SHELVES["Fruit"]))
                ordered_at = start + timedelta(days=7 * number, hours=n)
                purchases += [
                    purchase(user, store.products[title], f"{user.pk}-{number}", ordered_at) for title in basket
                ]
    Event.objects.bulk_create(purchases)
    return store


def purchase(user, product, order_id, ordered_at):
    return Event(
        kind=EventKind.PURCHASE,
        user_id=str(user.pk),
        product_id=str(product.pk),
        order_id=order_id,
        quantity=1,
        unit_price=product.price,
        dedupe_key=f"test:{order_id}:{product.pk}",
        created_at=ordered_at,
    )


def train_and_activate(kinds=(ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER), epochs=3, seed=0):
    """Trains each kind on the store's purchase events and makes it the active version."""
    sequences = build_sequences(purchase_frame())
    trainers = {ModelKind.NEXT_BASKET: train_next_basket, ModelKind.AUTOENCODER: train_autoencoder}
    versions = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train fastest on one thread, above all on a busy machine
    try:
        for kind in kinds:
            config = TrainConfig(epochs=epochs, patience=None, seed=seed, device="cpu", batch_size=32)
            model = trainers[kind](sequences, train_config=config).model
            artifact = checkpoint.save(model, vocabulary=sequences.vocabulary)
            versions.append(registry.activate(registry.publish(kind, artifact)))
    finally:
        torch.set_num_threads(threads)
    return versions
