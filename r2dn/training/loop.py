"""`fit`: train a model on input/output records, in either of two modes.

``mode="carried"`` (the default) is truncated backpropagation through time: one epoch starts
every record from the zero state and runs them, as one batch, through consecutive segments of
``segment_length`` steps; each segment is one optimiser step, and the final state of a segment
(without its gradient) is the initial state of the next. The loss of a segment is the mean over
time of the squared error summed over records and outputs. This is the protocol of the R2DN
paper's F-16 experiment. ``mode="windowed"`` takes each optimiser step on a minibatch of random
windows from any number of records (`r2dn.training.windows`). Either way validation is a free
simulation over whole records, and the epochs are run by `r2dn.training.engine.run_epochs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jaxtyping import Array, Float, Int

from r2dn._threads import limit_blas_threads
from r2dn.data import Normalizer, SequenceData
from r2dn.io import TrainedModel
from r2dn.models import AbstractRecurrentModel
from r2dn.registry import ModelSpec
from r2dn.training import parallel
from r2dn.training.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    RunState,
    build_encoder,
    load_checkpoint,
    save_checkpoint,
    uses_encoder,
)
from r2dn.training.config import TrainConfig, full_precision
from r2dn.training.engine import (
    Epoch,
    EpochReport,
    Schedule,
    Trainee,
    TrainingDiverged,
    TrainingInterrupted,
    run_epochs,
)
from r2dn.training.windows import Encoder, WindowLoss, WindowSampler, padded

__all__ = [
    "EpochReport",
    "FitResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "fit",
    "mean_squared_error",
]

Records = SequenceData | Sequence[SequenceData]


@dataclass(frozen=True, eq=False)
class FitResult:
    """The outcome of `fit`.

    Attributes:
        trained: the model (the best validated one if ``config.restore_best``) with its spec,
            normaliser, sampling time and channel names, ready for `r2dn.io.save_model`.
        state: the run's progress: epochs done, history, best epoch, why it stopped.
        config: the settings it ran with.
        metadata: what the caller attached to the run.
        encoder: the initial-state encoder trained with the model (windowed mode with
            ``initial_state="encoder"``; it works in the model's normalised units), else
            ``None``. Keep it with `save_encoder`.
    """

    trained: TrainedModel
    state: RunState
    config: TrainConfig
    metadata: Mapping[str, Any] = field(default_factory=dict)
    encoder: Encoder | None = None


def mean_squared_error(
    y: Float[Array, "batch T ny"], y_hat: Float[Array, "batch T ny"]
) -> Float[Array, ""]:
    """The loss: squared error summed over records and outputs, averaged over time."""
    return jnp.sum((y_hat - y) ** 2) / y.shape[-2]


@dataclass(frozen=True)
class SegmentLoss:
    """The carried-state loss of the segment ``[start, start + length)`` from state ``x``.

    For `r2dn.training.steps.train_steps`: ``loss(model, x, start, u, y) -> (value, x_T)``.
    """

    length: int

    def __call__(self, model, x, start, u, y):
        u_seg, y_seg = (jax.lax.dynamic_slice_in_dim(a, start, self.length, axis=1) for a in (u, y))
        x_T, y_hat = model.simulate(x, u_seg)  # direct → explicit parameters once per segment
        return mean_squared_error(y_seg, y_hat), x_T


#: Optimiser steps per compiled call (at most; a divisor of the steps per epoch), so that
#: Python's dispatch costs once per call rather than once per optimiser step.
SEGMENTS_PER_CALL = 16


@eqx.filter_jit
def _validation_loss(model, u, y, washout: int):
    """`mean_squared_error` of a free simulation from the zero state, after ``washout`` steps."""
    _, y_hat = model.simulate(model.initial_state(u.shape[0]), u)
    return mean_squared_error(y[:, washout:], y_hat[:, washout:])


def fit(
    spec: ModelSpec,
    train: Records,
    validation: Records | None = None,
    config: TrainConfig | None = None,
    *,
    normalizer: Normalizer | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    optimizer: optax.GradientTransformation | None = None,
    callbacks: Sequence[Callable[[EpochReport], None]] = (),
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train a model of kind and size ``spec`` on ``train`` (carried-state or windowed).

    Args:
        spec: the model to build (its ``nu``/``ny`` must match the data); initialised from
            ``config.seed``.
        train: training records in physical units: a `SequenceData`, or several with the same
            channels (of different lengths in windowed mode; stacked into one batch in the
            carried mode, which needs equal lengths).
        validation: records for validation (free simulation from the zero state, first
            ``config.washout`` steps left out), for early stopping and ``restore_best``;
            several `SequenceData` give the sum of their losses.
        config: training settings; default `TrainConfig()` (the paper's F-16 protocol).
        normalizer: z-score applied to all data; default: fitted on ``train``.
        run_dir: if given, a checkpoint is written there (atomically) after every epoch.
        resume: continue the run checkpointed in ``run_dir`` where it stopped, with the same
            spec, data and settings (only ``config.epochs`` may differ).
        optimizer: any Optax transformation, used instead of the one ``config`` names
            (clipping included), e.g. ``optax.chain(optax.adam(1e-3),
            optax.contrib.reduce_on_plateau())``: every update is told the loss as ``value``.
            Pass the same one when resuming.
        callbacks: called with an `EpochReport` after each epoch and its checkpoint.
        metadata: JSON-serialisable notes stored in the checkpoint (e.g. the data source).
        progress: show a progress bar with the loss and learning rate.

    Raises:
        TrainingDiverged: the loss or a gradient became NaN or infinite; the message names
            the epoch and step, and the last checkpoint is left intact.
    """
    limit_blas_threads()  # one BLAS thread for direct → explicit's LAPACK: see r2dn._threads
    config = TrainConfig() if config is None else config
    train, validation = _records(train), _records(validation)
    _check_data(spec, train, validation, config)
    if config.mode == "carried":
        train = [SequenceData.concat_batch(train)]
    normalizer = _fit_normalizer(train) if normalizer is None else normalizer
    fresh = _fresh_checkpoint(spec, train[0], normalizer, config, metadata)
    plan = (_carried if config.mode == "carried" else _windowed)(
        [normalizer.apply(d) for d in train], config, fresh.run.model
    )
    schedule = config.schedule(plan.steps) if optimizer is None else None
    optimizer = config.optimizer_for(plan.steps) if optimizer is None else optimizer
    checkpoint_path = None if run_dir is None else Path(run_dir) / CHECKPOINT
    fresh = dataclasses.replace(fresh, opt_state=optimizer.init(_parameters(fresh)))
    checkpoint = _resume(checkpoint_path, optimizer, fresh) if resume else fresh
    trainee = _trainee(checkpoint)
    trainee.model, trainee.opt_state = parallel.replicate(
        (trainee.model, trainee.opt_state), plan.mesh
    )
    with full_precision(config.matmul_precision):
        run_epochs(
            trainee,
            optimizer,
            plan.epoch,
            Schedule(
                epochs=config.epochs,
                steps=plan.steps,
                validate_every=config.validate_every,
                patience=config.patience,
                lr=schedule,
                progress=progress,
                unit=plan.unit,
            ),
            validate=_validator(
                normalizer, validation, plan.mesh, config.washout, fresh.run.model.dtype
            ),
            save=None if checkpoint_path is None else _saver(checkpoint_path, checkpoint),
            checkpoint=checkpoint_path,
            callbacks=callbacks,
            view=_model_of,
        )
    return _result(checkpoint, trainee, config)


def _result(checkpoint: Checkpoint, trainee: Trainee, config: TrainConfig) -> FitResult:
    """The final (or, with ``restore_best``, the best) model and encoder, on one device."""
    final = trainee.model
    if config.restore_best and trainee.best is not None:
        final = trainee.best
    encoder = _gathered(final[1]) if isinstance(final, tuple) else None
    run = dataclasses.replace(checkpoint.run, model=_gathered(_model_of(final)))
    return FitResult(run, trainee.state, config, checkpoint.metadata, encoder)


@dataclass(frozen=True, eq=False)
class _Plan:
    """How one mode trains: steps per epoch, the device mesh and each epoch's work."""

    steps: int
    mesh: Mesh
    epoch: Callable[[int], Epoch]
    unit: str


def _carried(train: list[SequenceData], config: TrainConfig, model) -> _Plan:
    """Consecutive segments of the records, one batch, state carried; the same every epoch."""
    (data,) = train
    steps = data.length // config.segment_length
    mesh = parallel.batch_mesh(data.batch, config.devices)
    u, y = parallel.shard_batch(_arrays(data, model.dtype), mesh)
    x0 = parallel.shard_batch(model.initial_state(data.batch), mesh)
    starts = config.segment_length * jnp.arange(steps, dtype=jnp.int32)
    work = Epoch(SegmentLoss(config.segment_length), _calls(starts), x0, (u, y))
    return _Plan(steps, mesh, lambda epoch: work, "segment")


def _windowed(train: list[SequenceData], config: TrainConfig, model) -> _Plan:
    """Random windows of all records; epoch ``e`` runs global steps ``e·steps ...``."""
    records = [(d.u[i], d.y[i]) for d in train for i in range(d.batch)]
    context = config.encoder_context if uses_encoder(config) else 0
    sampler = WindowSampler(
        tuple(len(u) for u, _ in records), config.window_length, context, config.batch_size
    )
    samples = sum(sampler.lengths)
    steps = config.steps_per_epoch or max(1, samples // (config.batch_size * config.window_length))
    mesh = parallel.batch_mesh(config.batch_size, config.devices)
    key = jax.random.fold_in(jax.random.key(config.seed), 2)
    u, y = (jnp.asarray(padded([r[i] for r in records]), model.dtype) for i in (0, 1))
    data = parallel.replicate((key, u, y), mesh)
    loss = WindowLoss(sampler, config.burn_in, mesh)

    def epoch(e: int) -> Epoch:
        return Epoch(
            loss, _calls(jnp.arange(e * steps, (e + 1) * steps, dtype=jnp.int32)), None, data
        )

    return _Plan(steps, mesh, epoch, "batch")


def _calls(batches: Int[Array, " steps"]) -> Int[Array, "calls per_call"]:
    """The steps of an epoch grouped into compiled calls of at most `SEGMENTS_PER_CALL`."""
    per_call = max(n for n in range(1, SEGMENTS_PER_CALL + 1) if len(batches) % n == 0)
    return batches.reshape(-1, per_call)


def _fresh_checkpoint(spec, train: SequenceData, normalizer, config, metadata) -> Checkpoint:
    """A new run: the model (and encoder) initialised from ``config.seed``, no optimiser state."""
    model = spec.build(jax.random.key(config.seed))
    run = TrainedModel(
        model=model,
        spec=spec,
        normalizer=normalizer,
        dt=train.dt,
        input_names=train.input_names,
        output_names=train.output_names,
    )
    encoder = build_encoder(spec, config, model.dtype) if uses_encoder(config) else None
    return Checkpoint(run, config, RunState(), None, None, dict(metadata or {}), encoder)


def _trainee(checkpoint: Checkpoint) -> Trainee:
    """What is trained: the model, or the pair (model, encoder)."""
    if checkpoint.encoder is None:
        model, best = checkpoint.run.model, checkpoint.best_model
    else:
        model = (checkpoint.run.model, checkpoint.encoder)
        best = (
            None
            if checkpoint.best_model is None
            else (
                checkpoint.best_model,
                checkpoint.best_encoder,
            )
        )
    return Trainee(model, checkpoint.opt_state, best, checkpoint.state)


def _parameters(checkpoint: Checkpoint):
    return eqx.filter(_trainee(checkpoint).model, eqx.is_inexact_array)


def _model_of(trained) -> AbstractRecurrentModel:
    return trained[0] if isinstance(trained, tuple) else trained


def _saver(path: Path, checkpoint: Checkpoint) -> Callable[[Trainee], None]:
    """Writes the checkpoint of a trainee (after each epoch)."""

    def save(trainee: Trainee) -> None:
        model, best = trainee.model, trainee.best
        pair = isinstance(model, tuple)
        save_checkpoint(
            path,
            dataclasses.replace(
                checkpoint,
                run=dataclasses.replace(checkpoint.run, model=_model_of(model)),
                state=trainee.state,
                opt_state=trainee.opt_state,
                best_model=None if best is None else _model_of(best),
                encoder=model[1] if pair else None,
                best_encoder=best[1] if pair and best is not None else None,
            ),
        )

    return save


def _validator(normalizer, validation: list[SequenceData], mesh, washout: int, dtype):
    """The validation loss of a trainee: the sum over the groups of validation records."""
    if not validation:
        return None
    placed = []
    for data in validation:
        place = parallel.shard_batch if data.batch % mesh.size == 0 else parallel.replicate
        placed.append(place(_arrays(normalizer.apply(data), dtype), mesh))

    def validate(trained) -> float:
        model = _model_of(trained)
        return sum(float(_validation_loss(model, u, y, washout)) for u, y in placed)

    return validate


def _records(data: Records | None) -> list[SequenceData]:
    if data is None:
        return []
    return [data] if isinstance(data, SequenceData) else list(data)


def _fit_normalizer(train: list[SequenceData]) -> Normalizer:
    """z-score statistics over every training record."""
    if len(train) == 1:
        return Normalizer.fit(train[0])
    u, y = (
        np.concatenate([getattr(d, k).reshape(-1, getattr(d, k).shape[-1]) for d in train])
        for k in ("u", "y")
    )
    return Normalizer.from_record(u, y)


def _resume(
    path: Path | None, optimizer: optax.GradientTransformation, fresh: Checkpoint
) -> Checkpoint:
    """The checkpoint at ``path``, if it is of the run ``fresh`` describes."""
    if path is None:
        raise ValueError("resume=True needs the run_dir of the run to continue")
    if not path.is_file():
        raise FileNotFoundError(
            f"cannot resume: no checkpoint {CHECKPOINT} in {path.parent}; start a new run "
            "without resume"
        )
    saved = load_checkpoint(path, optimizer)
    _check_same_run(saved, fresh)
    return dataclasses.replace(saved, config=fresh.config)


def _gathered(tree):
    """``tree`` gathered onto the default device."""
    device = jax.devices()[0]
    return jax.tree.map(lambda a: jax.device_put(a, device) if eqx.is_array(a) else a, tree)


def _arrays(data: SequenceData, dtype) -> tuple[Array, Array]:
    return jnp.asarray(data.u, dtype=dtype), jnp.asarray(data.y, dtype=dtype)


def _check_data(
    spec: ModelSpec, train: list[SequenceData], validation: list[SequenceData], config: TrainConfig
) -> None:
    if not train:
        raise ValueError("fit needs at least one SequenceData of training records")
    first = train[0]
    if (spec.nu, spec.ny) != (first.nu, first.ny):
        raise ValueError(
            f"the model has nu={spec.nu} inputs and ny={spec.ny} outputs but the training data "
            f"has {first.nu} ({', '.join(first.input_names)}) and {first.ny} "
            f"({', '.join(first.output_names)})"
        )
    for i, data in enumerate(train[1:] + validation, start=1):
        what = f"training records {i}" if i < len(train) else "validation"
        if (data.input_names, data.output_names) != (first.input_names, first.output_names):
            raise ValueError(
                f"{what} channels {data.input_names} → {data.output_names} differ from the "
                f"training channels {first.input_names} → {first.output_names}"
            )
    if config.mode == "carried":
        lengths = sorted({data.length for data in train})
        if len(lengths) > 1:
            raise ValueError(
                f"the carried mode trains the records as one batch, so they need one length; "
                f"got lengths {lengths}. Use TrainConfig(mode='windowed') for records of "
                "different lengths"
            )
        if config.segment_length > first.length:
            raise ValueError(
                f"segment_length {config.segment_length} exceeds the training records' length "
                f"{first.length}; use at most {first.length}"
            )
    for data in validation:
        if config.washout >= data.length:
            raise ValueError(
                f"washout {config.washout} leaves nothing of the validation records "
                f"({data.length} steps); use a smaller washout"
            )


def _check_same_run(saved: Checkpoint, fresh: Checkpoint) -> None:
    """Resuming must not change the run: only the number of epochs may differ."""
    settings = {
        "training settings": (saved.config.to_dict(), fresh.config.to_dict()),
        "metadata": (dict(saved.metadata), dict(fresh.metadata)),
    }
    for name, header in saved.run.header().items():
        settings[name] = (header, fresh.run.header()[name])
    settings["training settings"][0]["epochs"] = settings["training settings"][1]["epochs"]
    changed = {name: pair for name, pair in settings.items() if pair[0] != pair[1]}
    if changed:
        details = "; ".join(f"{name}: saved {a}, now {b}" for name, (a, b) in changed.items())
        raise ValueError(
            f"cannot resume: the run was started with different settings ({details}). Resume "
            "with the settings and data it was started with (only epochs may change; a changed "
            "normalizer means changed data), or start anew."
        )
