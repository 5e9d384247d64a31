"""Checkpoints: a training run frozen at the end of an epoch, enough to continue it exactly.

A checkpoint holds the model, the optimiser state, the best model so far (and, for windowed
training with an encoder, the encoder and the best model's encoder), the run's settings
(`ModelSpec`, `TrainConfig`, normaliser, data description) and its progress (epoch, history,
early-stopping state), in one r2dn file written atomically (`r2dn.io.write_tree`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import PyTree

from r2dn.io import (
    TrainedModel,
    invalid_header,
    is_array_like,
    read_header,
    read_tree,
    write_tree,
)
from r2dn.models import AbstractRecurrentModel
from r2dn.registry import ModelSpec
from r2dn.training.config import TrainConfig
from r2dn.training.windows import Encoder

#: File name of the checkpoint inside a run directory.
CHECKPOINT = "checkpoint.r2dn"


@dataclass
class RunState:
    """The progress of a run: completed epochs, per-epoch history, early-stopping state.

    ``history`` has one entry per completed epoch in each of ``"train"`` (mean segment loss),
    ``"validation"`` (``None`` where the epoch was not validated), ``"lr"`` (learning rate at
    the epoch's first step; ``None`` for an optimiser given to `fit`) and ``"seconds"``
    (wall-clock time of the epoch).
    """

    epoch: int = 0
    history: dict[str, list] = field(
        default_factory=lambda: {"train": [], "validation": [], "lr": [], "seconds": []}
    )
    best_loss: float | None = None
    best_epoch: int | None = None
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        return cls(**data)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A training run at the end of epoch ``state.epoch``.

    Attributes:
        run: the current model with its spec, normaliser, sampling time and channel names.
        config: the run's settings.
        state: its progress.
        opt_state: the optimiser's state.
        best_model: the model of the best validation loss so far (``None`` before any).
        metadata: free-form JSON the caller attached (e.g. where the data came from).
        encoder: the initial-state encoder trained with the model (windowed mode with
            ``initial_state="encoder"``), else ``None``; the optimiser state is then that of
            the pair ``(model, encoder)``.
        best_encoder: the encoder of ``best_model``.
    """

    run: TrainedModel
    config: TrainConfig
    state: RunState
    opt_state: PyTree
    best_model: AbstractRecurrentModel | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    encoder: Encoder | None = None
    best_encoder: Encoder | None = None


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically: a crash mid-write keeps the previous one."""
    header = checkpoint.run.header() | {
        "config": checkpoint.config.to_dict(),
        "state": checkpoint.state.to_dict(),
        "metadata": dict(checkpoint.metadata),
    }
    tree = {
        "model": checkpoint.run.model,
        "opt_state": checkpoint.opt_state,
        "best_model": checkpoint.best_model,
    }
    if checkpoint.encoder is not None:
        tree |= {"encoder": checkpoint.encoder, "best_encoder": checkpoint.best_encoder}
    return write_tree(path, "checkpoint", header, tree)


def _is_parameter(leaf) -> bool:
    """A trainable (floating-point) leaf of a model skeleton, as `eqx.is_inexact_array`."""
    return is_array_like(leaf) and jnp.issubdtype(leaf.dtype, jnp.inexact)


def load_checkpoint(path: str | Path, optimizer: optax.GradientTransformation) -> Checkpoint:
    """Read a checkpoint; ``optimizer`` must be the one the run was trained with."""
    header = read_header(path, "checkpoint")
    with invalid_header(path, "checkpoint"):
        run = TrainedModel.from_header(header)
        config = TrainConfig.from_dict(header["config"])
        state = RunState.from_dict(header["state"])
    encoder = None
    if uses_encoder(config):
        encoder = eqx.filter_eval_shape(build_encoder, run.spec, config, run.model.dtype)
    trainee = run.model if encoder is None else (run.model, encoder)
    like = {
        "model": run.model,
        "opt_state": jax.eval_shape(optimizer.init, eqx.filter(trainee, _is_parameter)),
        "best_model": None if state.best_epoch is None else run.model,
    }
    if encoder is not None:
        like |= {"encoder": encoder, "best_encoder": None if state.best_epoch is None else encoder}
    tree = read_tree(path, "checkpoint", like)
    return Checkpoint(
        run=dataclasses.replace(run, model=tree["model"]),
        config=config,
        state=state,
        opt_state=tree["opt_state"],
        best_model=tree["best_model"],
        metadata=header.get("metadata", {}),
        encoder=tree.get("encoder"),
        best_encoder=tree.get("best_encoder"),
    )


def uses_encoder(config: TrainConfig) -> bool:
    """Whether a run of ``config`` trains an initial-state encoder beside its model."""
    return config.mode == "windowed" and config.initial_state == "encoder"


def build_encoder(spec: ModelSpec, config: TrainConfig, dtype, key=None) -> Encoder:
    """The encoder of a run of ``spec`` and ``config``, initialised from ``key``.

    Default key: derived from ``config.seed`` (the model itself uses ``key(seed)``).
    """
    key = jax.random.fold_in(jax.random.key(config.seed), 1) if key is None else key
    nx = spec.skeleton().nx
    return Encoder(
        spec.nu,
        spec.ny,
        nx,
        config.encoder_context,
        config.encoder_width,
        config.encoder_depth,
        key=key,
        dtype=dtype,
    )


def save_encoder(path: str | Path, encoder: Encoder, spec: ModelSpec, config: TrainConfig) -> Path:
    """Write ``encoder`` (of a run of ``spec`` and ``config``) to ``path`` atomically.

    The file sits beside the model file (`r2dn fit` is not told about it; e.g.
    ``save_encoder(run_dir / "encoder.r2dn", result.encoder, spec, result.config)``).
    """
    dtype = jax.tree.leaves(encoder)[0].dtype
    header = {"model": spec.to_dict(), "config": config.to_dict(), "dtype": str(dtype)}
    return write_tree(path, "encoder", header, encoder)


def load_encoder(path: str | Path) -> Encoder:
    """The encoder `save_encoder` wrote to ``path``."""
    header = read_header(path, "encoder")
    with invalid_header(path, "encoder"):
        spec = ModelSpec.from_dict(header["model"])
        config = TrainConfig.from_dict(header["config"])
        like = eqx.filter_eval_shape(build_encoder, spec, config, jnp.dtype(header["dtype"]))
    return read_tree(path, "encoder", like)
