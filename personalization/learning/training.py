"""Training: the store's purchases -> one prepared `fitting.TrainingData` -> each model kind fitted
and judged on held-out baskets -> registry.

Every run is a `TrainingRun`; every trained model is published as a `ModelVersion` that names its
algorithm. A next-basket run publishes whichever of the CNN, TIFU-KNN and personal frequency did
best on the held-out last baskets; a version is activated only when, on those same baskets, it also
beats the active version (re-scored on the new data, so the comparison is fair) and, for the
autoencoder and purchase propensity, their baselines. When a version that placements read was
activated, the recommendations of recently active shoppers are precomputed (`precompute.start`).

One run of a model at a time, on any number of hosts: the database lets only one run of a kind be
"running", and that run writes a heartbeat. A run whose process is gone, or whose heartbeat went
quiet, is marked failed ("worker lost") by the next run, which then starts. A run publishes its
version only at its end, so a killed run leaves the active version as it was.
"""
import contextlib
import logging
import math
import os
import socket
import threading
import time
import traceback
from datetime import timedelta

from celery import current_app
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from personalization import registry
from personalization.conf import settings
from personalization.learning import fitting
from personalization.learning.fitting import NotEnoughData, TrainingData, gate_metric
from personalization.learning.frames import purchase_frame
from personalization.ml.train import choose_device
from personalization.models import Algorithm, ModelKind, TrainingRun
from personalization.serving import precompute

logger = logging.getLogger("personalization.training")

#: The Celery task that retrains, queued by name (the admin does not import the tasks).
RETRAIN_TASK = "personalization.tasks.retrain"

#: A running training writes its heartbeat this often ...
HEARTBEAT_SECONDS = 30
#: ... and is presumed lost when it has been silent this long.
LEASE_SECONDS = 5 * 60
_running_here = set()  # the TrainingRun ids this process is training now


class LeaseLost(RuntimeError):
    """This run was presumed lost (no heartbeat) and may have been superseded: it must not publish."""


def _name(algorithm):
    return str(Algorithm(algorithm).label) if algorithm in Algorithm.values else str(algorithm)


def standings(outcome):
    """[(who, the new version's value, theirs)] on the gate metric, for everything it was compared
    with: the other algorithms, the baseline, the active version (on the shoppers it was judged on)."""
    name = outcome.gate_metric
    new = outcome.metrics.get(name)
    found = [(_name(algorithm), new, metrics.get(name)) for algorithm, metrics in outcome.rivals.items()]
    if outcome.baseline is not None:
        found.append(("the baseline", new, outcome.baseline.get(name)))
    if outcome.active is not None and outcome.active.get(name) is not None:
        found.append(("the active version", (outcome.versus or outcome.metrics).get(name), outcome.active[name]))
    return found


def margin(outcome):
    """(runner-up, by how much the new version beat it on the gate metric, negative when it lost),
    or (None, None) when it was compared with nothing measurable."""
    measured = [(who, new - theirs) for who, new, theirs in standings(outcome) if _finite(new) and _finite(theirs)]
    return min(measured, key=lambda pair: pair[1]) if measured else (None, None)


def decide(outcome):
    """(promote?, reason): beat the baseline and the active version on the gate metric. The other
    algorithms were beaten (or tied by a simpler one, or could not serve) when this one was chosen;
    the reason lists them."""
    name = outcome.gate_metric
    new, served = outcome.metrics.get(name), _name(outcome.algorithm)
    if not _finite(new):
        return False, f"kept inactive: {name} of the {served} could not be measured on the held-out baskets ({new})"
    reason = f"{served}: {name} {new:.4f}"
    others = [f"{_name(algorithm)} {_shown(metrics.get(name))}" for algorithm, metrics in outcome.rivals.items()]
    if others:
        reason += f" ({', '.join(others)})"
    if outcome.baseline is not None:
        base = outcome.baseline.get(name)
        if not _finite(base) or not new > base:
            return False, f"kept inactive: {name} {new:.4f} does not beat the baseline's {_shown(base)}"
        reason += f" beats the baseline's {base:.4f}"
    active = (outcome.active or {}).get(name)
    if active is not None:
        challenger = (outcome.versus or outcome.metrics)[name]
        where = ""
        if outcome.versus is not None and outcome.versus is not outcome.metrics:
            where = f" on the {outcome.active.get('shoppers')} shoppers with baskets it never saw"
        if not challenger > active:
            return False, f"kept inactive: {name} {challenger:.4f} does not beat the active version's {active:.4f}{where}"
        reason += f"; {challenger:.4f} beats the active version's {active:.4f}{where}"
    return True, f"promoted: {reason}"


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _shown(value):
    return f"{value:.4f}" if _finite(value) else str(value)


def queue(kinds, triggered_by=""):
    """Queues a retrain of `kinds` on a Celery worker (on PERSONALIZATION["TRAINING_QUEUE"] when
    set); returns its AsyncResult, or None when it could not be queued (logged)."""
    try:
        return current_app.send_task(
            RETRAIN_TASK, kwargs={"kinds": list(kinds), "triggered_by": triggered_by}, queue=settings.TRAINING_QUEUE or None
        )
    except Exception:
        logger.exception("Could not queue %s; is the Celery broker (CELERY_BROKER_URL) reachable?", RETRAIN_TASK)
        return None


def train(kinds=tuple(ModelKind.values), device="auto", triggered_by="", progress=None, frame=None):
    """Trains each kind in turn on the store's purchases (prepared once for all of them); returns
    their TrainingRuns. When a version that placements read was promoted, the recommendations of
    recently active shoppers are precomputed on the workers."""
    data = TrainingData(purchase_frame() if frame is None else frame)
    if progress:
        progress(f"Training {', '.join(kinds)} on {len(data.frame)} order lines ...")
    runs = [train_kind(kind, data, device, triggered_by, progress) for kind in kinds]
    if any(run.status == TrainingRun.Status.PROMOTED and run.kind in precompute.MODEL_KINDS for run in runs):
        precompute.start()
    return runs


def train_kind(kind, data, device="auto", triggered_by="", progress=None):
    """One TrainingRun of one model kind on a TrainingData: train, evaluate, publish, promote or keep
    inactive. While another run of `kind` is alive, nothing is trained and the run returned is "skipped"."""
    chosen = choose_device(device).type
    run = start_run(kind, chosen, triggered_by)
    if run.status == TrainingRun.Status.SKIPPED:
        logger.warning("%s: %s", run, run.message)
        return run
    started = time.perf_counter()
    with _heartbeat(run):
        _train_run(run, kind, data, chosen, progress)
    logger.info("%s in %.1fs: %s", run, time.perf_counter() - started, run.message)
    return run


def _train_run(run, kind, data, device, progress):
    try:
        outcome = fitting.TRAINERS[kind](data, device, progress)
        if not TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).exists():
            raise LeaseLost("this run was presumed lost (no heartbeat) while it trained; its model is not published")
        promote, reason = decide(outcome)
        runner_up, won_by = margin(outcome)
        version = registry.publish(
            kind,
            outcome.artifact,
            algorithm=outcome.algorithm,
            metrics={
                **outcome.metrics,
                "rivals": outcome.rivals,
                "baseline": outcome.baseline,
                "active_before": outcome.active,
                "runner_up": runner_up,
                "margin": won_by,
            },
            config=outcome.config,
            data_window=outcome.data_window,
            training_run=run,
        )
        if promote:
            registry.activate(version)
        _finish(run, TrainingRun.Status.PROMOTED if promote else TrainingRun.Status.KEPT_INACTIVE, message=reason)
    except NotEnoughData as exc:
        _finish(run, TrainingRun.Status.FAILED, message=f"not enough data: {exc}")
    except Exception as exc:
        logger.exception("Training %s failed", kind)
        _finish(run, TrainingRun.Status.FAILED, message=str(exc), error=traceback.format_exc())


# One run of a model at a time ------------------------------------------------------------------


def this_worker():
    """The running process as TrainingRun.worker names it: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def start_run(kind, device, triggered_by=""):
    """A new "running" TrainingRun of `kind`, which holds the lock on training it (after failing the
    runs whose worker is lost). While another run of `kind` is alive, a finished "skipped" run that
    names it is returned instead."""
    sweep_lost_runs([kind])
    now = timezone.now()
    fields = {"kind": kind, "device": device, "triggered_by": triggered_by, "worker": this_worker(), "started_at": now}
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(**fields, heartbeat_at=now)
    except IntegrityError:  # pers_one_running_training: another run of `kind` is running
        holder = TrainingRun.objects.filter(kind=kind, status=TrainingRun.Status.RUNNING).first()
        if holder is None:
            message = "skipped: another run of this model was starting"
        else:
            message = (
                f"skipped: run {holder.pk} of this model is still running (started {holder.started_at:%Y-%m-%d %H:%M:%S} "
                f"UTC on {holder.worker or 'an unknown worker'})"
            )
        return TrainingRun.objects.create(**fields, status=TrainingRun.Status.SKIPPED, finished_at=now, message=message)


def sweep_lost_runs(kinds=None, now=None):
    """Marks failed ("worker lost") the running runs whose process is gone (seen from its own host)
    or whose heartbeat is older than LEASE_SECONDS; returns them."""
    now = now or timezone.now()
    running = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING)
    if kinds is not None:
        running = running.filter(kind__in=list(kinds))
    lost = []
    for run in running:
        reason = _lost_reason(run, now)
        # Conditional on the heartbeat read: a run that just beat is alive after all.
        if reason and TrainingRun.objects.filter(
            pk=run.pk, status=TrainingRun.Status.RUNNING, heartbeat_at=run.heartbeat_at
        ).update(status=TrainingRun.Status.FAILED, finished_at=now, message=f"worker lost: {reason}"):
            logger.warning("%s: worker lost: %s", run, reason)
            lost.append(run)
    return lost


def _lost_reason(run, now):
    if run.worker == this_worker() and run.pk not in _running_here:
        return "this process no longer runs it (it ended without recording how)"
    host, _, pid = run.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
        return f"its process {pid} on {host} is gone"
    last = run.heartbeat_at or run.started_at
    if now - last > timedelta(seconds=LEASE_SECONDS):
        return f"no heartbeat since {last:%Y-%m-%d %H:%M:%S} UTC"
    return ""


def _process_alive(pid):
    if os.name != "posix":
        return True  # no cheap check here; the heartbeat decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: gone all the same
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@contextlib.contextmanager
def _heartbeat(run):
    """Writes the run's heartbeat every HEARTBEAT_SECONDS from a thread while the block runs."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:
                    logger.exception("Could not write the heartbeat of %s", run)
        finally:
            connections.close_all()  # this thread's connections

    thread = threading.Thread(target=beat, name=f"training-heartbeat-{run.pk}", daemon=True)
    _running_here.add(run.pk)
    thread.start()
    try:
        yield
    finally:
        _running_here.discard(run.pk)
        stop.set()
        thread.join(timeout=10)


def _finish(run, status, message="", error=""):
    run.status, run.message, run.error, run.finished_at = status, message, error, timezone.now()
    run.save(update_fields=["status", "message", "error", "finished_at"])


__all__ = [
    "train",
    "train_kind",
    "decide",
    "margin",
    "standings",
    "gate_metric",
    "start_run",
    "sweep_lost_runs",
    "NotEnoughData",
    "TrainingData",
]
