"""Admin screens for coupon campaigns and coupons."""
import logging

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from personalization.coupons import issuing as coupon_issuing
from personalization.models import Coupon, CouponAssignment, CouponCampaign
from personalization.serving.audiences import AudienceUnavailable

logger = logging.getLogger("personalization.admin")


def count_of(model, **filters):
    """A campaign's number of `model` rows (coupons, assignments) as a subquery: no joins that multiply."""
    rows = model.objects.filter(campaign=OuterRef("pk"), **filters).order_by().values("campaign")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


@admin.register(CouponCampaign)
class CouponCampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "active",
        "audience",
        "discount",
        "starts_at",
        "ends_at",
        "budget",
        "spent",
        "issued",
        "redeemed",
        "held_out",
    ]
    list_filter = ["active", "audience", "discount_kind", ("starts_at", admin.DateFieldListFilter)]
    search_fields = ["name", "categories", "affinity_category"]
    readonly_fields = ["spent", "created_at"]
    actions = ["issue_coupons_now"]
    fieldsets = [
        (None, {"fields": ["name", "active"]}),
        (_("Discount"), {"fields": ["discount_kind", "discount_value", "max_discount"]}),
        (
            _("Eligible carts"),
            {
                "fields": ["min_cart_total", "categories"],
                "description": _("A coupon applies only to carts like these."),
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
                    "audience_size",
                ],
                "description": _(
                    "Who gets a coupon. Fill in the fields of the chosen audience only: segments are listed with "
                    "the active shopper autoencoder, propensities come from the active purchase propensity model, "
                    "an abandoned cart is one the shopper changed but did not buy, and likely to redeem reaches "
                    "the shoppers who redeemed the most coupons before, then those who bought the most in the "
                    "eligible categories: on real campaigns it finds the shoppers who redeem best."
                ),
            },
        ),
        (
            _("Limits and timing"),
            {
                "fields": [
                    "budget",
                    "spent",
                    "per_shopper_limit",
                    "starts_at",
                    "ends_at",
                    "coupon_valid_days",
                    "holdout_share",
                    "created_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                issued_count=count_of(Coupon),
                redeemed_count=count_of(Coupon, status=Coupon.Status.REDEEMED),
                held_out_count=count_of(CouponAssignment, group=CouponAssignment.Group.HOLDOUT),
            )
        )

    @admin.display(description=_("discount"))
    def discount(self, campaign):
        if campaign.discount_kind == CouponCampaign.DiscountKind.PERCENT:
            text = f"{campaign.discount_value.normalize():f}%"
        else:
            text = f"{campaign.discount_value}"
        return text + (gettext(" (at most %(max)s)") % {"max": campaign.max_discount} if campaign.max_discount else "")

    @admin.display(description=_("coupons issued"), ordering="issued_count")
    def issued(self, campaign):
        return campaign.issued_count

    @admin.display(description=_("redeemed"), ordering="redeemed_count")
    def redeemed(self, campaign):
        return campaign.redeemed_count

    @admin.display(description=_("held out"), ordering="held_out_count")
    def held_out(self, campaign):
        return campaign.held_out_count

    @admin.action(description=_("Issue coupons now"), permissions=["change"])
    def issue_coupons_now(self, request, queryset):
        for campaign in queryset:
            try:
                result = coupon_issuing.issue(campaign)
            except AudienceUnavailable as exc:
                self.message_user(
                    request,
                    gettext("%(campaign)s: cannot find its audience: %(reason)s.")
                    % {"campaign": campaign, "reason": exc},
                    messages.ERROR,
                )
                continue
            except Exception:
                logger.exception("Issuing coupons of campaign %s failed", campaign.pk)
                self.message_user(
                    request,
                    gettext("%(campaign)s: issuing failed; the error is in the log (logger personalization).")
                    % {"campaign": campaign},
                    messages.ERROR,
                )
                continue
            if result.not_issuing:
                self.message_user(
                    request,
                    gettext("%(campaign)s: no coupons issued, %(reason)s.")
                    % {"campaign": campaign, "reason": result.not_issuing},
                    messages.WARNING,
                )
                continue
            self.message_user(
                request,
                gettext(
                    "%(campaign)s: %(eligible)d shoppers in the audience; %(issued)d coupons issued, %(held_out)d "
                    "held out, %(have_one)d still hold an unused coupon, %(at_limit)d had their limit."
                )
                % {"campaign": campaign, **vars(result)},
                messages.SUCCESS,
            )


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = [
        "code", "user", "campaign", "status", "issued_at", "expires_at", "redeemed_at", "order_id", "discount"
    ]
    list_filter = ["status", "campaign", ("issued_at", admin.DateFieldListFilter)]
    list_select_related = ["user", "campaign"]
    search_fields = ["=code", "user__username", "=order_id"]
    date_hierarchy = "issued_at"
    show_full_result_count = False

    # Coupons are issued by campaigns and redeemed at checkout: shop owners read them, they do not edit them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CouponAssignment)
class CouponAssignmentAdmin(admin.ModelAdmin):
    list_display = ["user", "campaign", "group", "assigned_at"]
    list_filter = ["group", "campaign"]
    list_select_related = ["user", "campaign"]
    search_fields = ["user__username"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
