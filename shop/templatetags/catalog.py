"""The store's template helpers: `{% load catalog %}`."""
from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from shop.models import Category

register = template.Library()


@register.simple_tag
def categories():
    """The categories for the navigation bar."""
    return Category.objects.only("name", "slug")


@register.filter
def money(amount):
    """A price as shown to shoppers, e.g. $1,234.50."""
    if amount in (None, ""):
        return ""
    return _("$%(amount)s") % {"amount": number_format(Decimal(amount), 2, force_grouping=True)}
