"""Self-describing checkpoints: one file (or bytes) rebuilds a fitted model with what it needs to serve.

A checkpoint holds the model kind, its config (or a baseline's params), weights (or a baseline's
fitted state), the vocabulary, metrics, the data window it learned from, the code version and the
torch version. It is written with torch.save and read with `weights_only=True`: only tensors and
plain Python values, never pickled code: a baseline's fitted state (TIFU-KNN's shopper vectors,
personal frequency's counts) is stored as dense tensors and lists, and a sparse tensor as its
indices, values and size, which loading checks before rebuilding it.
"""
import io
import os
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from personalization.ml import __version__ as CODE_VERSION
from personalization.ml.baselines import BASELINES
from personalization.ml.kinds import MODEL_KINDS, kind_of
from personalization.ml.sequences import Vocabulary

FORMAT = "personalization.ml.checkpoint/1"


@dataclass
class Checkpoint:
    model: object  # an nn.Module in eval mode, or a fitted baseline
    kind: str  # a key of models.MODEL_KINDS or baselines.BASELINES
    config: dict  # the model's config, or the baseline's params
    vocabulary: Vocabulary | None
    metrics: dict = field(default_factory=dict)
    data_window: dict = field(default_factory=dict)
    code_version: str = CODE_VERSION
    created_at: str = ""
    extra: dict = field(default_factory=dict)


def save(model, file=None, *, vocabulary=None, metrics=None, data_window=None, extra=None):
    """Writes `model` (a network or a fitted baseline) to `file` (a path or a binary file-like);
    returns the bytes when `file` is None."""
    if isinstance(model, torch.nn.Module):
        kind = kind_of(model)
        config = asdict(model.config)
        state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    elif getattr(model, "name", None) in BASELINES:
        kind = model.name
        config = {name: _storable(name, value) for name, value in model.params().items()}
        state = {name: _storable(name, value) for name, value in model.state().items()}
    else:
        raise ValueError(f"cannot checkpoint a {type(model).__name__}: not a known model or baseline")
    payload = {
        "format": FORMAT,
        "kind": kind,
        "config": config,
        "state": state,
        "vocabulary": list(vocabulary.items) if vocabulary is not None else None,
        "metrics": {str(k): _plain(v) for k, v in (metrics or {}).items()},
        "data_window": dict(data_window or {}),
        "code_version": CODE_VERSION,
        "torch_version": str(torch.__version__),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "extra": dict(extra or {}),
    }
    if file is None:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return buffer.getvalue()
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as handle:
            torch.save(payload, handle)
    else:
        torch.save(payload, file)
    return None


def load(file, map_location="cpu"):
    """A Checkpoint from bytes, a path or a binary file-like; the model is rebuilt from its config."""
    source = io.BytesIO(file) if isinstance(file, (bytes, bytearray, memoryview)) else file
    try:
        payload = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"not a readable model checkpoint: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} checkpoint")
    kind, config, state = payload["kind"], payload["config"], payload["state"]
    if kind not in MODEL_KINDS and kind not in BASELINES:
        raise ValueError(f"unknown model kind {kind!r} in the checkpoint")
    try:
        if kind in MODEL_KINDS:
            model_class, config_class = MODEL_KINDS[kind]
            model = model_class(config_class(**config))
            model.load_state_dict(state)
            model.eval()
        else:
            model = BASELINES[kind].from_state(config, {name: _restored(value) for name, value in state.items()})
    except (RuntimeError, TypeError, KeyError, ValueError) as error:
        raise ValueError(
            f"the {kind} weights or state do not fit this code's model (checkpoint code version "
            f"{payload['code_version']}, this code {CODE_VERSION}): {error}"
        ) from error
    vocabulary = Vocabulary(tuple(payload["vocabulary"])) if payload["vocabulary"] is not None else None
    return Checkpoint(
        model=model,
        kind=kind,
        config=config,
        vocabulary=vocabulary,
        metrics=payload["metrics"],
        data_window=payload["data_window"],
        code_version=payload["code_version"],
        created_at=payload["created_at"],
        extra=payload["extra"],
    )


def _storable(name, value):
    """A baseline's state entry as torch.load(weights_only=True) reads it back."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.layout == torch.sparse_coo:
            value = value.coalesce()
            return {"layout": "sparse_coo", "indices": value.indices(), "values": value.values(), "size": list(value.shape)}
        if value.layout == torch.sparse_csr:
            parts = {"crow_indices": value.crow_indices(), "col_indices": value.col_indices(), "values": value.values()}
            return {"layout": "sparse_csr", **parts, "size": list(value.shape)}
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype.kind in "biuf" else [str(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_storable(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _storable(name, v) for k, v in value.items()}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise ValueError(f"cannot checkpoint the state entry {name!r}: a {type(value).__name__} is not a tensor or plain value")


def _restored(value):
    """A stored state entry as the baseline gave it (a sparse tensor rebuilt, its indices checked)."""
    if isinstance(value, dict) and value.get("layout") == "sparse_coo":
        return torch.sparse_coo_tensor(value["indices"], value["values"], value["size"], check_invariants=True).coalesce()
    if isinstance(value, dict) and value.get("layout") == "sparse_csr":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                value["crow_indices"], value["col_indices"], value["values"], value["size"], check_invariants=True
            )
    if isinstance(value, dict):
        return {k: _restored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restored(v) for v in value]
    return value


def _plain(value):
    """A metric as a plain float/int/str (numpy scalars would not load with weights_only)."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


__all__ = ["FORMAT", "Checkpoint", "save", "load"]
