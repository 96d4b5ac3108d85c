"""manage.py seed_catalog: the demo store's grocery catalog (categories and products)."""
import random
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.text import slugify

from shop.models import Category, Product

# name, colour of its drawn product images, (items, sizes, (low, high) price of the first size)
CATALOG = [
    ("Fruit", "#e4572e", (["Fuji Apples", "Bananas", "Blueberries", "Strawberries", "Lemons", "Mangoes",
                           "Seedless Grapes", "Clementines", "Conference Pears", "Raspberries"],
                          ["500g", "1kg", "Pack of 6"], (1.2, 3.5))),
    ("Vegetables", "#4c9a2a", (["Carrots", "Broccoli", "Baby Spinach", "Cherry Tomatoes", "Red Onions",
                                "Potatoes", "Courgettes", "Mushrooms", "Sweet Potatoes", "Leeks"],
                               ["250g", "500g", "1kg"], (0.7, 2.5))),
    ("Dairy", "#f2c14e", (["Whole Milk", "Semi-Skimmed Milk", "Greek Yoghurt", "Salted Butter", "Mature Cheddar",
                           "Parmesan", "Mozzarella", "Double Cream", "Free-Range Eggs"],
                          ["Small", "Medium", "Large"], (0.9, 3.5))),
    ("Bakery", "#c98b4a", (["Sourdough Loaf", "Wholemeal Bread", "Croissants", "Bagels", "Seeded Rolls",
                            "Crumpets", "Brioche Buns", "Tortilla Wraps"], ["", "4 Pack", "Family Pack"],
                           (0.9, 2.8))),
    ("Pasta & Rice", "#d9a441", (["Spaghetti", "Penne", "Fusilli", "Basmati Rice", "Risotto Rice",
                                  "Egg Noodles", "Lasagne Sheets", "Couscous"], ["500g", "1kg", "2kg"], (0.7, 2.2))),
    ("Sauces", "#b23a48", (["Tomato & Basil Sauce", "Green Pesto", "Arrabbiata Sauce", "Tomato Ketchup",
                            "Mayonnaise", "Soy Sauce", "Sweet Chilli Sauce", "Curry Paste"], ["190g", "350g", "500g"],
                           (0.9, 2.8))),
    ("Meat", "#9e2a2b", (["Chicken Breasts", "Beef Mince", "Pork Sausages", "Smoked Bacon", "Lamb Chops",
                          "Chicken Thighs"], ["300g", "500g", "1kg"], (2.5, 6.0))),
    ("Fish", "#3a7ca5", (["Salmon Fillets", "Cod Loins", "King Prawns", "Smoked Mackerel", "Tuna Steaks"],
                         ["2 Pack", "4 Pack"], (2.8, 6.5))),
    ("Snacks", "#f08a4b", (["Sea Salt Crisps", "Tortilla Chips", "Salted Peanuts", "Dark Chocolate",
                            "Oat Cookies", "Popcorn", "Rice Cakes"], ["", "Sharing Bag", "Multipack"],
                           (0.8, 2.5))),
    ("Drinks", "#2a9d8f", (["Sparkling Water", "Orange Juice", "Apple Juice", "Cola", "Lemonade",
                            "Ginger Beer"], ["1L", "2L", "6 x 330ml"], (0.6, 2.2))),
    ("Coffee & Tea", "#6f4e37", (["Ground Coffee", "Coffee Beans", "Breakfast Tea", "Green Tea",
                                  "Earl Grey Tea", "Instant Coffee"], ["40 Bags", "80 Bags", "227g"], (1.5, 4.5))),
    ("Breakfast", "#e9c46a", (["Porridge Oats", "Granola", "Cornflakes", "Muesli", "Strawberry Jam",
                               "Peanut Butter", "Runny Honey"], ["340g", "500g", "1kg"], (1.0, 3.0))),
    ("Frozen", "#8ecae6", (["Garden Peas", "Margherita Pizza", "Fish Fingers", "Oven Chips", "Mixed Berries",
                            "Vanilla Ice Cream"], ["", "Family Pack"], (1.0, 3.2))),
    ("Pantry", "#a98467", (["Chopped Tomatoes", "Chickpeas", "Kidney Beans", "Olive Oil", "Plain Flour",
                            "Baked Beans", "Stock Cubes"], ["", "4 Pack"], (0.5, 3.5))),
    ("Household", "#577590", (["Washing-Up Liquid", "Kitchen Roll", "Toilet Tissue", "Laundry Liquid",
                               "Bin Bags", "Dishwasher Tablets"], ["Regular", "Value Pack"], (1.0, 5.0))),
    ("Personal Care", "#b5838d", (["Shampoo", "Conditioner", "Toothpaste", "Shower Gel", "Hand Soap"],
                                  ["250ml", "400ml"], (1.0, 3.5))),
    ("Baby", "#ffafcc", (["Nappies", "Baby Wipes", "Fruit Pouches", "Baby Rice"], ["", "Multipack"],
                         (1.0, 7.0))),
    ("Pet Food", "#6d597a", (["Dry Dog Food", "Cat Pouches", "Dog Biscuits", "Cat Litter"],
                             ["Small", "Large"], (1.5, 7.0))),
]
QUALIFIERS = ["", "", "", "Organic", "Finest", "Value", "British", "Italian", "Fairtrade", "Free From", "Classic"]
BLURBS = [
    "A store-cupboard favourite, picked for flavour and value.",
    "Fresh from our trusted growers and makers, delivered with care.",
    "Great for weekday dinners and weekend treats alike.",
    "Chosen by our buyers for quality you can taste.",
    "Part of our everyday range: good food at a fair price.",
]


class Command(BaseCommand):
    help = "Creates the demo store's grocery categories and products (nothing when products exist, unless --replace)."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=400, help="number of products (default 400)")
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
        parser.add_argument("--replace", action="store_true", help="delete the existing catalog first")

    def handle(self, *args, products, seed, replace, **options):
        if products < 0:
            raise CommandError("--products cannot be negative.")
        existing = Product.objects.count()
        if existing and not replace:
            self.stdout.write(f"The catalog already has {existing} products; nothing done (--replace rebuilds it).")
            return
        with transaction.atomic():
            if replace:
                try:
                    Product.objects.all().delete()
                except ProtectedError as exc:
                    raise CommandError(
                        "Cannot replace the catalog: orders refer to its products. Delete the orders first."
                    ) from exc
                Category.objects.all().delete()
            categories = seed_categories()
            created = seed_products(categories, products, random.Random(seed))
        self.stdout.write(self.style.SUCCESS(f"Created {len(categories)} categories and {created} products."))


def seed_categories():
    """The catalog's categories (existing ones kept), in CATALOG order."""
    categories = []
    for name, colour, _ in CATALOG:
        category, _ = Category.objects.get_or_create(slug=slugify(name), defaults={"name": name, "colour": colour})
        categories.append(category)
    return categories


def seed_products(categories, count, rng):
    """Bulk-creates `count` products spread over the categories (some categories bigger). Returns count."""
    weights = [1.0 / (rank + 1) ** 0.5 for rank in rng.sample(range(len(CATALOG)), len(CATALOG))]
    taken = set(Product.objects.values_list("slug", flat=True))
    titles = set(Product.objects.values_list("title", flat=True))
    batch = []
    for number in range(1, count + 1):
        index = rng.choices(range(len(CATALOG)), weights)[0]
        name, _, (items, sizes, (low, high)) = CATALOG[index]
        for _attempt in range(30):  # a shop lists each product once; big catalogs get numbered variants
            size = rng.randrange(len(sizes))
            title = " ".join(part for part in (rng.choice(QUALIFIERS), rng.choice(items), sizes[size]) if part)
            if title not in titles:
                break
        else:
            title = f"{title} No. {number}"
        titles.add(title)
        slug = slugify(title)
        if slug in taken:
            slug = f"{slug}-{number}"
        taken.add(slug)
        price = rng.uniform(low, high) * (1 + 0.6 * size)
        batch.append(
            Product(
                title=title,
                slug=slug,
                description=f"{title}. {rng.choice(BLURBS)}",
                category=categories[index],
                price=Decimal(int(price)) + Decimal("0.49" if price % 1 < 0.5 else "0.99"),
                stock=0 if rng.random() < 0.06 else rng.randint(3, 150),
                active=True,
            )
        )
        if len(batch) == 1000:
            Product.objects.bulk_create(batch)
            batch = []
    Product.objects.bulk_create(batch)
    return count
