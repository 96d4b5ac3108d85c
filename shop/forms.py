from django import forms
from django.utils.translation import gettext_lazy as _

from shop.models import Order

MAX_QUANTITY = 99


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY, initial=1)


class CartLineForm(forms.Form):
    """Changes a cart line's quantity; 0 removes the line."""

    quantity = forms.IntegerField(label=_("Quantity"), min_value=0, max_value=MAX_QUANTITY)


class CheckoutForm(forms.ModelForm):
    class Meta:
        model = Order
        fields = ["full_name", "address"]
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "address": forms.Textarea(attrs={"rows": 4, "autocomplete": "street-address"}),
        }


class CouponForm(forms.Form):
    """The coupon field of the checkout page; the plugin checks the code itself."""

    coupon_code = forms.CharField(
        label=_("Coupon code"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}),
    )
