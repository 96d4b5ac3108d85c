"""Synthetic shopping histories, for demos, tests, benchmarks and model evaluation without a store.

Pure numpy + pandas (no Django). Seeded with a numpy Generator: the same arguments give the same frame.

The shape of the data is what next-basket models learn from in real grocery logs:
- long-tail popularity: a few categories and, within each, a few products sell most;
- shoppers with their own tastes: a Dirichlet mix over categories and a personal set of
  favourite products, so about 2/3 of a next basket was bought by that shopper before
  (`repeat_share` measures it);
- complementary products bought together (pasta with sauce, bread with butter);
- baskets of 2 to 20 items, 3 to 50 orders per shopper, each shopper with their own rhythm
  (weekly, fortnightly, monthly) and time of day.
"""
import numpy as np
import pandas as pd

from personalization.operations.synthetic_draws import (
    MAX_BASKET,
    MIN_BASKET,
    complements,
    draw,
    fill_short,
    first_unique,
    in_category,
    order_times,
    prepare_catalog,
    product_ladder,
    row_ladder,
    zipf,
)

#: Columns of a history frame: the CSV format `personalization_import` reads.
HISTORY_COLUMNS = ["user_id", "order_id", "product_id", "order_number", "ordered_at", "quantity", "price", "category"]
#: Columns of a browsing frame (views and cart additions around the purchases).
BROWSING_COLUMNS = ["user_id", "product_id", "kind", "created_at", "quantity", "category"]

MIN_ORDERS, MAX_ORDERS = 3, 50

# Favourite products per shopper: at most this many slots, each shopper uses 6 to all of them.
_POOL_SLOTS = 32
# Each basket item comes from the shopper's favourites or, with a per-shopper chance drawn from
# Beta(mean * _EXPLORE_SPREAD, (1 - mean) * _EXPLORE_SPREAD), from their category tastes. The mean
# is calibrated per catalog so that repeat_share() comes out near `repeat_target`.
_EXPLORE_SPREAD = 8.0
# Shoppers simulated to calibrate the explore mean (a sample, not the whole population).
_CALIBRATION_SHOPPERS = 1500
# Chance that a product's complement joins it in the basket.
_COMPLEMENT_CHANCE = 0.55


def generate_histories(catalog, n_shoppers, seed=7, *, user_ids=None, end=None, repeat_target=2 / 3):
    """Purchase histories of `n_shoppers` over `catalog` (columns product_id, category, price).

    Returns a frame with HISTORY_COLUMNS, one row per order line, sorted by shopper and order.
    `user_ids` (default "1".."n") names the shoppers; `end` (default: today, midnight UTC) is the
    latest possible order time; order ids are "<user_id>-<order_number>". The same arguments give
    the same frame. How often shoppers try new products is calibrated on a sample so that
    `repeat_share()` is near `repeat_target` whatever the catalog's size; below about 200 products
    there is too little to try that is new, and the share comes out higher (0.86 with 60 products).
    """
    if n_shoppers <= 0:
        raise ValueError("n_shoppers must be positive")
    user_ids = np.array([str(i) for i in range(1, n_shoppers + 1)] if user_ids is None else [str(u) for u in user_ids])
    if len(user_ids) != n_shoppers:
        raise ValueError("user_ids must name exactly n_shoppers shoppers")
    products = prepare_catalog(catalog)
    if products.empty:
        raise ValueError("the catalog has no products")
    world_seed, calibration_seed, shoppers_seed = np.random.SeedSequence(seed).spawn(3)
    world = _World(products, np.random.default_rng(world_seed))
    explore_mean = _calibrate(world, repeat_target, calibration_seed)
    lines = _shop(world, n_shoppers, explore_mean, np.random.default_rng(shoppers_seed), end)
    shopper, order_number = lines["shopper"], lines["order_number"]
    frame = pd.DataFrame(
        {
            "user_id": user_ids[shopper],
            "order_id": np.char.add(np.char.add(user_ids[shopper], "-"), order_number.astype(str)),
            "product_id": products["product_id"].to_numpy()[lines["product"]],
            "order_number": order_number,
            "ordered_at": pd.to_datetime(lines["ordered_at"], utc=True),
            "quantity": lines["quantity"],
            "price": products["price"].to_numpy()[lines["product"]],
            "category": products["category"].to_numpy()[lines["product"]],
        }
    )
    return frame


class _World:
    """What all shoppers share: category and product popularity, and which products go together."""

    def __init__(self, products, rng):
        self.n_products = len(products)
        codes, names = pd.factorize(products["category"], sort=True)
        self.n_categories = len(names)
        self.category_weight = zipf(rng.permutation(self.n_categories), 1.0)
        self.product_ladder = product_ladder(codes, self.n_categories, rng)
        self.partner = complements(codes, names, self.product_ladder, rng)

    def sample(self, taste_ladder, shoppers, rng):
        """A product per entry of `shoppers`: a category from their tastes, then by popularity in it."""
        return in_category(self.product_ladder, draw(taste_ladder, shoppers, rng), rng)


def _calibrate(world, target, seed):
    """The mean explore chance giving `target` repeat share: secant steps on a simulated sample."""

    def share(mean):
        lines = _shop(world, _CALIBRATION_SHOPPERS, mean, np.random.default_rng(seed), None, with_times=False)
        return _repeat_share(lines["shopper"], lines["order_number"], lines["product"])

    low, high = 0.15, 0.6
    share_low, share_high = share(low), share(high)
    for _ in range(2):
        if share_low == share_high:
            break
        guess = float(np.clip(low + (target - share_low) * (high - low) / (share_high - share_low), 0.02, 0.95))
        share_guess = share(guess)
        # Keep the two points nearest the target.
        if abs(share_low - target) > abs(share_high - target):
            low, share_low = guess, share_guess
        else:
            high, share_high = guess, share_guess
    return low if abs(share_low - target) <= abs(share_high - target) else high


def _shop(world, n_shoppers, explore_mean, rng, end, with_times=True):
    """Simulates shoppers; returns arrays of order lines (shopper, order_number, product, ...)."""
    # Shoppers: tastes over categories, favourites, basket size, number of orders.
    tastes = rng.gamma(1.2 * world.n_categories * world.category_weight, size=(n_shoppers, world.n_categories))
    taste_ladder = row_ladder(tastes + 1e-12)
    favourites = world.sample(taste_ladder, np.repeat(np.arange(n_shoppers), _POOL_SLOTS), rng)
    favourites = favourites.reshape(n_shoppers, _POOL_SLOTS)
    pool_size = rng.integers(6, _POOL_SLOTS + 1, size=n_shoppers)
    slant = rng.uniform(0.5, 1.1, size=n_shoppers)
    slots = np.arange(_POOL_SLOTS)[None, :]
    pool_ladder = row_ladder((slots + 1.0) ** -slant[:, None] * (slots < pool_size[:, None]))
    explore = rng.beta(explore_mean * _EXPLORE_SPREAD, (1 - explore_mean) * _EXPLORE_SPREAD, size=n_shoppers)
    mean_basket = np.clip(rng.lognormal(np.log(8.0), 0.35, size=n_shoppers), 3, 16)
    extra_quantity = rng.uniform(0.05, 0.45, size=n_shoppers)
    n_orders = np.clip(np.rint(rng.lognormal(np.log(11.0), 0.65, n_shoppers)), MIN_ORDERS, MAX_ORDERS).astype(int)

    # Orders, grouped by shopper in sequence.
    order_shopper = np.repeat(np.arange(n_shoppers), n_orders)
    order_number = np.arange(len(order_shopper)) - np.repeat(np.cumsum(n_orders) - n_orders, n_orders) + 1
    basket_size = np.minimum(np.clip(rng.poisson(mean_basket[order_shopper]), MIN_BASKET, MAX_BASKET), world.n_products)

    def pick(orders):
        """A candidate product for each entry of `orders`: a favourite, or something to try."""
        shopper = order_shopper[orders]
        trying = rng.random(len(orders)) < explore[shopper]
        product = np.empty(len(orders), dtype=np.int64)
        product[~trying] = favourites[shopper[~trying], draw(pool_ladder, shopper[~trying], rng)]
        product[trying] = world.sample(taste_ladder, shopper[trying], rng)
        return product

    # More candidates than needed, so that dropping repeats within a basket still fills it.
    line_order = np.repeat(np.arange(len(order_shopper)), basket_size + basket_size // 2 + 3)
    line_order, line_product = first_unique(line_order, pick(line_order), basket_size)
    line_order, line_product = fill_short(line_order, line_product, basket_size, world.n_products, rng)

    # Complements join their anchor's basket, which stays within MAX_BASKET.
    joins = (world.partner[line_product] >= 0) & (rng.random(len(line_product)) < _COMPLEMENT_CHANCE)
    line_order = np.concatenate([line_order, line_order[joins]])
    line_product = np.concatenate([line_product, world.partner[line_product[joins]]])
    keep = np.argsort(line_order, kind="stable")
    cap = np.full(len(order_shopper), MAX_BASKET)
    line_order, line_product = first_unique(line_order[keep], line_product[keep], cap)

    lines = {
        "shopper": order_shopper[line_order],
        "order_number": order_number[line_order],
        "product": line_product,
    }
    if with_times:
        lines["ordered_at"] = order_times(order_shopper, n_orders, rng, end)[line_order]
        lines["quantity"] = 1 + np.minimum(rng.poisson(extra_quantity[lines["shopper"]]), 5)
    return lines


def repeat_share(frame):
    """For each shopper's last basket, the share of its products that shopper bought before; averaged.

    Shoppers with a single order are left out. Returns NaN when no shopper has two orders.
    """
    return _repeat_share(frame["user_id"], frame["order_number"], frame["product_id"])


def _repeat_share(user_id, order_number, product_id):
    lines = pd.DataFrame({"user_id": user_id, "order_number": order_number, "product_id": product_id})
    lines = lines.drop_duplicates()
    first_bought = lines.groupby(["user_id", "product_id"], sort=False)["order_number"].transform("min")
    last_order = lines.groupby("user_id", sort=False)["order_number"].transform("max")
    first_order = lines.groupby("user_id", sort=False)["order_number"].transform("min")
    last = (lines["order_number"] == last_order) & (last_order > first_order)
    bought_before = (first_bought < lines["order_number"])[last]
    if bought_before.empty:
        return float("nan")
    return float(bought_before.groupby(lines.loc[last, "user_id"]).mean().mean())


def browsing_events(history, catalog, seed=7):
    """Views and cart additions around the purchases in `history`, so an event log looks lived in.

    Every purchased line was added to the cart minutes before the order; products bought for the
    first time were usually viewed first, re-bought favourites rarely; each order also has a few
    products viewed but not bought, from the categories in its basket. Returns BROWSING_COLUMNS.
    """
    rng = np.random.default_rng(seed)
    if history.empty:
        return pd.DataFrame(columns=BROWSING_COLUMNS)
    products = prepare_catalog(catalog)
    placed = pd.to_datetime(history["ordered_at"], utc=True).dt.tz_localize(None).to_numpy()
    minute = np.timedelta64(60, "s")

    cart_at = placed - (rng.uniform(2, 40, len(history)) * 60).astype("timedelta64[s]")
    carts = pd.DataFrame(
        {
            "user_id": history["user_id"].to_numpy(),
            "product_id": history["product_id"].to_numpy(),
            "kind": "cart_add",
            "created_at": cart_at,
            "quantity": history["quantity"].to_numpy(),
            "category": history["category"].to_numpy(),
        }
    )
    first_bought = history.groupby(["user_id", "product_id"], sort=False)["order_number"].transform("min")
    first_time = (first_bought == history["order_number"]).to_numpy()
    viewed = rng.random(len(history)) < np.where(first_time, 0.7, 0.1)
    viewed_at = cart_at[viewed] - rng.integers(1, 10, viewed.sum()) * minute
    views = carts[viewed].assign(kind="view", quantity=1, created_at=viewed_at)

    # Viewed, not bought: a few products from the category of a random line of each order.
    order_codes, _ = pd.factorize(history["order_id"])
    rows_by_order = np.argsort(order_codes, kind="stable")
    lines_per_order = np.bincount(order_codes)
    first_line = np.cumsum(lines_per_order) - lines_per_order
    anchor = rows_by_order[first_line + (rng.random(len(lines_per_order)) * lines_per_order).astype(np.int64)]
    anchor = np.repeat(anchor, rng.poisson(2.0, len(anchor)))
    by_category = products.sort_values("category", kind="stable")
    category_names, category_start, category_size = np.unique(
        by_category["category"].to_numpy(), return_index=True, return_counts=True
    )
    anchor_category = history["category"].to_numpy()[anchor]
    code = np.minimum(np.searchsorted(category_names, anchor_category), len(category_names) - 1)
    known = category_names[code] == anchor_category  # categories the catalog no longer has are passed over
    anchor, code = anchor[known], code[known]
    pick = category_start[code] + rng.integers(0, 1 << 30, len(code)) % category_size[code]
    others = pd.DataFrame(
        {
            "user_id": history["user_id"].to_numpy()[anchor],
            "product_id": by_category["product_id"].to_numpy()[pick],
            "kind": "view",
            "created_at": placed[anchor] - (rng.uniform(5, 90, len(anchor)) * 60).astype("timedelta64[s]"),
            "quantity": 1,
            "category": history["category"].to_numpy()[anchor],
        }
    )
    frame = pd.concat([views, carts, others], ignore_index=True)
    frame["created_at"] = pd.to_datetime(frame["created_at"]).dt.tz_localize("UTC")
    return frame.sort_values(["user_id", "created_at"], kind="stable", ignore_index=True)[BROWSING_COLUMNS]


# Grocery vocabulary for generate_catalog: category -> (items, sizes, (low, high) price of a base size).
_VOCABULARY = {
    "Fruit": (["Fuji Apples", "Bananas", "Conference Pears", "Seedless Grapes", "Blueberries", "Strawberries",
               "Lemons", "Oranges", "Mangoes", "Kiwis", "Raspberries", "Clementines"],
              ["", "500g", "1kg", "Pack of 6"], (1.2, 4.5)),
    "Vegetables": (["Carrots", "Broccoli", "Baby Spinach", "Cherry Tomatoes", "Red Onions", "Potatoes",
                    "Courgettes", "Cucumber", "Bell Peppers", "Mushrooms", "Sweet Potatoes", "Leeks"],
                   ["", "250g", "500g", "1kg"], (0.8, 3.5)),
    "Dairy": (["Whole Milk", "Semi-Skimmed Milk", "Oat Milk", "Double Cream", "Salted Butter", "Greek Yoghurt",
               "Natural Yoghurt", "Mature Cheddar", "Parmesan", "Mozzarella", "Free-Range Eggs"],
              ["", "Small", "Large", "Family Size"], (0.9, 5.5)),
    "Bakery": (["Sourdough Loaf", "Wholemeal Bread", "Croissants", "Bagels", "Pitta Breads", "Brioche Buns",
                "Seeded Rolls", "Crumpets", "Tortilla Wraps"], ["", "4 pack", "6 pack", "Family Pack"], (0.9, 3.5)),
    "Pasta & Rice": (["Spaghetti", "Penne", "Fusilli", "Basmati Rice", "Arborio Rice", "Egg Noodles",
                      "Lasagne Sheets", "Couscous", "Jasmine Rice"], ["500g", "1kg", "2kg"], (0.7, 3.0)),
    "Sauces": (["Tomato & Basil Sauce", "Green Pesto", "Arrabbiata Sauce", "Tomato Ketchup", "Mayonnaise",
                "Soy Sauce", "Sweet Chilli Sauce", "Bolognese Sauce", "Curry Paste"], ["190g", "350g", "500g"],
               (0.9, 3.5)),
    "Meat": (["Chicken Breasts", "Beef Mince", "Pork Sausages", "Smoked Bacon", "Lamb Chops", "Turkey Slices",
              "Chicken Thighs"], ["300g", "500g", "1kg"], (2.5, 9.0)),
    "Fish": (["Salmon Fillets", "Cod Loins", "Tuna Steaks", "King Prawns", "Smoked Mackerel"],
             ["2 pack", "250g", "400g"], (2.5, 8.5)),
    "Snacks": (["Sea Salt Crisps", "Tortilla Chips", "Salted Peanuts", "Dark Chocolate", "Oat Cookies",
                "Popcorn", "Rice Cakes", "Trail Mix"], ["100g", "150g", "Sharing Bag", "Multipack"], (0.8, 3.5)),
    "Drinks": (["Sparkling Water", "Orange Juice", "Apple Juice", "Cola", "Lemonade", "Ginger Beer",
                "Still Water", "Cloudy Apple Juice"], ["1L", "2L", "6 x 330ml", "12 x 330ml"], (0.6, 3.5)),
    "Coffee & Tea": (["Ground Coffee", "Coffee Beans", "English Breakfast Tea", "Green Tea", "Instant Coffee",
                      "Chamomile Tea", "Earl Grey Tea"], ["", "40 bags", "80 bags", "227g"], (1.5, 7.0)),
    "Breakfast": (["Porridge Oats", "Granola", "Cornflakes", "Muesli", "Strawberry Jam", "Peanut Butter",
                   "Runny Honey", "Chocolate Spread"], ["340g", "500g", "750g", "1kg"], (1.0, 4.5)),
    "Frozen": (["Garden Peas", "Margherita Pizza", "Fish Fingers", "Oven Chips", "Mixed Berries",
                "Vegetable Gyoza", "Sweetcorn"], ["", "500g", "1kg", "Family Pack"], (1.0, 4.5)),
    "Desserts": (["Vanilla Ice Cream", "Chocolate Mousse", "Cheesecake", "Rice Pudding", "Apple Pie"],
                 ["", "4 pack", "500ml", "1L"], (1.2, 4.5)),
    "Household": (["Washing-Up Liquid", "Kitchen Roll", "Toilet Tissue", "Laundry Liquid", "Bin Bags",
                   "Dishwasher Tablets", "Sponges"], ["", "Twin Pack", "Value Pack", "Large"], (1.0, 8.0)),
    "Personal Care": (["Shampoo", "Conditioner", "Toothpaste", "Shower Gel", "Hand Soap", "Deodorant"],
                      ["", "250ml", "400ml", "Travel Size"], (1.0, 5.0)),
    "Baby": (["Nappies", "Baby Wipes", "Fruit Purée Pouches", "Baby Rice"], ["", "Size 3", "Size 4", "Multipack"],
             (1.0, 9.0)),
    "Pantry": (["Chopped Tomatoes", "Chickpeas", "Kidney Beans", "Olive Oil", "Plain Flour", "Caster Sugar",
                "Vegetable Stock Cubes", "Baked Beans"], ["", "400g", "1kg", "4 pack"], (0.5, 5.0)),
}
_QUALIFIERS = ["", "", "", "", "Organic", "Free From", "Value", "Finest", "British", "Reduced Fat", "Italian",
               "Fairtrade", "Classic", "Everyday", "Family"]


def generate_catalog(n_products=400, seed=7):
    """A grocery catalog without a store: product_id ("p00001"...), category, price, product_name."""
    rng = np.random.default_rng(seed)
    names = list(_VOCABULARY)
    # Some categories have more products than others (long-tailed, milder than sales).
    category = rng.choice(len(names), size=n_products, p=zipf(rng.permutation(len(names)), 0.6))
    item_pick, size_pick = rng.integers(0, 1 << 30, size=(2, n_products))
    qualifier = rng.integers(0, len(_QUALIFIERS), size=n_products)
    spread = rng.random(n_products)
    product_names, prices = [], []
    for i in range(n_products):
        items, sizes, (low, high) = _VOCABULARY[names[category[i]]]
        size_index = size_pick[i] % len(sizes)
        parts = (_QUALIFIERS[qualifier[i]], items[item_pick[i] % len(items)], sizes[size_index])
        product_names.append(" ".join(part for part in parts if part))
        price = (low + (high - low) * spread[i]) * (1 + 0.45 * size_index)
        prices.append(float(np.floor(price) + (0.49 if price % 1 < 0.5 else 0.99)))
    return pd.DataFrame(
        {
            "product_id": [f"p{i:05d}" for i in range(1, n_products + 1)],
            "category": [names[c] for c in category],
            "price": prices,
            "product_name": product_names,
        }
    )
