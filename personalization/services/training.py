"""Training: the store's purchases -> pandas -> `ml` -> held-out evaluation -> registry.

Every run is a `TrainingRun`; every trained model is published as a `ModelVersion`. A version is
activated only when, on the same held-out last baskets, it beats the personal-frequency baseline
and the active version (re-scored on the new data, so the comparison is fair).

One run of a model at a time, on any number of hosts: the database lets only one run of a kind be
"running", and that run writes a heartbeat. A run whose process is gone, or whose heartbeat went
quiet, is marked failed ("worker lost") by the next run, which then starts. A run publishes its
version only at its end, so a killed run leaves the active version as it was.
"""
import contextlib
import dataclasses
import json
import logging
import math
import os
import socket
import threading
import time
import traceback
from datetime import timedelta

import torch
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from personalization import registry
from personalization.ml import checkpoint, evaluate
from personalization.ml.baselines import PersonalFrequency
from personalization.ml.data import PAD, UNKNOWN, build_sequences, data_window, item_categories, prepare_frame, to_days
from personalization.ml.models import score_shoppers, segment_shoppers
from personalization.ml.train import choose_device, propensity_data
from personalization.ml.train import train_propensity as fit_propensity
from personalization.models import ModelKind, TrainingRun
from personalization.services.frames import purchase_frame

logger = logging.getLogger("personalization.training")

KS = (10, 20)
#: The network each model kind trains, for the `ml` evaluation helpers.
NETWORK = {ModelKind.NEXT_BASKET: "next_basket_cnn", ModelKind.AUTOENCODER: "autoencoder"}
PROPENSITY_HORIZON_DAYS = 7
#: A running training writes its heartbeat this often ...
HEARTBEAT_SECONDS = 30
#: ... and is presumed lost when it has been silent this long.
LEASE_SECONDS = 5 * 60
_running_here = set()  # the TrainingRun ids this process is training now


def plain(value):
    """Numbers, lists and dicts only (numpy scalars become Python ones): what a checkpoint loaded with
    weights_only=True and a JSONField both accept."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


class NotEnoughData(ValueError):
    """The store's data cannot train or judge this model yet; the message says what is missing."""


class LeaseLost(RuntimeError):
    """This run was presumed lost (no heartbeat) and may have been superseded: it must not publish."""


def gate_metric(kind):
    """The held-out metric a new version of `kind` must improve to be promoted."""
    return "auc" if kind == ModelKind.PROPENSITY else evaluate.selection_metric(NETWORK[kind], KS)


@dataclasses.dataclass
class Outcome:
    artifact: bytes
    metrics: dict  # the candidate's held-out metrics
    baseline: dict  # the baseline's metrics on the same held-out data
    active: dict | None  # the active version's metrics on the same held-out data (None: no active version)
    gate_metric: str
    config: dict
    data_window: dict
    # The candidate's metrics on the shoppers the active version was judged on, when that is a
    # subset (those whose held-out basket the active version never saw); None: the same as metrics.
    versus: dict | None = None


def load(artifact):
    """What serving and re-scoring load: the checkpoint of a published version."""
    return checkpoint.load(artifact)


class InVocabulary:
    """A network fitted on another vocabulary, scoring shoppers in this data's vocabulary; products
    it never saw score lowest. Lets the active version be judged on new data fairly."""

    def __init__(self, model, vocabulary):
        self.model, self.vocabulary = model, vocabulary

    def score(self, sequences, users=None):
        to_own = self.vocabulary.encode(list(sequences.vocabulary.items))
        to_own[PAD] = PAD
        remapped = dataclasses.replace(sequences, items=to_own[sequences.items], vocabulary=self.vocabulary)
        own_scores = score_shoppers(self.model, remapped, users)
        scores = own_scores[:, torch.from_numpy(to_own)]
        scores[:, torch.from_numpy(to_own == UNKNOWN)] = -torch.inf
        return scores


#: Fewer shoppers than this with baskets the active version never saw: it is judged on every shopper.
MIN_UNSEEN_SHOPPERS = 30


def unseen_by(version, split, frame):
    """The part of `split` whose held-out basket came after `version`'s data window (the active
    version was refitted on everything before, so it has seen the other held-out baskets and would
    be judged too kindly on them); None when too few shoppers, or no order times, to tell."""
    end = (version.data_window or {}).get("last_order_at")
    lines = prepare_frame(frame)
    if not end or lines["time"].isna().all():
        return None
    last_order = lines.groupby("user_id")["time"].max()
    times = last_order.reindex(split.history.user_ids[split.users]).to_numpy(dtype=float)
    keep = times > to_days(end)
    if keep.sum() < MIN_UNSEEN_SHOPPERS:
        return None
    return evaluate.Split(split.history, split.users[keep], [t for t, k in zip(split.targets, keep) if k])


def _judge_active(kind, split, frame, candidate, metrics):
    """(the active version's metrics, the candidate's metrics on the same shoppers), or (None, None)."""
    version = registry.active(kind)
    if version is None:
        return None, None
    try:
        with version.artifact.open("rb") as file:
            loaded = load(file.read())
        unseen = unseen_by(version, split, frame)
        on = split if unseen is None else unseen
        active = evaluate.score_split(InVocabulary(loaded.model, loaded.vocabulary), on, KS)
        versus = metrics if unseen is None else evaluate.score_split(candidate, unseen, KS)
        return {**active, "shoppers": len(on.users)}, versus
    except Exception:
        logger.exception("Cannot re-score the active %s; judging the new version against the baseline only", version)
        return None, None


def _split(frame):
    try:
        return evaluate.leave_last_out(frame, min_baskets=3)
    except ValueError as exc:
        raise NotEnoughData(str(exc)) from exc


def train_network(kind, frame, device, seed=0, progress=None):
    """Fits on history, judges on the held-out last baskets, then refits on everything to serve."""
    network = NETWORK[kind]
    split = _split(frame)
    build, _ = evaluate.candidates(network, seed)

    def on_device(recommender):
        recommender.train_config = dataclasses.replace(recommender.train_config, device=device)
        return recommender

    candidate = on_device(build({})).fit(split.history)
    metrics = evaluate.score_split(candidate, split, KS)
    baseline = evaluate.score_split(PersonalFrequency().fit(split.history), split, KS)
    active, versus = _judge_active(kind, split, frame, candidate, metrics)
    if progress:
        progress(f"{kind}: held-out {evaluate.selection_metric(network, KS)} {metrics[evaluate.selection_metric(network, KS)]:.4f}")

    sequences = build_sequences(frame)
    final = on_device(build({"epochs": max(1, candidate.result.best_epoch)})).fit(sequences)
    extra = {"baseline": baseline, "active": active}
    if kind == ModelKind.AUTOENCODER:
        categories = item_categories(frame, sequences.vocabulary)
        _, segments = segment_shoppers(final.result.model, sequences, categories)
        extra["segments"] = segments
    window = data_window(frame)
    artifact = checkpoint.save(
        final.result.model, vocabulary=sequences.vocabulary, metrics=metrics, data_window=window, extra=plain(extra)
    )
    return Outcome(
        artifact=artifact,
        metrics=metrics,
        baseline=baseline,
        active=active,
        gate_metric=gate_metric(kind),
        config=dataclasses.asdict(final.result.model.config),
        data_window=window,
        versus=versus,
    )


def _active_propensity():
    """The active propensity model, or None (also when it cannot load)."""
    version = registry.active(ModelKind.PROPENSITY)
    if version is None:
        return None
    try:
        with version.artifact.open("rb") as file:
            return load(file.read()).model
    except Exception:
        logger.exception("Cannot re-score the active %s; judging the new version against the baseline only", version)
        return None


def train_propensity(frame, device, seed=0, progress=None):
    active_model = _active_propensity()
    try:
        metrics = evaluate.evaluate_propensity(
            frame, horizon_days=PROPENSITY_HORIZON_DAYS, seed=seed, rivals={"active": active_model} if active_model else None
        )
        features, labels = propensity_data(prepare_frame(frame), PROPENSITY_HORIZON_DAYS)
        result = fit_propensity(features, labels, train_config=None)
    except ValueError as exc:
        raise NotEnoughData(str(exc)) from exc
    baseline = {"auc": max(metrics["recency_auc"], metrics["overdue_auc"])}
    active = {"auc": metrics.pop("active_auc")} if "active_auc" in metrics else None
    window = data_window(frame)
    artifact = checkpoint.save(result.model, metrics=metrics, data_window=window, extra={"features": list(features.columns)})
    return Outcome(artifact, metrics, baseline, active, "auc", dataclasses.asdict(result.model.config), window)


TRAINERS = {
    ModelKind.NEXT_BASKET: lambda frame, device, progress: train_network(ModelKind.NEXT_BASKET, frame, device, progress=progress),
    ModelKind.AUTOENCODER: lambda frame, device, progress: train_network(ModelKind.AUTOENCODER, frame, device, progress=progress),
    ModelKind.PROPENSITY: lambda frame, device, progress: train_propensity(frame, device, progress=progress),
}


def decide(outcome):
    """(promote?, reason): beat the baseline and the active version on the gate metric."""
    name = outcome.gate_metric
    new, base = outcome.metrics.get(name), outcome.baseline.get(name)
    if not _number(new) or not _number(base):
        return False, f"kept inactive: {name} could not be measured on the held-out baskets ({new} against {base})"
    if not new > base:
        return False, f"kept inactive: {name} {new:.4f} does not beat the baseline's {base:.4f}"
    active = (outcome.active or {}).get(name)
    if active is None:
        return True, f"promoted: {name} {new:.4f} beats the baseline's {base:.4f}"
    challenger = (outcome.versus or outcome.metrics)[name]
    where = ""
    if outcome.versus is not None and outcome.versus is not outcome.metrics:
        where = f" on the {outcome.active.get('shoppers')} shoppers with baskets it never saw"
    if not challenger > active:
        return False, f"kept inactive: {name} {challenger:.4f} does not beat the active version's {active:.4f}{where}"
    return True, f"promoted: {name} {new:.4f} beats the baseline's {base:.4f}; {challenger:.4f} beats the active version's {active:.4f}{where}"


def _number(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def train(kinds=tuple(ModelKind.values), device="auto", triggered_by="", progress=None, frame=None):
    """Trains each kind in turn on the store's purchases; returns their TrainingRuns."""
    frame = purchase_frame() if frame is None else frame
    return [train_kind(kind, frame, device, triggered_by, progress) for kind in kinds]


def train_kind(kind, frame, device="auto", triggered_by="", progress=None):
    """One TrainingRun of one model kind: train, evaluate, publish, promote or keep inactive.
    While another run of `kind` is alive, nothing is trained and the run returned is "skipped"."""
    chosen = choose_device(device).type
    run = start_run(kind, chosen, triggered_by)
    if run.status == TrainingRun.Status.SKIPPED:
        logger.warning("%s: %s", run, run.message)
        return run
    started = time.perf_counter()
    with _heartbeat(run):
        _train_run(run, kind, frame, chosen, progress)
    logger.info("%s in %.1fs: %s", run, time.perf_counter() - started, run.message)
    return run


def _train_run(run, kind, frame, device, progress):
    try:
        if frame.empty:
            raise NotEnoughData("there are no purchases to learn from yet")
        outcome = TRAINERS[kind](frame, device, progress)
        if not TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).exists():
            raise LeaseLost("this run was presumed lost (no heartbeat) while it trained; its model is not published")
        version = registry.publish(
            kind,
            outcome.artifact,
            metrics={**outcome.metrics, "baseline": outcome.baseline, "active_before": outcome.active},
            config=outcome.config,
            data_window=outcome.data_window,
            training_run=run,
        )
        promote, reason = decide(outcome)
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
    "load",
    "gate_metric",
    "start_run",
    "sweep_lost_runs",
    "NotEnoughData",
    "InVocabulary",
]
