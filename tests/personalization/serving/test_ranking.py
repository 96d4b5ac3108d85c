"""Recommendations from real models trained on a tiny store: rules on live data, cold start, reasons, fallbacks."""
import re
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone

from personalization import registry
from personalization.capture import events
from personalization.capture.events import Shopper
from personalization.learning.frames import purchase_frame
from personalization.ml import checkpoint
from personalization.ml.baselines import PersonalFrequency, TifuKnn
from personalization.ml.sequences import SPECIAL_ITEMS, Vocabulary, build_sequences
from personalization.ml.train import TrainConfig, train_autoencoder
from personalization.models import Event, EventKind, ModelKind, Placement
from personalization.models.placements import MAX_LIMIT
from personalization.serving import explanations, ranking
from tests.factories import ProductFactory
from tests.personalization.stores import build_store, purchase, train_and_activate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

Strategy = Placement.Strategy


@pytest.fixture
def store():
    return build_store()


@pytest.fixture
def trained(store):
    train_and_activate()
    return store


def placement(strategy, **fields):
    fields.setdefault("limit", 4)
    return Placement.objects.create(slug=f"test-{strategy}", name=strategy, strategy=strategy, **fields)


def shopper(user):
    return Shopper(user_id=user.pk)


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Records events through the events write path, as the store's receivers do."""

    def record(kind, product, **shopper):
        with django_capture_on_commit_callbacks(execute=True):
            assert events.record(kind, product.pk, **shopper)

    return record


def test_for_you_recommends_products_of_the_shoppers_taste_they_have_not_bought(trained):
    dairy = trained.shoppers["dairy"][0]
    bought = set(Event.objects.filter(user_id=str(dairy.pk)).values_list("product_id", flat=True))

    found = ranking.recommend(placement(Strategy.FOR_YOU), shopper(dairy))

    assert len(found) == 4
    assert not bought & set(found.product_ids)
    assert {item.strategy for item in found} == {Strategy.FOR_YOU}
    assert len(found.recommendation_id) == 32


def test_shoppers_of_different_tastes_see_different_items_with_reasons(trained):
    unit = placement(Strategy.NEXT_BASKET)

    dairy = ranking.recommend(unit, shopper(trained.shoppers["dairy"][1]))
    bakery = ranking.recommend(unit, shopper(trained.shoppers["bakery"][1]))

    assert set(dairy.product_ids[:2]) == set(trained.ids("Milk", "Butter"))
    assert set(bakery.product_ids[:2]) == set(trained.ids("Bread", "Croissant"))
    assert all(item.explanation for item in [*dairy, *bakery])


def test_buy_again_explains_how_often_the_shopper_bought_each_product(trained):
    dairy = trained.shoppers["dairy"][2]

    found = ranking.recommend(placement(Strategy.BUY_AGAIN), shopper(dairy))

    milk = next(item for item in found if item.product.title == "Milk")
    assert milk.reason == explanations.REPEAT
    assert milk.explanation == "You have bought this 5 times"
    assert all(item.reason == explanations.REPEAT for item in found)


def test_discoveries_are_explained_only_by_a_related_product_the_shopper_buys(trained):
    dairy = trained.shoppers["dairy"][3]  # has bought every dairy product: the discoveries are bakery and fruit
    bought = {trained.title_of(p) for p in Event.objects.filter(user_id=str(dairy.pk)).values_list("product_id", flat=True)}

    found = ranking.recommend(placement(Strategy.FOR_YOU, limit=8), shopper(dairy))

    assert len(found) == 8
    for item in found:
        assert item.reason in (explanations.BECAUSE_OFTEN_BOUGHT, explanations.BECAUSE_BOUGHT, explanations.FOR_YOU)
        named = item.explanation.removeprefix("Because you often buy ").removeprefix("Because you bought ")
        if item.reason != explanations.FOR_YOU:  # only a product of the same shelf: no dairy goes with bread
            assert named in bought and trained.product(named).category.name == item.product.category
    assert {item.explanation for item in found if item.product.category == "Bakery"} == {"Picked for you"}
    assert_anchors_spread(found)


def test_a_discovery_is_explained_by_the_shoppers_favourite_from_the_same_shelf(trained, django_user_model):
    fan = django_user_model.objects.create_user("milk-fan")
    Event.objects.bulk_create(
        [purchase(fan, trained.product("Milk"), f"fan-{n}", timezone.now()) for n in range(3)]
        + [purchase(fan, trained.product("Apples"), "fan-0", timezone.now())]
    )

    found = ranking.recommend(placement(Strategy.FOR_YOU, limit=20), shopper(fan))

    by_shelf = {item.product.category: set() for item in found}
    for item in found:
        by_shelf[item.product.category].add(item.explanation)
    assert "Because you often buy Milk" in by_shelf["Dairy"] <= {"Because you often buy Milk", "Picked for you"}
    assert "Because you bought Apples" in by_shelf["Fruit"] <= {"Because you bought Apples", "Picked for you"}
    assert by_shelf["Bakery"] == {"Picked for you"}
    assert_anchors_spread(found)


def assert_anchors_spread(found):
    """No product is named by more than half of the first n items, for any n (one may always be)."""
    named = [item.explanation for item in found if item.explanation.startswith(("Because you", "Goes with"))]
    shown = [item.explanation for item in found]
    for n in range(1, len(shown) + 1):
        first = [text for text in shown[:n] if text in named]
        assert max([first.count(text) for text in first], default=0) <= max(1, n // 2), shown


def test_an_out_of_stock_or_inactive_product_never_appears_even_from_the_cache(trained):
    dairy = shopper(trained.shoppers["dairy"][0])
    unit = placement(Strategy.NEXT_BASKET)
    first = ranking.recommend(unit, dairy)
    sold_out, withdrawn = (trained.products[first.items[i].product.title] for i in (0, 1))
    sold_out.stock = 0
    sold_out.save()
    withdrawn.active = False
    withdrawn.save()

    again = ranking.recommend(unit, dairy)

    assert str(sold_out.pk) not in again.product_ids
    assert str(withdrawn.pk) not in again.product_ids
    assert len(again) == 4


def test_products_in_the_cart_leave_the_cart_completion(trained):
    dairy = shopper(trained.shoppers["dairy"][0])
    cart = trained.ids("Milk")
    first = ranking.cart_predictions(dairy, ranking.Ask(cart_product_ids=cart))
    added = first.product_ids[0]

    again = ranking.cart_predictions(dairy, ranking.Ask(cart_product_ids=cart + [added]))

    assert added not in again.product_ids
    assert not set(cart) & set(again.product_ids)


def test_an_anonymous_shopper_with_a_cart_gets_predictions_from_it(trained, record):
    record(EventKind.CART_ADD, trained.product("Bread"), session_key="anon-with-cart")
    record(EventKind.VIEW, trained.product("Bagel"), session_key="anon-with-cart")

    found = ranking.cart_predictions(Shopper(session_key="anon-with-cart"))

    assert found.items[0].strategy == Strategy.CART_COMPLETION
    assert str(trained.product("Bread").pk) not in found.product_ids
    reasons = {item.reason for item in found}
    assert reasons <= {explanations.WITH_CART, explanations.VIEWED, explanations.BECAUSE_VIEWED, explanations.FOR_YOU}
    anchored = [item for item in found if item.reason in (explanations.WITH_CART, explanations.BECAUSE_VIEWED)]
    assert {item.explanation for item in anchored} <= {"Goes with Bread in your cart", "Because you looked at Bagel"}
    assert all(item.product.category == "Bakery" for item in anchored)  # what goes with bread and bagels here
    assert_anchors_spread(found)


def test_a_shopper_with_nothing_at_all_gets_trending_then_popular_products(trained, record):
    record(EventKind.CART_ADD, trained.product("Plums"), user_id=trained.shoppers["bakery"][0].pk)

    found = ranking.recommend(placement(Strategy.FOR_YOU, fallback_strategy=Strategy.TRENDING), Shopper(session_key="new-visitor"))

    assert found.items[0].product.title == "Plums"
    assert found.items[0].explanation == "Trending this week"
    assert found.heading == "Trending this week"
    assert {item.strategy for item in found.items[1:]} == {Strategy.POPULAR}
    assert found.items[1].explanation.startswith("Popular in ")


def test_bought_together_names_the_pages_product(trained):
    milk = trained.product("Milk")

    found = ranking.recommend(placement(Strategy.BOUGHT_TOGETHER, page=Placement.Page.PRODUCT), Shopper(), product_id=milk.pk)

    assert str(milk.pk) not in found.product_ids
    assert found.items[0].product.title == "Butter"  # in every order with milk
    assert found.items[0].explanation == "Often bought with Milk"


def test_similar_products_come_from_the_learned_item_vectors(trained):
    found = ranking.recommend(placement(Strategy.SIMILAR, page=Placement.Page.PRODUCT), Shopper(), product_id=trained.product("Cheese").pk)

    assert {item.strategy for item in found} == {Strategy.SIMILAR}
    assert all(item.explanation == "Similar to Cheese" for item in found)
    assert {item.product.category for item in found} == {"Dairy"}  # the same shelf first


def test_an_inactive_product_is_never_named_in_an_explanation(trained):
    cheese = trained.product("Cheese")
    cheese.active = False
    cheese.save()

    found = ranking.recommend(placement(Strategy.SIMILAR, page=Placement.Page.PRODUCT), Shopper(), product_id=cheese.pk)

    assert found.items and not [item.explanation for item in found.items if "Cheese" in item.explanation]


def test_the_placements_category_and_price_rules_apply(trained):
    gold = ProductFactory(title="Gold cheese", category=trained.product("Cheese").category, price="90.00")
    Event.objects.create(kind=EventKind.PURCHASE, user_id="someone", product_id=str(gold.pk), order_id="gold-1")
    unit = placement(Strategy.POPULAR, include_categories="dairy, Fruit", exclude_categories="", max_price=Decimal("10"), limit=20)

    found = ranking.recommend(unit, Shopper())

    assert found
    assert {item.product.category for item in found} <= {"Dairy", "Fruit"}
    assert all(item.product.price <= 10 for item in found)


def test_bought_products_are_left_out_unless_the_strategy_is_about_repeats(trained):
    dairy = trained.shoppers["dairy"][0]
    bought = set(Event.objects.filter(user_id=str(dairy.pk)).values_list("product_id", flat=True))

    popular = ranking.recommend(placement(Strategy.POPULAR, limit=20), shopper(dairy))
    again = ranking.recommend(placement(Strategy.BUY_AGAIN, limit=20), shopper(dairy))

    assert popular and not bought & set(popular.product_ids)
    assert {item.product.id for item in again if item.strategy == Strategy.BUY_AGAIN} == bought


def test_without_a_trained_model_the_placement_serves_popular_products(store):
    found = ranking.recommend(placement(Strategy.FOR_YOU, fallback_strategy=Strategy.BUY_AGAIN), shopper(store.shoppers["dairy"][0]))

    assert found and {item.strategy for item in found} == {Strategy.POPULAR}


def test_a_corrupt_model_artifact_falls_back_to_popular_products(store, caplog):
    registry.activate(registry.publish(ModelKind.AUTOENCODER, b"not a checkpoint"))

    found = ranking.recommend(placement(Strategy.FOR_YOU), shopper(store.shoppers["dairy"][0]))

    assert found and {item.strategy for item in found} == {Strategy.POPULAR}
    assert "Cannot load shopper autoencoder v1" in caplog.text


def test_a_model_of_the_wrong_kind_is_not_used(store, caplog):
    # A next-basket artifact published as the autoencoder: it loads, but is not an autoencoder.
    train_and_activate(kinds=[ModelKind.NEXT_BASKET], epochs=1)
    wrong = registry.active(ModelKind.NEXT_BASKET).artifact.read()
    registry.activate(registry.publish(ModelKind.AUTOENCODER, wrong))

    found = ranking.recommend(placement(Strategy.FOR_YOU), shopper(store.shoppers["dairy"][0]))

    assert found and {item.strategy for item in found} == {Strategy.POPULAR}
    assert "the active autoencoder version holds a next_basket_cnn, which cannot serve it" in caplog.text


def test_a_model_that_fails_to_score_is_logged_and_popular_products_are_served(store, caplog):
    # Weights for the store's 16 products saved with a vocabulary that puts them past the model's end.
    sequences = build_sequences(purchase_frame())
    model = train_autoencoder(sequences, train_config=TrainConfig(epochs=1, patience=None, device="cpu")).model
    shifted = Vocabulary(SPECIAL_ITEMS + tuple(f"gone-{n}" for n in range(50)) + sequences.vocabulary.items[2:])
    registry.activate(registry.publish(ModelKind.AUTOENCODER, checkpoint.save(model, vocabulary=shifted)))

    found = ranking.recommend(placement(Strategy.FOR_YOU), shopper(store.shoppers["dairy"][0]))

    assert found and {item.strategy for item in found} == {Strategy.POPULAR}
    assert "Strategy for_you of placement 'test-for_you' failed; falling back" in caplog.text


def test_an_inactive_placement_shows_nothing(trained):
    assert not ranking.recommend(placement(Strategy.POPULAR, active=False), Shopper())


def test_recommending_by_slug_raises_for_an_unknown_slug():
    with pytest.raises(Placement.DoesNotExist):
        ranking.recommend("no-such-placement", Shopper())


def test_placements_of_one_page_do_not_repeat_each_others_products(trained, rf):
    request = rf.get("/")
    request.user = trained.shoppers["dairy"][0]
    placement(Strategy.POPULAR, limit=5)
    Placement.objects.create(slug="more-popular", name="more", strategy=Strategy.TRENDING, limit=5)
    page = Template("{% load personalization %}{% recommendations 'test-popular' %}{% recommendations 'more-popular' %}")

    html = page.render(Context({"request": request}))

    first, second = (re.findall(r'data-product-id="(\d+)"', part) for part in html.split("</section>")[:2])
    assert len(first) == 5 and second
    assert not set(first) & set(second)


def test_an_ask_is_made_valid_once_whatever_a_template_or_caller_passes():
    assert ranking.Ask(product_id=7, cart_product_ids=[1, "2"], limit="3") == ranking.Ask("7", ("1", "2"), 3)
    assert ranking.Ask(product_id="", limit="many").product_id is None
    assert ranking.Ask(limit="many").limit is None  # the placement's
    assert (ranking.Ask(limit=0).limit, ranking.Ask(limit=10**6).limit) == (1, MAX_LIMIT)


def test_recommendations_become_plain_data_for_an_api(trained):
    found = ranking.recommend(placement(Strategy.POPULAR), Shopper())

    data = found.as_dict()

    assert data["placement"] == "test-popular"
    assert data["recommendation_id"] == found.recommendation_id
    assert data["items"][0]["product"]["title"] == found.items[0].product.title
    assert data["items"][0]["explanation"] and data["items"][0]["click_url"].startswith("/personalization/r/")


def test_without_the_plugins_urls_items_link_to_product_pages_and_with_them_through_clicks(trained, settings):
    settings.ROOT_URLCONF = "tests.personalization.urls_without_clicks"
    direct = ranking.recommend(placement(Strategy.POPULAR), Shopper())
    settings.ROOT_URLCONF = "shop.urls"
    tracked = ranking.recommend(Placement.objects.get(slug="test-popular"), Shopper())

    assert direct and [item.click_url for item in direct] == [item.product.url for item in direct]
    assert tracked and all(item.click_url.startswith("/personalization/r/") for item in tracked)


# A baseline serves the next basket -------------------------------------------------------------------


def serve_baseline(baseline, with_autoencoder=True):
    """Fits `baseline` on the store's purchases and makes it the active next-basket version (as a
    training run does when it wins); the autoencoder, whose item vectors explain, too."""
    sequences = build_sequences(purchase_frame())
    artifact = checkpoint.save(baseline.fit(sequences), vocabulary=sequences.vocabulary)
    registry.activate(registry.publish(ModelKind.NEXT_BASKET, artifact, algorithm=baseline.name))
    if with_autoencoder:
        train_and_activate(kinds=[ModelKind.AUTOENCODER])


#: Until ml/baselines.py keeps TIFU-KNN's fitted shopper vectors in TifuKnn.state(), a TIFU-KNN
#: checkpoint cannot score (training then publishes the next best algorithm).


@pytest.mark.parametrize(
    "baseline", [PersonalFrequency, TifuKnn], ids=lambda b: b.name
)
def test_a_baseline_serves_the_next_basket_and_buy_again_with_reasons(store, baseline):
    serve_baseline(baseline())
    dairy = shopper(store.shoppers["dairy"][1])

    next_basket = ranking.recommend(placement(Strategy.NEXT_BASKET), dairy)
    again = ranking.recommend(placement(Strategy.BUY_AGAIN), dairy)

    assert {item.strategy for item in next_basket} == {Strategy.NEXT_BASKET}
    assert set(next_basket.product_ids[:2]) == set(store.ids("Milk", "Butter"))
    assert next_basket.items[0].explanation == "You have bought this 5 times"
    assert all(item.explanation for item in next_basket)
    assert {item.strategy for item in again} == {Strategy.BUY_AGAIN}
    assert all(item.reason == explanations.REPEAT for item in again)


@pytest.mark.parametrize(
    "baseline", [PersonalFrequency, TifuKnn], ids=lambda b: b.name
)
def test_a_baseline_completes_an_anonymous_cart_with_reasons(store, record, baseline):
    serve_baseline(baseline(neighbours=5) if baseline is TifuKnn else baseline())
    record(EventKind.CART_ADD, store.product("Bread"), session_key="anon-with-bread")

    found = ranking.cart_predictions(Shopper(session_key="anon-with-bread"))

    assert found.items and {item.strategy for item in found} == {Strategy.CART_COMPLETION}
    assert str(store.product("Bread").pk) not in found.product_ids
    explained = [item for item in found if item.explanation == "Goes with Bread in your cart"]
    assert len(explained) == len(found) // 2  # half the row names the one product in the cart, no more
    assert {item.reason for item in found if item not in explained} == {explanations.FOR_YOU}
    if baseline is TifuKnn:  # its neighbours are the bakery shoppers, whose every order held Croissant
        assert found.items[0].product.title == "Croissant"


def test_without_item_vectors_a_baselines_discoveries_are_explained_by_what_is_bought_together(store, django_user_model):
    serve_baseline(PersonalFrequency(), with_autoencoder=False)
    newcomer = django_user_model.objects.create_user("one-order")
    Event.objects.bulk_create([purchase(newcomer, store.product("Milk"), "one-0", timezone.now())])

    found = ranking.recommend(placement(Strategy.NEXT_BASKET), shopper(newcomer))

    assert found.items[0].product.title == "Milk" and found.items[0].explanation == "You bought this before"
    named = [item for item in found.items[1:] if item.explanation == "Because you bought Milk"]
    assert 1 <= len(named) <= 2  # of the 4 items, half may name Milk
    assert all(item.product.category == "Dairy" for item in named)  # bought with milk, never bakery
    assert {item.explanation for item in found.items[1:] if item not in named} == {"Picked for you"}


def test_similar_products_fall_back_to_the_autoencoders_item_vectors(store):
    serve_baseline(PersonalFrequency())

    found = ranking.recommend(placement(Strategy.SIMILAR, page=Placement.Page.PRODUCT), Shopper(), product_id=store.product("Cheese").pk)

    assert found and {item.strategy for item in found} == {Strategy.SIMILAR}
    assert all(item.explanation == "Similar to Cheese" for item in found)
    assert {item.product.category for item in found} == {"Dairy"}


def test_similar_products_without_item_vectors_come_from_the_shelf_and_co_purchases(store):
    serve_baseline(PersonalFrequency(), with_autoencoder=False)

    found = ranking.recommend(placement(Strategy.SIMILAR, page=Placement.Page.PRODUCT), Shopper(), product_id=store.product("Cheese").pk)

    assert {item.strategy for item in found} == {Strategy.SIMILAR} and len(found) == 4
    assert {item.product.category for item in found} == {"Dairy"}
    assert found.items[0].product.title in ("Milk", "Butter")  # in every dairy basket with cheese
