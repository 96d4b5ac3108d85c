"""Admin screens for the trained models: versions with their algorithm (which one serves the store)
and held-out metrics, by how much each beat the runner-up, activate / roll back / retrain now, the
training runs, and the shopper segments of the active autoencoder.

Retraining is queued to a Celery worker (personalization.tasks.retrain), never run in the request.
"""
import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from personalization import registry
from personalization.learning import training
from personalization.models import ModelKind, ModelVersion, TrainingRun

logger = logging.getLogger("personalization.admin")


def _score(value):
    return "—" if value is None else f"{value:.4f}"


def _algorithm(version):
    return version.get_algorithm_display() if version is not None and version.algorithm else "—"


def _margin(version):
    """"+0.0123 over TIFU-KNN": by how much the version beat the runner-up on the gate metric when
    it was trained (negative: it lost to it)."""
    metrics = version.metrics if version is not None else {}
    if metrics.get("margin") is None or not metrics.get("runner_up"):
        return "—"
    return gettext("%(margin)s over %(runner_up)s") % {"margin": f"{metrics['margin']:+.4f}", "runner_up": metrics["runner_up"]}


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "is_active",
        "algorithm_name",
        "gate_metric",
        "score",
        "won_by",
        "active_before_score",
        "created_at",
        "activated_at",
        "run",
    ]
    list_filter = ["kind", "algorithm", "is_active"]
    list_select_related = ["training_run"]
    actions = ["activate", "roll_back", "retrain_now"]
    readonly_fields = [
        "kind",
        "number",
        "algorithm",
        "is_active",
        "artifact",
        "metrics",
        "config",
        "data_window",
        "code_version",
        "training_run",
        "created_at",
        "activated_at",
    ]

    # Versions are made by training; shop owners activate, roll back and retrain, they do not edit.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return obj is not None and not obj.is_active and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        found = super().get_actions(request)
        found.pop("delete_selected", None)  # it would delete active versions too
        return found

    @admin.display(description=_("gate metric"))
    def gate_metric(self, version):
        return training.gate_metric(version.kind)

    @admin.display(description=_("held-out score"))
    def score(self, version):
        return _score(version.metrics.get(training.gate_metric(version.kind)))

    @admin.display(description=_("algorithm"), ordering="algorithm")
    def algorithm_name(self, version):
        return _algorithm(version)

    @admin.display(description=_("margin over the runner-up"))
    def won_by(self, version):
        return _margin(version)

    @admin.display(description=_("active version then"))
    def active_before_score(self, version):
        return _score((version.metrics.get("active_before") or {}).get(training.gate_metric(version.kind)))

    @admin.display(description=_("training run"))
    def run(self, version):
        if version.training_run_id is None:
            return "—"
        url = reverse("admin:personalization_trainingrun_change", args=[version.training_run_id])
        return format_html('<a href="{}">{}</a>', url, version.training_run.get_status_display())

    @admin.action(description=_("Activate the selected version"), permissions=["change"])
    def activate(self, request, queryset):
        versions = list(queryset)
        kinds = [version.kind for version in versions]
        if len(set(kinds)) != len(kinds):
            self.message_user(request, gettext("Select at most one version of each model to activate."), messages.ERROR)
            return
        for version in versions:
            registry.activate(version)
            self.message_user(request, gettext("%(version)s is now active.") % {"version": version}, messages.SUCCESS)

    @admin.action(description=_("Roll back to the version active before"), permissions=["change"])
    def roll_back(self, request, queryset):
        for kind in sorted(set(queryset.values_list("kind", flat=True))):
            name = ModelKind(kind).label
            restored = registry.rollback(kind)
            if restored is None:
                self.message_user(
                    request, gettext("%(model)s: there is no earlier active version.") % {"model": name}, messages.WARNING
                )
            else:
                self.message_user(
                    request, gettext("%(model)s: rolled back to %(version)s.") % {"model": name, "version": restored}, messages.SUCCESS
                )

    @admin.action(description=_("Retrain these models now"), permissions=["change"])
    def retrain_now(self, request, queryset):
        self.queue_retrain(request, sorted(set(queryset.values_list("kind", flat=True))))

    def queue_retrain(self, request, kinds):
        names = ", ".join(str(ModelKind(kind).label) for kind in kinds)
        queued = training.queue(kinds, triggered_by=f"admin:{request.user.get_username()}"[:64])
        if queued is None:
            self.message_user(
                request,
                gettext("Retraining could not be queued: the task queue is unreachable. The error is in the log."),
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            gettext("Retraining of %(models)s is queued. Its progress shows under Training runs.") % {"models": names},
            messages.SUCCESS,
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("retrain/", self.admin_site.admin_view(self.retrain_view), name="%s_%s_retrain" % info),
            path("segments/", self.admin_site.admin_view(self.segments_view), name="%s_%s_segments" % info),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {"can_retrain": self.has_change_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def retrain_view(self, request):
        """"Retrain all models now": queues the retrain task and returns to the list."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        self.queue_retrain(request, list(ModelKind.values))
        return HttpResponseRedirect(reverse("admin:personalization_modelversion_changelist"))

    def segments_view(self, request):
        """The segments of the active shopper autoencoder: their size and top categories."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        version, segments, problem = registry.active(ModelKind.AUTOENCODER), [], ""
        if version is None:
            problem = gettext("There is no active shopper autoencoder yet: train one first.")
        else:
            try:
                segments = registry.load(version).extra.get("segments") or []
            except Exception:
                logger.exception("Cannot load the segments of %s", version)
                problem = gettext("The artifact of %(version)s cannot be loaded; the error is in the log.") % {"version": version}
        total = sum(segment["shoppers"] for segment in segments) or 1
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Shopper segments"),
            "version": version,
            "problem": problem,
            "segments": [
                {
                    **segment,
                    "share": segment["shoppers"] / total,
                    "top_categories": [
                        {**top, "share_percent": 100 * top["share"]} for top in segment.get("top_categories", [])
                    ],
                }
                for segment in segments
            ],
        }
        return TemplateResponse(request, "admin/personalization/modelversion/segments.html", context)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "algorithm", "margin", "started_at", "took", "device", "triggered_by", "summary"]
    list_select_related = ["model_version"]
    list_filter = ["status", "kind", "device", ("started_at", admin.DateFieldListFilter)]
    search_fields = ["message", "triggered_by", "worker"]
    date_hierarchy = "started_at"
    fields = [
        "kind",
        "status",
        "message",
        "started_at",
        "finished_at",
        "took",
        "device",
        "worker",
        "heartbeat_at",
        "triggered_by",
        "version",
        "algorithm",
        "margin",
        "error_trace",
    ]
    readonly_fields = fields

    # A record of what training did: read, never written here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("duration"))
    def took(self, run):
        if run.duration is None:
            return "—"
        seconds = run.duration.total_seconds()
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    @admin.display(description=_("message"))
    def summary(self, run):
        return run.message if len(run.message) <= 120 else run.message[:119] + "…"

    @admin.display(description=_("algorithm"))
    def algorithm(self, run):
        return _algorithm(getattr(run, "model_version", None))

    @admin.display(description=_("margin over the runner-up"))
    def margin(self, run):
        return _margin(getattr(run, "model_version", None))

    @admin.display(description=_("model version"))
    def version(self, run):
        version = ModelVersion.objects.filter(training_run=run).first()
        if version is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:personalization_modelversion_change", args=[version.pk]), version)

    @admin.display(description=_("error"))
    def error_trace(self, run):
        return format_html("<pre>{}</pre>", run.error) if run.error else "—"


__all__ = ["ModelVersionAdmin", "TrainingRunAdmin"]
