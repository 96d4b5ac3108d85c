"""Factories shared by the test suites: `from tests.factories import ProductFactory`."""
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils.text import slugify

from shop.models import Category, Product

PASSWORD = "a-long-pass-phrase"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"shopper{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda category: slugify(category.name))
    colour = "#2f6b4f"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ["slug"]

    title = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.LazyAttribute(lambda product: slugify(product.title))
    description = "A fine thing."
    category = factory.SubFactory(CategoryFactory)
    price = Decimal("2.50")
    stock = 10
    active = True
