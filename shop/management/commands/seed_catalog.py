"""manage.py seed_catalog: the demo store's grocery catalog (categories and products), made up or
loaded from a CSV file (`--from`, e.g. The Complete Journey's products: bench/completejourney.py)."""
import csv
import random
import re
import zlib
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
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


# The columns of a catalog file (--from); an optional "department" goes into the description; others are ignored.
CSV_COLUMNS = ("product_id", "title", "category", "price")
# A byte that is not UTF-8, as the "surrogateescape" error handler keeps it.
_UNDECODED = re.compile("[\udc80-\udcff]")
_TITLE_LENGTH = Product._meta.get_field("title").max_length
_NAME_LENGTH = Category._meta.get_field("name").max_length
_PRICE = Product._meta.get_field("price")
_MAX_PRICE = Decimal(10) ** (_PRICE.max_digits - _PRICE.decimal_places)


class Command(BaseCommand):
    help = (
        "Creates the demo store's grocery categories and products (nothing when products exist, unless --replace); "
        "with --from, the products of a CSV file (columns product_id, title, category, price) instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=400, help="number of products (default 400)")
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
        parser.add_argument("--replace", action="store_true", help="delete the existing catalog first")
        parser.add_argument(
            "--from",
            dest="source",
            metavar="CATALOG.csv",
            help="load the products of this UTF-8 CSV file (product_id, title, category, price; product_id "
            "becomes the product's key, so order histories naming these ids refer to them) instead of making them up",
        )

    def handle(self, *args, products, seed, replace, source=None, **options):
        if products < 0:
            raise CommandError("--products cannot be negative.")
        rows = read_catalog(source) if source else None
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
            if rows is None:
                categories = seed_categories()
                created = seed_products(categories, products, random.Random(seed))
            else:
                categories, created = load_products(rows, random.Random(seed))
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
                stock=stock(rng),
                active=True,
            )
        )
        if len(batch) == 1000:
            Product.objects.bulk_create(batch)
            batch = []
    Product.objects.bulk_create(batch)
    return count


def stock(rng):
    """A product's stock: a few are sold out."""
    return 0 if rng.random() < 0.06 else rng.randint(3, 150)


def read_catalog(path):
    """The rows of a catalog file as (product_id, title, category, price, department), checked;
    CommandError names the file, line and column of the first bad value."""
    try:
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            return list(_catalog_rows(path, csv.reader(handle)))
    except OSError as exc:
        raise CommandError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except csv.Error as exc:
        raise CommandError(f"{path}: not readable as CSV ({exc})") from exc


def _catalog_rows(path, reader):
    header = [name.strip().lower() for name in next(reader, [])]
    if _UNDECODED.search("".join(header)):
        raise CommandError(f"{path}, line 1: not UTF-8 text; save the file as UTF-8")
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        has = ", ".join(header) or "nothing"
        raise CommandError(f"{path}, line 1, column {missing[0]!r}: the header has no such column (it has: {has})")
    position = {name: header.index(name) for name in CSV_COLUMNS}
    seen = {}
    for record in reader:
        if not any(field.strip() for field in record):
            continue
        line = reader.line_num
        if len(record) != len(header):
            raise CommandError(f"{path}, line {line}: expected {len(header)} fields, saw {len(record)}")
        for column, value in zip(header, record):
            if _UNDECODED.search(value):
                raise CommandError(f"{path}, line {line}, column {column!r}: not UTF-8 text; save the file as UTF-8")
        values = {name: record[position[name]].strip() for name in CSV_COLUMNS}

        def bad(column, reason):
            return CommandError(f"{path}, line {line}, column {column!r}: {values[column]!r} {reason}")

        for column, limit in (("product_id", None), ("title", _TITLE_LENGTH), ("category", _NAME_LENGTH)):
            if not values[column]:
                raise CommandError(f"{path}, line {line}, column {column!r}: a value is required")
            if limit and len(values[column]) > limit:
                raise bad(column, f"is longer than {limit} characters")
        if not values["product_id"].isdigit() or int(values["product_id"]) < 1:
            raise bad("product_id", "is not a whole number of at least 1")
        product_id = int(values["product_id"])
        if product_id in seen:
            raise bad("product_id", f"is the product of line {seen[product_id]} already")
        seen[product_id] = line
        try:
            price = Decimal(values["price"]).quantize(Decimal("0.01"))
        except InvalidOperation:
            raise bad("price", "is not a number") from None
        if not 0 <= price < _MAX_PRICE:
            raise bad("price", f"is not between 0 and {_MAX_PRICE}")
        department = record[header.index("department")].strip() if "department" in header else ""
        yield product_id, values["title"], values["category"], price, department


def product_slug(title, product_id):
    """The title's slug, ending in the product's id (unless it already does): unique."""
    slug = slugify(title)[:180]
    return slug if slug.endswith(f"-{product_id}") else f"{slug}-{product_id}".lstrip("-")


def load_products(rows, rng):
    """Creates the categories and products of `rows` (read_catalog's), each product keyed by its
    product_id. Returns (the categories, the number of products)."""
    colours = [colour for _, colour, _ in CATALOG]
    categories, taken = {}, set(Category.objects.values_list("slug", flat=True))
    for name in dict.fromkeys(row[2] for row in rows):
        category = Category.objects.filter(name=name).first()
        if category is None:
            slug = base = slugify(name)[:90] or "category"
            number = 1
            while slug in taken:
                number += 1
                slug = f"{base}-{number}"
            taken.add(slug)
            colour = colours[zlib.crc32(name.encode()) % len(colours)]
            category = Category.objects.create(name=name, slug=slug, colour=colour)
        categories[name] = category
    products = [
        Product(
            id=product_id,
            title=title,
            slug=product_slug(title, product_id),
            description=f"{title}. {department.capitalize()}: {category.capitalize()}." if department else title,
            category=categories[category],
            price=price,
            stock=stock(rng),
            active=True,
        )
        for product_id, title, category, price, department in rows
    ]
    Product.objects.bulk_create(products, batch_size=1000)
    # Keys given, not drawn: the next product added (in the admin) must not take one of them.
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Product]):
            cursor.execute(statement)
    return list(categories.values()), len(products)
