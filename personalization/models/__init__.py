"""What the plugin stores: shopper events and privacy choices."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class EventKind(models.TextChoices):
    VIEW = "view", _("product view")
    CART_ADD = "cart_add", _("added to cart")
    CART_REMOVE = "cart_remove", _("removed from cart")
    PURCHASE = "purchase", _("purchase")
    IMPRESSION = "impression", _("recommendation impression")
    CLICK = "click", _("recommendation click")


class EventSource(models.TextChoices):
    LIVE = "live", _("live store")
    IMPORT = "import", _("CSV import")
    DEMO = "demo", _("synthetic demo data")


class EventQuerySet(models.QuerySet):
    def with_line_total(self):
        """Annotates `line_total`, quantity x unit price (the dashboard's attributed revenue chart)."""
        return self.annotate(
            line_total=models.ExpressionWrapper(
                models.F("quantity") * models.F("unit_price"), output_field=models.DecimalField(max_digits=14, decimal_places=2)
            )
        )


class Event(models.Model):
    """One thing a shopper did. Anonymous shoppers are known by their session key until they log in.

    Quantities are deltas: a cart_add of 2 then a cart_remove of 1 leaves one in the cart.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices)
    # The signed-in shopper's user primary key, as text. Imported history may name shoppers who
    # have no account (yet); their events join the account whose key matches.
    user_id = models.CharField(_("user id"), max_length=64, blank=True)
    session_key = models.CharField(_("session key"), max_length=40, blank=True, db_index=True)
    # The host's product primary key, as text so any key type fits. Imported history may
    # name products the store no longer sells.
    product_id = models.CharField(_("product id"), max_length=64, db_index=True)
    category = models.CharField(_("category"), max_length=128, blank=True)
    quantity = models.IntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2, null=True, blank=True)
    order_id = models.CharField(_("order id"), max_length=64, blank=True, db_index=True)
    # The recommendation this event is attributed to (impressions, clicks and what follows them).
    recommendation_id = models.CharField(_("recommendation id"), max_length=64, blank=True)
    # Makes re-recording idempotent: "purchase:<order line id>", "import:<order id>:<product id>".
    dedupe_key = models.CharField(max_length=160, null=True, blank=True, unique=True, editable=False)
    source = models.CharField(_("source"), max_length=8, choices=EventSource.choices, default=EventSource.LIVE)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "created_at"], name="pers_event_user_time"),
            models.Index(fields=["kind", "created_at"], name="pers_event_kind_time"),
        ]
        verbose_name = _("event")
        verbose_name_plural = _("events")

    def __str__(self):
        return gettext("%(kind)s of product %(product)s by %(shopper)s") % {
            "kind": self.get_kind_display(),
            "product": self.product_id,
            "shopper": _shopper(self.user_id, self.session_key),
        }


def _shopper(user_id, session_key):
    """A shopper as the admin names them: "user 12", or "session " and the first 8 characters of the key."""
    if user_id:
        return gettext("user %(id)s") % {"id": user_id}
    return gettext("session %(key)s") % {"key": (session_key or "")[:8]}


class OptOut(models.Model):
    """A shopper who asked not to be tracked or personalized: a user, or an anonymous session."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personalization_opt_out",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session key"), max_length=40, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(session_key__isnull=False),
                name="pers_optout_has_owner",
            )
        ]
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")

    def __str__(self):
        return _shopper(self.user_id, self.session_key)


class ModelKind(models.TextChoices):
    NEXT_BASKET = "next_basket", _("next basket (CNN)")
    AUTOENCODER = "autoencoder", _("shopper autoencoder")
    PROPENSITY = "propensity", _("purchase propensity")


class Algorithm(models.TextChoices):
    """What a model version runs. A next-basket version holds whichever of the CNN, TIFU-KNN and
    personal frequency won its training run; the other kinds have one algorithm each."""

    NEXT_BASKET_CNN = "next_basket_cnn", _("next-basket CNN")
    TIFU_KNN = "tifu_knn", _("TIFU-KNN")
    PERSONAL_FREQUENCY = "personal_frequency", _("personal frequency")
    AUTOENCODER = "autoencoder", _("shopper autoencoder")
    PROPENSITY = "propensity", _("purchase propensity")


class TrainingRun(models.Model):
    """One attempt to train a model: what ran, where, how long, and how it ended."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        PROMOTED = "promoted", _("promoted")
        KEPT_INACTIVE = "kept_inactive", _("kept inactive")
        FAILED = "failed", _("failed")
        # Another run of the same model was still running: it was not started.
        SKIPPED = "skipped", _("skipped")

    kind = models.CharField(_("model"), max_length=16, choices=ModelKind.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    device = models.CharField(_("device"), max_length=16, blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Why it ended as it did: the promotion decision, or the error.
    message = models.TextField(_("message"), blank=True)
    error = models.TextField(_("error"), blank=True)
    triggered_by = models.CharField(_("triggered by"), max_length=64, blank=True)
    # Who runs it ("host:pid") and when it last said it was alive: a run whose process is gone, or
    # that went quiet, is marked failed ("worker lost") so the next run can start.
    worker = models.CharField(_("worker"), max_length=128, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # Two trainings of one model never run at once.
            models.UniqueConstraint(fields=["kind"], condition=models.Q(status="running"), name="pers_one_running_training")
        ]
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")

    def __str__(self):
        return gettext("%(model)s run %(number)s (%(status)s)") % {
            "model": self.get_kind_display(),
            "number": self.pk,
            "status": self.get_status_display(),
        }

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None


class ModelVersion(models.Model):
    """A trained model: its artifact (through Django's storage), metrics, data window and config.

    At most one version of each kind is active; serving uses it (see `registry`)."""

    kind = models.CharField(_("model"), max_length=16, choices=ModelKind.choices)
    number = models.PositiveIntegerField(_("version"))
    algorithm = models.CharField(_("algorithm"), max_length=32, choices=Algorithm.choices, blank=True)
    artifact = models.FileField(_("artifact"), upload_to="personalization/models/", max_length=255)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    config = models.JSONField(_("config"), default=dict, blank=True)
    data_window = models.JSONField(_("data window"), default=dict, blank=True)
    code_version = models.CharField(_("code version"), max_length=64, blank=True)
    training_run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    is_active = models.BooleanField(_("active"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    activated_at = models.DateTimeField(_("last activated"), null=True, blank=True)

    class Meta:
        ordering = ["kind", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "number"], name="pers_version_number"),
            models.UniqueConstraint(fields=["kind"], condition=models.Q(is_active=True), name="pers_one_active_version"),
        ]
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")

    def __str__(self):
        return gettext("%(model)s v%(number)s") % {"model": self.get_kind_display(), "number": self.number}


# Recommendation placements and personalized coupons live in their own modules.
from personalization.models.coupons import *  # noqa: E402,F401,F403
from personalization.models.experiments import *  # noqa: E402,F401,F403
from personalization.models.placements import *  # noqa: E402,F401,F403
from personalization.models.promotions import *  # noqa: E402,F401,F403
