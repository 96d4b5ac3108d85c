"""Admin screens for A/B experiments on placements: arms, shares, dates, results per arm, and the
action that makes the winner the placement's configuration."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from personalization.conf import settings as conf
from personalization.experiments import arms as experiments
from personalization.models import Experiment, ExperimentArm


class ArmFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if len(kept) < 2:
            raise ValidationError(_("An experiment needs at least two arms: the first is the reference."))


class ArmForm(forms.ModelForm):
    class Meta:
        model = ExperimentArm
        fields = ["name", "share", "strategy", "limit", "model_version", "show_nothing"]
        # Narrow enough that the arms' row fits the change page at 1280 px.
        widgets = {
            "name": forms.TextInput(attrs={"size": 18}),
            "share": forms.NumberInput(attrs={"style": "width: 4em"}),
            "strategy": forms.Select(attrs={"style": "max-width: 14em"}),
            "limit": forms.NumberInput(attrs={"style": "width: 4em"}),
        }


class ArmInline(admin.TabularInline):
    model = ExperimentArm
    form = ArmForm
    formset = ArmFormSet
    raw_id_fields = ["model_version"]

    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj is not None else 2  # a new experiment starts with two blank arms


def _result(experiment):
    """The experiment's outcomes, computed once per page (the horizon and the table both show them)."""
    if getattr(experiment, "_admin_result", None) is None:
        experiment._admin_result = experiments.outcomes(experiment)
    return experiment._admin_result


def _percent(estimate):
    if estimate is None:
        return "—"
    return f"{estimate.value:.2%} ({estimate.low:.2%} – {estimate.high:.2%})"


def _money(estimate):
    if estimate is None:
        return "—"
    symbol = conf.CURRENCY_SYMBOL
    return f"{symbol}{estimate.value:.2f} ({symbol}{estimate.low:.2f} – {symbol}{estimate.high:.2f})"


def _versus(difference, metric):
    if difference is None:
        return "—"
    shown = _money if metric == "revenue" else _percent
    return f"{shown(difference.estimate)}, p = {difference.p_value:.3f}"


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "placement", "primary_metric", "starts_at", "stops_at", "applied_arm"]
    list_filter = ["placement", "primary_metric"]
    search_fields = ["name", "placement__name", "placement__slug"]
    inlines = [ArmInline]
    readonly_fields = ["horizon", "results", "applied_arm"]
    actions = ["apply_winner"]
    fieldsets = [
        (None, {"fields": ["name", "placement", ("starts_at", "stops_at"), "applied_arm"]}),
        (
            _("Decision"),
            {
                "fields": ["primary_metric", "baseline_rate", "minimum_lift", "outcome_days", "horizon"],
                "description": _(
                    "A fixed-horizon test: the shoppers each arm needs are computed up front (5% false "
                    "positives, 80% power) and no winner is declared before every arm has them, so looking "
                    "at the results every day is safe."
                ),
            },
        ),
        (_("Results"), {"fields": ["results"]}),
    ]

    @admin.display(description=_("shoppers needed"))
    def horizon(self, experiment):
        if experiment.pk is None:
            return gettext("Computed when the experiment and its arms are saved.")
        result = _result(experiment)
        has = min((row.exposed for row in result.arms), default=0)
        return gettext("Needs %(needed)s shoppers per arm; has %(has)s.") % {"needed": result.needed, "has": has}

    @admin.display(description=_("results per arm"))
    def results(self, experiment):
        if experiment.pk is None:
            return "—"
        result = _result(experiment)
        primary = experiment.primary_metric
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.arm.name,
                    row.exposed,
                    len(row.matured),
                    _percent(row.rates["click_through"]),
                    _percent(row.rates["add_to_cart"]),
                    _percent(row.rates["conversion"]),
                    _money(row.revenue),
                    _versus(row.differences.get(primary), primary) if index else gettext("reference"),
                )
                for index, row in enumerate(result.arms)
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            gettext("arm"),
            gettext("shoppers exposed"),
            gettext("shoppers counted"),
            gettext("click-through"),
            gettext("add-to-cart rate"),
            gettext("conversion"),
            gettext("revenue per shopper"),
            gettext("decisive metric against the reference"),
        )
        return format_html("<p>{}</p><table>{}{}</table><p>{}</p>", self._verdict(result), head, rows, gettext(
            "Counted: shoppers whose days counted have passed. Rates and revenue cover every exposed shopper, "
            "with intervals at 95%; the comparison uses the counted shoppers."
        ))

    @staticmethod
    def _verdict(result):
        if not result.decision.ready:
            return gettext("No winner before the horizon: needs %(needed)s counted shoppers per arm.") % {
                "needed": result.needed
            }
        if result.winner is None:
            return gettext("At the horizon no arm differs from the reference.")
        return gettext("Winner: %(arm)s.") % {"arm": result.winner.name}

    @admin.action(description=_("Make the winner the placement's configuration"))
    def apply_winner(self, request, queryset):
        applied = 0
        for experiment in queryset.select_related("placement"):
            winner = experiments.apply_winner(experiment)
            if winner is None:
                self.message_user(
                    request,
                    gettext("%(experiment)s has no winner yet; nothing changed.") % {"experiment": experiment},
                    messages.WARNING,
                )
            else:
                applied += 1
        if applied:
            self.message_user(
                request,
                ngettext(
                    "%(count)d placement now uses its experiment's winner.",
                    "%(count)d placements now use their experiment's winner.",
                    applied,
                )
                % {"count": applied},
                messages.SUCCESS,
            )
