"""Admin screens for personalized promotions and who met them."""
from django.contrib import admin
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from personalization.models import Promotion, PromotionExposure


def _exposures(**filters):
    """A promotion's number of exposed shoppers (matching `filters`) as a subquery: no joins that multiply."""
    rows = PromotionExposure.objects.filter(promotion=OuterRef("pk"), **filters).order_by().values("promotion")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


class RunningFilter(admin.SimpleListFilter):
    title = _("running now")
    parameter_name = "running"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        running = Q(active=True, starts_at__lte=now) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        if self.value() == "yes":
            return queryset.filter(running)
        if self.value() == "no":
            return queryset.exclude(running)
        return queryset


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["name", "slot", "active", "priority", "audience", "starts_at", "ends_at", "shown_to", "held_out"]
    list_filter = [RunningFilter, "active", "slot", "audience"]
    search_fields = ["name", "headline", "slot", "product_id", "category"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slot", "active", "priority"]}),
        (
            _("What shoppers see"),
            {
                "fields": ["headline", "text", "image", "link_text"],
                "description": _('Shown by the {% promotion "slot" %} tag of the store\'s pages and by the API.'),
            },
        ),
        (
            _("Where it leads"),
            {
                "fields": ["product_id", "category", "category_url"],
                "description": _("A product (its page is the store's) or a category with the address of its page."),
            },
        ),
        (
            _("Audience"),
            {
                "fields": [
                    "audience",
                    "segment",
                    "affinity_category",
                    "affinity_share",
                    "propensity_min",
                    "propensity_max",
                    "abandoned_hours",
                ],
                "description": _(
                    "Who sees it, aimed as coupon campaigns are. Fill in the fields of the chosen audience only: "
                    "segments are listed with the active shopper autoencoder, propensities come from the active "
                    "purchase propensity model, an abandoned cart is one the shopper changed but did not buy. "
                    "Shoppers who are not signed in see only promotions for every shopper."
                ),
            },
        ),
        (
            _("Schedule, frequency and measurement"),
            {
                "fields": [
                    "starts_at",
                    "ends_at",
                    "frequency_cap",
                    "holdout_share",
                    "attribution_days",
                    "created_at",
                    "updated_at",
                ],
                "description": _(
                    "The Personalization dashboard shows each promotion's impressions, clicks, the revenue of "
                    "the shoppers shown it, and its lift against the held-out shoppers."
                ),
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                shown_count=_exposures(group=PromotionExposure.Group.TREATMENT),
                held_out_count=_exposures(group=PromotionExposure.Group.HOLDOUT),
            )
        )

    @admin.display(description=_("shown to"), ordering="shown_count")
    def shown_to(self, promotion):
        return promotion.shown_count

    @admin.display(description=_("held out"), ordering="held_out_count")
    def held_out(self, promotion):
        return promotion.held_out_count


@admin.register(PromotionExposure)
class PromotionExposureAdmin(admin.ModelAdmin):
    list_display = ["promotion", "shopper", "group", "impressions", "first_seen"]
    list_filter = ["group", "promotion"]
    list_select_related = ["promotion"]
    search_fields = ["=user_id", "=session_key"]
    show_full_result_count = False

    @admin.display(description=_("shopper"))
    def shopper(self, exposure):
        return exposure.shopper_key[:9]

    # Recorded when shoppers meet a promotion: shop owners read them, they do not edit them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
