"""What the API reads (query parameters and bodies) and what it answers, field by field."""
import re

from django.utils.encoding import iri_to_uri
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from personalization.adapters import get_adapter
from personalization.models import EventKind
from personalization.models.placements import MAX_LIMIT
from personalization.serving import explanations

#: The kinds a storefront records through the API; cart changes and purchases come from the store itself.
API_EVENT_KINDS = (EventKind.VIEW, EventKind.IMPRESSION, EventKind.CLICK)
#: The most events one POST may carry (the impressions of a page's placements).
MAX_EVENTS_PER_REQUEST = 100


def missing_products(product_ids):
    """The ids among `product_ids` the store has no product for (one query through the adapter)."""
    wanted = {str(product_id) for product_id in product_ids}
    return sorted(wanted - set(get_adapter().products(wanted)))


class LimitQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        help_text=_("How many products at most (default: the placement's)."),
    )


class RecommendationsQuery(LimitQuery):
    placement = serializers.SlugField(max_length=64, help_text=_("The placement's slug, e.g. home-for-you."))
    product = serializers.CharField(
        required=False, max_length=64, help_text=_("The id of the product the page shows (bought together, similar).")
    )

    def validate_product(self, value):
        if missing_products([value]):
            raise serializers.ValidationError(_("There is no product %(id)s.") % {"id": value})
        return value


class AbsoluteURLs:
    """Makes this site's URLs absolute with the request's scheme and host (apps cannot follow a path);
    the host is read once, not once per URL."""

    def __init__(self, request):
        self.request = request
        self.site = request.build_absolute_uri("/")[:-1] if request is not None else None

    def __call__(self, url):
        if not url or self.request is None:
            return url
        url = str(url)
        if url.startswith("/") and not url.startswith("//") and "/./" not in url and "/../" not in url:
            return iri_to_uri(self.site + url)  # what build_absolute_uri answers for a path
        return self.request.build_absolute_uri(url)


class AbsoluteURLField(serializers.CharField):
    def to_representation(self, value):
        return AbsoluteURLs(self.context.get("request"))(value)


class RecommendedItemSerializer(serializers.Serializer):
    product_id = serializers.CharField(source="product.id")
    title = serializers.CharField(source="product.title")
    price = serializers.DecimalField(source="product.price", max_digits=None, decimal_places=2, allow_null=True)
    category = serializers.CharField(source="product.category")
    url = AbsoluteURLField(source="product.url", help_text=_("The product's page."))
    click_url = AbsoluteURLField(help_text=_("The product's page through a tracked link that records the click."))
    reason = serializers.ChoiceField(
        choices=explanations.CODES, help_text=_("Why it is recommended, as a stable code.")
    )
    explanation = serializers.CharField(help_text=_("Why it is recommended, as a sentence in the shopper's language."))


_PRICE = serializers.DecimalField(max_digits=None, decimal_places=2, allow_null=True)


class RecommendationsSerializer(serializers.Serializer):
    """The fields say what is answered (the schema); to_representation writes it in one pass, since
    serializing field by field cost more than ranking a cached placement. A test checks that both agree."""

    placement = serializers.CharField(source="placement.slug")
    recommendation_id = serializers.CharField(
        help_text=_("Marks what was shown: send it with the impression and click events of these items.")
    )
    heading = serializers.CharField()
    items = RecommendedItemSerializer(many=True)

    def to_representation(self, instance):
        absolute = AbsoluteURLs(self.context.get("request"))
        return {
            "placement": instance.placement.slug,
            "recommendation_id": instance.recommendation_id,
            "heading": str(instance.heading),
            "items": [
                {
                    "product_id": str(item.product.id),
                    "title": str(item.product.title),
                    "price": None if item.product.price is None else _PRICE.to_representation(item.product.price),
                    "category": str(item.product.category),
                    "url": absolute(item.product.url),
                    "click_url": absolute(item.click_url),
                    "reason": item.reason,
                    "explanation": str(item.explanation),
                }
                for item in instance.items
            ],
        }


class EventListSerializer(serializers.ListSerializer):
    def validate(self, attrs):
        missing = missing_products(event["product"] for event in attrs)
        if missing:
            raise serializers.ValidationError(
                {"product": [_("There is no product %(ids)s.") % {"ids": ", ".join(missing)}]}
            )
        return attrs


class EventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[(kind.value, kind.label) for kind in API_EVENT_KINDS],
        error_messages={
            "invalid_choice": _(
                '"{input}" cannot be recorded through the API: use view, impression or click '
                "(the store records cart changes and purchases itself)."
            )
        },
    )
    product = serializers.CharField(max_length=64, help_text=_("The product's id."))
    recommendation_id = serializers.RegexField(
        r"^[0-9A-Za-z_-]{1,64}$",
        required=False,
        help_text=_("For impressions and clicks: the recommendation_id of the recommendations shown."),
    )
    placement = serializers.SlugField(
        max_length=64, required=False, help_text=_("The placement the product was shown in.")
    )
    position = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, required=False, help_text=_("Its place in the placement, from 1.")
    )

    class Meta:
        list_serializer_class = EventListSerializer


class EventsRecordedSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    recorded = serializers.IntegerField(
        help_text=_("Fewer than received: repeated views, or a shopper who opted out of personalization.")
    )


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    campaign = serializers.CharField(source="campaign.name")
    discount_kind = serializers.CharField(source="campaign.discount_kind")
    discount_value = serializers.DecimalField(source="campaign.discount_value", max_digits=10, decimal_places=2)
    max_discount = serializers.DecimalField(
        source="campaign.max_discount", max_digits=10, decimal_places=2, allow_null=True
    )
    min_cart_total = serializers.DecimalField(source="campaign.min_cart_total", max_digits=10, decimal_places=2)
    categories = serializers.ListField(
        source="campaign.category_names", child=serializers.CharField(), help_text=_("Empty: any cart.")
    )
    expires_at = serializers.DateTimeField()


#: An amount of money as the API reads it: at most 10 digits, a point and 1 or 2 decimals.
AMOUNT_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": AMOUNT_PATTERN, "example": "45.00"})
class AmountField(serializers.DecimalField):
    """A sum of money written as the schema says, e.g. "45.00": a string, since a JSON number is a
    float and may not be the amount meant; never negative."""

    default_error_messages = {"not_an_amount": _('Write the amount as a string such as "45.00".')}

    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=2, min_value=0, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(AMOUNT_PATTERN, data):
            self.fail("not_an_amount")
        return super().to_internal_value(data)


class CouponValidationRequest(serializers.Serializer):
    code = serializers.CharField(max_length=64, trim_whitespace=True)
    cart_total = AmountField(
        required=False,
        help_text=_("What the cart is worth. Default: the shopper's cart in the store, at today's prices."),
    )


class DiscountSerializer(serializers.Serializer):
    code = serializers.CharField()
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text=_("What the coupon takes off this cart.")
    )
    cart_total = serializers.DecimalField(max_digits=12, decimal_places=2)
    campaign = serializers.CharField(source="campaign_name")
    discount_kind = serializers.CharField(source="kind")
    discount_value = serializers.DecimalField(source="value", max_digits=10, decimal_places=2)
    expires_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text=_("What was wrong, as a sentence."))
    code = serializers.CharField(help_text=_("A stable code for it."))
    errors = serializers.JSONField(
        required=False, help_text=_("Invalid input: the messages by field (for a list, by position in the list).")
    )


class PromotionQuery(serializers.Serializer):
    slot = serializers.SlugField(max_length=64, help_text=_("The slot's name, e.g. home-banner."))


class PromotionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="promotion.pk")
    recommendation_id = serializers.CharField(help_text=_("Marks this showing (its impression is already recorded)."))
    headline = serializers.CharField(source="promotion.headline")
    text = serializers.CharField(source="promotion.text")
    image_url = AbsoluteURLField(help_text=_("The promotion's picture; empty when it has none."))
    link_text = serializers.CharField(source="promotion.link_text", help_text=_('Empty: say "Shop now".'))
    click_url = AbsoluteURLField(help_text=_("Where it leads, through a tracked link that records the click."))


class PromotionAnswerSerializer(serializers.Serializer):
    slot = serializers.CharField()
    promotion = PromotionSerializer(
        allow_null=True, help_text=_("The promotion for this shopper, or null when the slot shows them nothing.")
    )
