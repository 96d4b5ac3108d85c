from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = _("Shop")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from shop import receivers

        user_logged_in.connect(receivers.merge_cart_on_login, dispatch_uid="shop.merge_cart_on_login")
