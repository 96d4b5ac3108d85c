"""The Personalization dashboard's view: one admin page with every chart of the plugin (README, "Dashboard").

django-admin-charts draws the time series (`personalization.dashboard.charts`); this page draws the figures
it cannot express (CTR per placement, coupon campaigns and promotions against their holdouts, each experiment's
arms with their intervals, recall@10 per model version)
from `services.analytics`, with the same d3/nvd3 static files. Staff only: the page is wrapped in
the admin site's `admin_view` by `personalization.urls`.
"""
from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext as _

from personalization.conf import settings as conf
from personalization.dashboard import analytics, charts
from personalization.models import ModelKind

#: The period of the figures that are totals (CTR, attributed revenue, coupons).
DAYS = 30

# The admin index links to the dashboard, unless the host has an index template of its own.
if admin.site.index_template is None:
    admin.site.index_template = "admin/personalization/index.html"


#: The d3/nvd3 files: django-admin-charts' settings when set, else the copies the plugin ships.
ASSETS = {
    "d3_js": ("ADMIN_CHARTS_D3_JS_PATH", "personalization/vendor/d3-3.3.13/d3.min.js"),
    "nvd3_js": ("ADMIN_CHARTS_NVD3_JS_PATH", "personalization/vendor/nvd3-1.8.6/nv.d3.min.js"),
    "nvd3_css": ("ADMIN_CHARTS_NVD3_CSS_PATH", "personalization/vendor/nvd3-1.8.6/nv.d3.min.css"),
}


def _asset(setting, default):
    path = getattr(settings, setting, default)
    return path if path.startswith(("http://", "https://", "/")) else static(path)


def _percent(share):
    return round(100 * share, 2)


def _arm_point(arm):
    """An arm's bar: its decisive rate in percent with the 95% interval (none without shoppers)."""
    rate = arm.rate
    return {
        "x": arm.name,
        "y": _percent(rate.value) if rate else 0,
        "low": _percent(rate.low) if rate else None,
        "high": _percent(rate.high) if rate else None,
        "reference": arm.reference,
    }


def _experiment_chart(summary):
    return {"id": summary.experiment_id, "series": [{"key": summary.metric, "values": [_arm_point(arm) for arm in summary.arms]}]}


def chart_data(now=None, promotions=None, experiments=None):
    """What the page's own charts draw, as plain JSON-ready values (labels translated)."""
    since = (now or timezone.now()) - timedelta(days=DAYS)
    placements = analytics.placement_ctr(since=since)
    campaigns = analytics.incremental_conversion()
    promotions = analytics.promotion_performance() if promotions is None else promotions
    experiments = analytics.experiment_results(since, now) if experiments is None else experiments
    kinds = dict(ModelKind.choices)
    return {
        "placements": {
            "series": [
                {"key": _("Impressions"), "values": [{"x": p.name, "y": p.impressions} for p in placements]},
                {"key": _("Clicks"), "values": [{"x": p.name, "y": p.clicks} for p in placements]},
            ],
            "ctr": [{"key": _("CTR (%)"), "values": [{"x": p.name, "y": _percent(p.ctr)} for p in placements]}],
        },
        "conversion": [
            {"key": _("Treatment (gets coupons)"), "values": [{"x": c.name, "y": _percent(c.treatment.rate)} for c in campaigns]},
            {"key": _("Holdout"), "values": [{"x": c.name, "y": _percent(c.holdout.rate)} for c in campaigns]},
        ],
        "promotions": [
            {"key": _("Shown it"), "values": [{"x": p.name, "y": _percent(p.shown.conversion.value if p.shown.conversion else 0)} for p in promotions]},
            {"key": _("Held out"), "values": [{"x": p.name, "y": _percent(p.holdout.conversion.value if p.holdout.conversion else 0)} for p in promotions]},
        ],
        "experiments": [_experiment_chart(e) for e in experiments if e.exposed],
        "recall": [
            {
                "key": str(kinds.get(kind, kind)),
                "values": [{"x": int(created.timestamp() * 1000), "y": value, "version": number} for created, number, value in rows],
            }
            for kind, rows in analytics.recall_history().items()
        ],
    }


def dashboard(request):
    since = timezone.now() - timedelta(days=DAYS)
    admin_charts = charts.charts() if request.user.has_perm("admin_tools_stats.view_dashboardstats") else []
    promotions = analytics.promotion_performance()
    experiments = analytics.experiment_results(since)
    context = {
        **admin.site.each_context(request),
        "title": _("Personalization dashboard"),
        "days": DAYS,
        "admin_charts": admin_charts,
        "admin_charts_installed": charts.installed(),
        "placements": analytics.placement_ctr(since=since),
        "attributed": analytics.attributed(since=since),
        "coupons": analytics.coupon_totals(since=since),
        "campaigns": analytics.incremental_conversion(),
        "promotions": promotions,
        "experiments": experiments,
        "recall_metric": analytics.RECALL_METRIC,
        "currency": conf.CURRENCY_SYMBOL,
        "data": chart_data(promotions=promotions, experiments=experiments),
        **{name: _asset(setting, default) for name, (setting, default) in ASSETS.items()},
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, "admin/personalization/dashboard.html", context)
