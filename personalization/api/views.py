"""The API's views. Each answers for the shopper of the request and names its permission and throttles.

Reads never create a session: an anonymous shopper without one is served as a new shopper.
Recording events does, and sends its cookie, so that what they do next is theirs.
"""
import functools
import logging
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization import coupons, state
from personalization.adapters import get_adapter
from personalization.api import exceptions, serializers
from personalization.api.permissions import AnyShopper, SignedInShopper
from personalization.api.schema import ShopperSchema
from personalization.api.throttling import SHOPPER_THROTTLES
from personalization.capture import attribution, events
from personalization.coupons import codes as coupon_service
from personalization.models import EventKind, Placement
from personalization.serving import ranking

logger = logging.getLogger("personalization.api")

#: Set in a session the API creates, so that the session is stored and its cookie sent.
SESSION_MARK = "personalization_shopper"



def _error(description):
    return OpenApiResponse(serializers.ErrorSerializer, description=description)


#: The errors the API answers, by status; each endpoint documents those that can happen to it.
ERRORS = {
    400: _error("Invalid parameters or body: `detail` says what was wrong, `errors` where."),
    401: _error("Not signed in where the endpoint needs it, or a token that is not valid."),
    403: _error("Refused: a signed-in session's POST without its CSRF token."),
    404: _error("No placement has this slug."),
    415: _error("The body is not JSON (send Content-Type: application/json)."),
    429: _error("Too many requests from this shopper: try again after Retry-After seconds."),
    503: _error("The service failed; the failure is logged."),
}


def errors(*statuses):
    return {status_code: ERRORS[status_code] for status_code in statuses}


class JSONErrors:
    """Errors in the API's JSON shape (exceptions.exception_handler), whatever the store's DRF settings."""

    def get_exception_handler(self):
        return exceptions.exception_handler


def documented(**schema):
    """extend_schema built on the API's ShopperSchema whatever the store's DEFAULT_SCHEMA_CLASS
    (extend_schema builds on the method's own `schema` when it has one)."""

    def decorate(method):
        method.schema = ShopperSchema
        return extend_schema(**schema)(method)

    return decorate


class ShopperAPIView(JSONErrors, APIView):
    """The API's base view: errors as JSON, and answers that no shared cache keeps. Its OpenAPI
    schema is drf-spectacular's whatever the store's DEFAULT_SCHEMA_CLASS."""

    schema = ShopperSchema()

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_cache_control(response, private=True, no_store=True)  # every answer is one shopper's
        return response


def shopper_of(request, *, create_session=False):
    """state.shopper_from(request): the signed-in user, else the session. Without a session, nobody
    (a new shopper), unless `create_session`: then one is created, marked so that it is kept."""
    session = getattr(request, "session", None)
    signed_in = getattr(request.user, "is_authenticated", False)
    if create_session and not signed_in and session is not None and not session.session_key:
        session[SESSION_MARK] = True
    return state.shopper_from(request, create_session=create_session)


def validated(serializer_class, data):
    """`data` validated by `serializer_class`; raises ValidationError (a 400) as is_valid() would.
    One instance per class serves every request: run_validation keeps nothing on it."""
    return _validator(serializer_class).run_validation(data)


def validated_query(serializer_class, request):
    """The request's query parameters validated by `serializer_class`, as given: an empty value
    (`limit=`) is invalid rather than absent, and a parameter given twice is refused."""
    params = request.query_params
    fields = _validator(serializer_class).fields
    repeated = {name: [_("Give this parameter once.")] for name in fields if len(params.getlist(name)) > 1}
    if repeated:
        raise ValidationError(repeated)
    return validated(serializer_class, {name: params[name] for name in fields if name in params})


@functools.cache
def _validator(serializer_class):
    return serializer_class()


class RecommendationsView(ShopperAPIView):
    """A placement's recommendations for the shopper of the request, each with the reason it is there."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.recommendations"

    @documented(
        parameters=[serializers.RecommendationsQuery],
        responses={
            200: serializers.RecommendationsSerializer,
            **errors(400, 401, 404, 429, 503),
        },
    )
    def get(self, request):
        query = validated_query(serializers.RecommendationsQuery, request)
        try:
            ask = ranking.Ask(product_id=query.get("product"), limit=query.get("limit"))
            found = ranking.recommend(query["placement"], shopper_of(request), ask)
        except Placement.DoesNotExist:
            raise exceptions.UnknownPlacement(f"There is no placement {query['placement']!r}.") from None
        return Response(serializers.RecommendationsSerializer(found, context={"request": request}).data)


class CartPredictionsView(ShopperAPIView):
    """What the shopper of the request will likely add to their cart next, from the cart the store records."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.cart_predictions"

    @documented(
        parameters=[serializers.LimitQuery],
        responses={200: serializers.RecommendationsSerializer, **errors(400, 401, 429, 503)},
    )
    def get(self, request):
        query = validated_query(serializers.LimitQuery, request)
        found = ranking.cart_predictions(shopper_of(request), ranking.Ask(limit=query.get("limit")))
        return Response(serializers.RecommendationsSerializer(found, context={"request": request}).data)


class CouponsView(ShopperAPIView):
    """The signed-in shopper's coupons that can be used now, expiring first."""

    permission_classes = [SignedInShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.coupons"

    @documented(responses={200: serializers.CouponSerializer(many=True), **errors(401, 429, 503)})
    def get(self, request):
        return Response(serializers.CouponSerializer(coupon_service.open_coupons(request.user), many=True).data)


class CouponValidationView(ShopperAPIView):
    """What a coupon takes off the shopper's cart, or why it does not apply. Using it is checkout's job."""

    permission_classes = [SignedInShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.coupon_validation"
    parser_classes = [JSONParser]

    @documented(
        request=serializers.CouponValidationRequest,
        responses={
            200: serializers.DiscountSerializer,
            **errors(400, 401, 403, 415, 429, 503),
            400: _error("The coupon does not apply, or the body is invalid: `detail` says why."),
        },
    )
    def post(self, request):
        data = validated(serializers.CouponValidationRequest, request.data)
        cart = store_cart(request.user)
        cart_total = data.get("cart_total")
        if cart_total is None:
            if cart is None:
                raise ValidationError({"cart_total": ["This field is required: the store's cart cannot be read."]})
            cart_total = cart.total
        try:
            discount = coupons.validate(data["code"], request.user, cart_total, cart.categories if cart else ())
        except coupons.CouponUnavailable as error:
            raise exceptions.ServiceUnavailable(error.detail) from error
        except coupons.CouponError as error:
            raise exceptions.CouponRejected(error.detail, code=error.code) from error
        return Response(serializers.DiscountSerializer({**asdict(discount), "cart_total": cart_total}).data)


@dataclass(frozen=True)
class StoreCart:
    total: Decimal  # at today's prices
    categories: tuple  # the category names of its products


def store_cart(user):
    """The shopper's cart in the store, read through the adapter; None when the store's cart cannot be read."""
    adapter = get_adapter()
    lines = adapter.cart_lines(user_id=user.pk)
    if lines is None:
        return None
    products = adapter.products({line.product_id for line in lines})
    priced = [(products[line.product_id], line.quantity) for line in lines if line.product_id in products]
    return StoreCart(
        total=sum(
            (Decimal(product.price) * quantity for product, quantity in priced if product.price is not None),
            Decimal("0"),
        ),
        categories=tuple(sorted({name for product, _ in priced for name in product.every_category})),
    )


class EventsView(ShopperAPIView):
    """Records what the shopper of the request viewed, was shown and clicked: one event or a list."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.events"
    parser_classes = [JSONParser]

    @documented(
        request=PolymorphicProxySerializer(
            component_name="EventOrEvents",
            serializers=[
                serializers.EventSerializer,
                serializers.EventSerializer(
                    many=True, allow_empty=False, max_length=serializers.MAX_EVENTS_PER_REQUEST
                ),
            ],
            resource_type_field_name=None,
            many=False,
        ),
        responses={202: serializers.EventsRecordedSerializer, **errors(400, 401, 403, 415, 429, 503)},
    )
    def post(self, request):
        many = isinstance(request.data, list)
        serializer = serializers.EventSerializer(
            data=request.data if many else [request.data],
            many=True,
            allow_empty=False,
            max_length=serializers.MAX_EVENTS_PER_REQUEST,
        )
        if not serializer.is_valid():
            raise ValidationError(serializer.errors if many else _single(serializer.errors))
        shopper = shopper_of(request, create_session=True)
        _check_issued(serializer.validated_data, shopper, many)
        new = [
            events.NewEvent(
                event["kind"],
                event["product"],
                shopper,
                recommendation_id=event.get("recommendation_id", ""),
                data={key: event[key] for key in ("placement", "position") if key in event},
            )
            for event in serializer.validated_data
        ]
        try:
            recorded = events.bulk_record(new)
        except events.InvalidEvent as error:
            raise ValidationError({"non_field_errors": [str(error)]}) from error
        except Exception as error:
            logger.exception(
                "Could not record %d event(s) of %s: %s",
                len(new),
                shopper,
                [(e.kind, e.product_id, e.recommendation_id, e.data) for e in new],
            )
            raise exceptions.ServiceUnavailable() from error
        if recorded:
            for event in new:
                if event.kind == EventKind.CLICK and event.recommendation_id:
                    attribution.remember_click(
                        shopper.user_id, shopper.session_key, event.product_id, event.recommendation_id
                    )
        return Response({"received": len(new), "recorded": recorded}, status=status.HTTP_202_ACCEPTED)


def _check_issued(received, shopper, many):
    """Impressions and clicks must name a recommendation shown to this shopper: nobody can credit
    made-up ids, or another shopper's, with clicks."""
    for position, event in enumerate(received):
        recommendation_id = event.get("recommendation_id", "")
        if recommendation_id and not attribution.issued_to(recommendation_id, shopper):
            message = _("This is not a recommendation shown to you.")
            error = {"recommendation_id": [message]}
            raise ValidationError({position: error} if many else error)


def _single(errors):
    """The errors of a one-event body without the list around them (DRF keys a list's errors by position)."""
    if isinstance(errors, dict) and set(errors) == {0}:
        return errors[0]
    if isinstance(errors, list) and len(errors) == 1:
        return errors[0]
    return errors


class SchemaView(JSONErrors, SpectacularAPIView):
    """The OpenAPI 3 document of this API (YAML, or JSON with ?format=json)."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.schema"
    custom_settings = {"PREPROCESSING_HOOKS": ["personalization.api.schema.only_this_api"]}


class DocsView(JSONErrors, SpectacularSwaggerView):
    """The API's documentation page (Swagger UI, served from the store's static files)."""

    permission_classes = [AnyShopper]
    throttle_classes = SHOPPER_THROTTLES
    throttle_scope = "personalization.schema"
    url_name = "personalization_api:schema"
