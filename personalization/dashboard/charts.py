"""The dashboard's time-series charts, as django-admin-charts (`admin_tools_stats`) DashboardStats
rows. `migrate` creates the missing ones and leaves existing ones as they are, so shop owners may
restyle them in the admin (Dashboard stats); a deleted one comes back at the next `migrate`.

Nothing happens when admin_tools_stats is not installed: the Personalization dashboard then shows
only the charts of `services.analytics`.
"""
from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.translation import gettext_lazy as _

from personalization.models import EventKind

ATTRIBUTED = {"exclude": {"recommendation_id": ""}}
#: django-admin-charts writes the Y axis as d3.format(",<y_axis_format>"): whole numbers for counts.
COUNT_FORMAT = "d"

#: graph_key -> (title shown in the dashboard, DashboardStats fields)
CHARTS = {
    "personalization_events_by_kind": (
        _("Events per day, by kind"),
        {
            "model_name": "Event",
            "date_field_name": "created_at",
            "type_operation_field_name": "Count",
            "default_chart_type": "multiBarChart",
            "y_axis_format": COUNT_FORMAT,
        },
    ),
    "personalization_attributed_cart_adds": (
        _("Add-to-carts from recommendations, per day"),
        {
            "model_name": "Event",
            "date_field_name": "created_at",
            "type_operation_field_name": "Count",
            "queryset_modifiers": [{"filter": {"kind": "cart_add"}}, ATTRIBUTED],
            "y_axis_format": COUNT_FORMAT,
        },
    ),
    "personalization_attributed_revenue": (
        _("Revenue from recommendations, per day"),
        {
            "model_name": "Event",
            "date_field_name": "created_at",
            "type_operation_field_name": "Sum",
            "operation_field_name": "line_total",
            "queryset_modifiers": [{"filter": {"kind": "purchase"}}, ATTRIBUTED, {"with_line_total": {}}],
            "y_axis_format": ".2f",
        },
    ),
    "personalization_coupons_issued": (
        _("Coupons issued per day"),
        {"model_name": "Coupon", "date_field_name": "issued_at", "type_operation_field_name": "Count", "y_axis_format": COUNT_FORMAT},
    ),
    "personalization_coupons_redeemed": (
        _("Coupons redeemed per day"),
        {
            "model_name": "Coupon",
            "date_field_name": "redeemed_at",
            "type_operation_field_name": "Count",
            "queryset_modifiers": [{"filter": {"redeemed_at__isnull": False}}],
            "y_axis_format": COUNT_FORMAT,
        },
    ),
}
#: The charts whose values are money: the dashboard writes their axis with the currency symbol.
MONEY = {"personalization_attributed_revenue"}
#: The chart divided into one series per value of a field: graph_key -> (criteria name, field, series).
#: The criteria name is what the chart's toolbar shows; the series map each value to its legend name
#: (django-admin-charts' "dynamic criteria mapping"). Without the mapping it would make one series per
#: value found plus an always-empty one named "None".
SERIES = {
    "personalization_events_by_kind": (
        _("Event kind"),
        "kind",
        {
            EventKind.VIEW: _("views"),
            EventKind.CART_ADD: _("cart adds"),
            EventKind.CART_REMOVE: _("cart removals"),
            EventKind.PURCHASE: _("purchases"),
            EventKind.IMPRESSION: _("impressions"),
            EventKind.CLICK: _("clicks"),
        },
    ),
}


def installed():
    return global_apps.is_installed("admin_tools_stats")


def create_charts(using=DEFAULT_DB_ALIAS, verbosity=1, **kwargs):
    """post_migrate: creates the missing CHARTS rows (when admin_tools_stats is installed)."""
    if not installed():
        return
    from admin_tools_stats.models import CriteriaToStatsM2M, DashboardStats, DashboardStatsCriteria

    if DashboardStats._meta.db_table not in connections[using].introspection.table_names():
        return  # admin_tools_stats is not migrated yet: the next migrate creates them
    for key, (title, fields) in CHARTS.items():
        if DashboardStats.objects.using(using).filter(graph_key=key).exists():
            continue
        chart = DashboardStats.objects.using(using).create(
            graph_key=key,
            graph_title=str(title)[:90],
            model_app_name="personalization",
            default_time_period=30,
            default_time_scale="days",
            **{"default_chart_type": "discreteBarChart", **fields},
        )
        if key in SERIES:
            name, field, series = SERIES[key]
            criteria, _created = DashboardStatsCriteria.objects.using(using).get_or_create(
                criteria_name=str(name)[:90],
                defaults={
                    "dynamic_criteria_field_name": field,
                    "criteria_dynamic_mapping": {str(value): [str(value), str(label)] for value, label in series.items()},
                },
            )
            link = CriteriaToStatsM2M.objects.using(using).create(criteria=criteria, stats=chart, use_as="multiple_series")
            chart.default_multiseries_criteria = link
            chart.save(update_fields=["default_multiseries_criteria"])
        if verbosity >= 2:
            print(f"  Created the dashboard chart {key!r}")


def charts():
    """The DashboardStats of CHARTS that exist and are visible, in CHARTS' order, each with `title`."""
    if not installed():
        return []
    from admin_tools_stats.models import DashboardStats

    found = {chart.graph_key: chart for chart in DashboardStats.objects.filter(graph_key__in=CHARTS, is_visible=True)}
    result = []
    for key, (title, _fields) in CHARTS.items():
        if key in found:
            found[key].title = title
            found[key].money = key in MONEY
            result.append(found[key])
    return result
