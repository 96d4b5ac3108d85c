# One training of a model at a time: runs name their worker and heartbeat; a unique constraint on
# running runs is the lock. Runs left "running" by a killed process are failed first, but the newest.
from django.db import migrations, models
from django.utils import timezone


def fail_all_but_the_newest_running_run(apps, schema_editor):
    TrainingRun = apps.get_model("personalization", "TrainingRun")
    running = TrainingRun.objects.filter(status="running").order_by("kind", "-started_at", "-pk")
    newest = {}
    for run in running:
        if run.kind in newest:
            run.status, run.finished_at = "failed", timezone.now()
            run.message = "worker lost: still marked running when a newer run of this model started"
            run.save(update_fields=["status", "finished_at", "message"])
        else:
            newest[run.kind] = run


class Migration(migrations.Migration):

    dependencies = [
        ("personalization", "0004_merge_coupons_placements"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last heartbeat"),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="worker",
            field=models.CharField(blank=True, max_length=128, verbose_name="worker"),
        ),
        migrations.AlterField(
            model_name="trainingrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "running"),
                    ("promoted", "promoted"),
                    ("kept_inactive", "kept inactive"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                ],
                default="running",
                max_length=16,
                verbose_name="status",
            ),
        ),
        migrations.RunPython(fail_all_but_the_newest_running_run, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="trainingrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "running")), fields=("kind",), name="pers_one_running_training"
            ),
        ),
    ]
