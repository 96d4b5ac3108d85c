"""Admin screens for placements."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from personalization.models import Placement


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "page", "strategy", "fallback_strategy", "limit", "active", "updated_at"]
    list_filter = ["page", "strategy", "active"]
    list_editable = ["active"]
    search_fields = ["name", "slug", "heading"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "heading", "page", "active", "updated_at"]}),
        (
            _("What to show"),
            {
                "fields": ["strategy", "fallback_strategy", "limit"],
                "description": _(
                    "The learned strategies use the active model versions; until a model is trained they "
                    "fall back. Bought together and similar products start from the page's product, or "
                    "else from the products in the cart."
                ),
            },
        ),
        (
            _("Rules"),
            {
                "fields": [
                    "exclude_in_cart",
                    "exclude_purchased",
                    ("include_categories", "exclude_categories"),
                    ("min_price", "max_price"),
                ],
                "description": _("Inactive and out-of-stock products are never shown, whatever these rules say."),
            },
        ),
    ]
