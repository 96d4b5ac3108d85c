"""A/B experiments on placements: arms that change what a placement shows, and who saw which arm."""
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from personalization.cache import cache
from personalization.models.placements import MAX_LIMIT, Placement, Strategy

__all__ = ["Experiment", "ExperimentArm", "ExperimentExposure", "ExperimentMetric"]


class ExperimentMetric(models.TextChoices):
    CONVERSION = "conversion", _("conversion (shoppers who buy)")
    ADD_TO_CART = "add_to_cart", _("add-to-cart rate (shoppers who add to the cart)")
    CLICK_THROUGH = "click_through", _("click-through (shoppers who click a recommendation)")


class Experiment(models.Model):
    """Shoppers of a placement split between arms, each arm showing them something else.

    Each shopper is given one arm, the same on every visit (and after they sign in), and is counted
    from the first time the placement is served to them. The first arm is the reference the others
    are compared with. The decision waits for a fixed number of shoppers per arm, computed up front.
    """

    Metric = ExperimentMetric

    placement = models.ForeignKey(
        Placement, on_delete=models.CASCADE, related_name="experiments", verbose_name=_("placement")
    )
    name = models.CharField(_("name"), max_length=100)
    primary_metric = models.CharField(
        _("decided by"), max_length=16, choices=ExperimentMetric.choices, default=ExperimentMetric.CONVERSION
    )
    baseline_rate = models.DecimalField(
        _("expected rate of the reference arm"),
        max_digits=5,
        decimal_places=4,
        default="0.05",
        validators=[MinValueValidator(0.0001), MaxValueValidator(0.9999)],
        help_text=_("Your estimate of the decisive rate today, as a fraction: 0.05 for 5%."),
    )
    minimum_lift = models.DecimalField(
        _("smallest change worth finding"),
        max_digits=5,
        decimal_places=3,
        default="0.20",
        validators=[MinValueValidator(0.01), MaxValueValidator(10)],
        help_text=_(
            "Relative to the expected rate: 0.20 finds a change of a fifth (20%) or more. Smaller changes need many more shoppers."
        ),
    )
    outcome_days = models.PositiveSmallIntegerField(
        _("days counted per shopper"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("What a shopper does this many days after first seeing the placement counts for their arm."),
    )
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    stops_at = models.DateTimeField(_("stops"), null=True, blank=True, help_text=_("Blank: runs until you stop it."))
    applied_arm = models.ForeignKey(
        "ExperimentArm",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("arm made the placement's configuration"),
    )
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")

    def __str__(self):
        return self.name

    def clean(self):
        if self.stops_at is not None and self.starts_at is not None and self.stops_at <= self.starts_at:
            raise ValidationError({"stops_at": _("An experiment must stop after it starts.")})
        if self.placement_id is None or self.starts_at is None:
            return
        overlapping = Experiment.objects.filter(placement_id=self.placement_id).exclude(pk=self.pk)
        overlapping = overlapping.filter(models.Q(stops_at__isnull=True) | models.Q(stops_at__gt=self.starts_at))
        if self.stops_at is not None:
            overlapping = overlapping.filter(starts_at__lt=self.stops_at)
        if overlapping.exists():
            raise ValidationError(
                {"starts_at": _("Another experiment runs on this placement at that time: one at a time per placement.")}
            )

    def is_running(self, now=None):
        now = now or timezone.now()
        return self.starts_at <= now and (self.stops_at is None or now < self.stops_at)

    @staticmethod
    def cache_key(placement_slug):
        """Where the running experiment of a placement is cached (services.experiments), by the slug
        ranking reads placements by."""
        return f"personalization:experiment:{placement_slug}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        cache.delete(self.cache_key(self.placement.slug))

    def delete(self, *args, **kwargs):
        cache.delete(self.cache_key(self.placement.slug))
        return super().delete(*args, **kwargs)


class ExperimentArm(models.Model):
    """One way of filling the placement: its strategy, number of products or model version changed,
    or nothing shown."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms", verbose_name=_("experiment"))
    name = models.CharField(_("name"), max_length=100)
    share = models.PositiveSmallIntegerField(
        _("share of shoppers"),
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Relative to the other arms: 50 and 50 split shoppers in halves."),
    )
    strategy = models.CharField(
        _("strategy"), max_length=24, choices=Strategy.choices, blank=True, help_text=_("Blank: the placement's.")
    )
    limit = models.PositiveSmallIntegerField(
        _("products shown"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LIMIT)],
        help_text=_("Blank: the placement's."),
    )
    model_version = models.ForeignKey(
        "personalization.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("model version"),
        help_text=_(
            "Blank: the active version. Else this trained version (e.g. one kept inactive) serves these shoppers"
            " wherever the strategy reads a model of its kind."
        ),
    )
    show_nothing = models.BooleanField(
        _("no recommendations"), default=False, help_text=_("A control group: the placement shows these shoppers nothing.")
    )

    class Meta:
        ordering = ["experiment", "id"]
        verbose_name = _("arm")
        verbose_name_plural = _("arms")

    def __str__(self):
        return self.name

    def clean(self):
        if self.show_nothing and (self.strategy or self.limit or self.model_version_id):
            raise ValidationError(_("An arm that shows nothing has no strategy, number of products or model version."))

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        cache.delete(Experiment.cache_key(self.experiment.placement.slug))

    def delete(self, *args, **kwargs):
        cache.delete(Experiment.cache_key(self.experiment.placement.slug))
        return super().delete(*args, **kwargs)


class ExperimentExposure(models.Model):
    """A shopper the experiment's placement was served to, with their arm: recorded once per shopper.

    `shopper_key` is "u<user id>" or "s<session key>"; a session's row gets the user id when the
    shopper signs in, and keeps its arm."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    arm = models.ForeignKey(ExperimentArm, on_delete=models.CASCADE, related_name="exposures", verbose_name=_("arm"))
    shopper_key = models.CharField(max_length=48)
    user_id = models.CharField(_("user id"), max_length=64, blank=True, db_index=True)
    session_key = models.CharField(_("session key"), max_length=40, blank=True)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)

    class Meta:
        ordering = ["first_seen", "id"]
        constraints = [models.UniqueConstraint(fields=["experiment", "shopper_key"], name="pers_exposure_once")]
        verbose_name = _("exposure")
        verbose_name_plural = _("exposures")
