from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from shop.models import Cart, CartLine, Category, Order, OrderLine, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "colour", "product_count"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_count=Count("products"))

    @admin.display(description=_("products"), ordering="product_count")
    def product_count(self, category):
        return category.product_count


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "category", "price", "stock", "active"]
    list_editable = ["stock", "active"]
    list_filter = ["active", "category"]
    list_select_related = ["category"]
    search_fields = ["title", "slug", "description"]
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["category"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["product", "title", "quantity", "unit_price"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "full_name", "placed_at", "total", "coupon_code", "discount"]
    list_select_related = ["user"]
    search_fields = ["=id", "full_name", "user__username", "user__email", "=coupon_code"]
    date_hierarchy = "placed_at"
    readonly_fields = ["user", "placed_at", "total", "coupon_code", "discount"]
    inlines = [OrderLineInline]


class CartLineInline(admin.TabularInline):
    model = CartLine
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    # Session keys are credentials: the admin never shows them.
    list_display = ["__str__", "user", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "updated_at"]
    readonly_fields = ["user", "updated_at"]
    inlines = [CartLineInline]
