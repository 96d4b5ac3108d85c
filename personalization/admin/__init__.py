"""What shop owners see of the plugin in the Django admin."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from personalization.adapters import get_adapter
from personalization.models import Event, OptOut


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "product", "user_id", "short_session", "quantity", "unit_price", "order_id", "source"]
    list_filter = ["kind", "source", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["product_id", "user_id", "session_key", "order_id"]
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False

    def get_changelist_instance(self, request):
        """Names the products of the page in one lookup through the store's adapter."""
        changelist = super().get_changelist_instance(request)
        events = list(changelist.result_list)
        products = get_adapter().products({event.product_id for event in events})
        for event in events:
            info = products.get(event.product_id)
            event.product_title = f"{info.title} (#{event.product_id})" if info else f"#{event.product_id}"
        return changelist

    @admin.display(description=_("product"), ordering="product_id")
    def product(self, event):
        return getattr(event, "product_title", event.product_id)

    @admin.display(description=_("session"))
    def short_session(self, event):
        return event.session_key[:8]

    # The event log is a record of what shoppers did: shop owners read it, they do not edit it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "created_at"]
    search_fields = ["user__username", "session_key"]
    raw_id_fields = ["user"]


from personalization.admin import (  # noqa: E402,F401  (register their screens)
    coupons,
    experiments,  # noqa: E402,F401  (A/B experiments on placements)
    placements,
    promotions,  # noqa: E402,F401  (personalized promotions)
    training,
)
