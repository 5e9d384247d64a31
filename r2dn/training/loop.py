"""`fit`: truncated backpropagation through time with the state carried between segments.

One epoch starts every record from the zero state and runs them, as one batch, through
consecutive segments of ``segment_length`` steps; each segment is one optimiser step, and the
final state of a segment (without its gradient) is the initial state of the next. The loss of
a segment is the mean over time of the squared error summed over records and outputs. This is
the protocol of the R2DN paper's F-16 experiment.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PyTree
from tqdm.auto import tqdm

from r2dn.data import Normalizer, SequenceData
from r2dn.io import TrainedModel
from r2dn.models import AbstractRecurrentModel
from r2dn.registry import ModelSpec
from r2dn.training import parallel
from r2dn.training.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    RunState,
    load_checkpoint,
    save_checkpoint,
)
from r2dn.training.config import TrainConfig, full_precision


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or infinite; the last checkpoint is left as it was."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGTERM stopped `fit` after a compiled call; the message says what is kept.

    A `KeyboardInterrupt`, so that SIGTERM and SIGINT are handled alike by callers.

    Attributes:
        checkpoint: the checkpoint of the last completed epoch, or ``None`` if none was written.
    """

    def __init__(self, message: str, checkpoint: Path | None):
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass(frozen=True, eq=False)
class EpochReport:
    """What a callback of `fit` is told after each epoch (and its checkpoint)."""

    epoch: int  # 1-based
    train_loss: float
    validation_loss: float | None
    lr: float | None
    seconds: float
    model: AbstractRecurrentModel


@dataclass(frozen=True, eq=False)
class FitResult:
    """The outcome of `fit`.

    Attributes:
        trained: the model (the best validated one if ``config.restore_best``) with its spec,
            normaliser, sampling time and channel names, ready for `r2dn.io.save_model`.
        state: the run's progress: epochs done, history, best epoch, why it stopped.
        config: the settings it ran with.
        metadata: what the caller attached to the run.
    """

    trained: TrainedModel
    state: RunState
    config: TrainConfig
    metadata: Mapping[str, Any] = field(default_factory=dict)


def mean_squared_error(
    y: Float[Array, "batch T ny"], y_hat: Float[Array, "batch T ny"]
) -> Float[Array, ""]:
    """The loss: squared error summed over records and outputs, averaged over time."""
    return jnp.sum((y_hat - y) ** 2) / y.shape[-2]


def _segment_loss(model, x0, u, y):
    x_T, y_hat = model.simulate(x0, u)  # direct → explicit parameters once per segment
    return mean_squared_error(y, y_hat), x_T


#: Segments trained per compiled call (at most; a divisor of the segments per epoch), so that
#: Python's dispatch costs once per call rather than once per optimiser step.
SEGMENTS_PER_CALL = 16


@eqx.filter_jit
def _train_segments(
    model: AbstractRecurrentModel,
    opt_state: PyTree,
    x: Float[Array, "batch nx"],
    u: Float[Array, "batch T nu"],
    y: Float[Array, "batch T ny"],
    starts: Int[Array, " K"],
    length: int,
    optimizer: optax.GradientTransformation,
):
    """One optimiser step on each segment ``[start, start + length)`` in turn, state carried.

    Returns the model, optimiser state and final state, and per segment its loss and whether
    the loss and gradient are finite.
    """
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def step(carry, start):
        params, opt_state, x = carry
        u_seg, y_seg = (jax.lax.dynamic_slice_in_dim(a, start, length, axis=1) for a in (u, y))
        grad_fn = eqx.filter_value_and_grad(_segment_loss, has_aux=True)
        (loss, x_T), grads = grad_fn(eqx.combine(params, static), x, u_seg, y_seg)
        finite = jnp.isfinite(loss)
        for g in jax.tree.leaves(grads):
            finite &= jnp.all(jnp.isfinite(g))
        updates, opt_state = optimizer.update(grads, opt_state, params, value=loss)
        return (eqx.apply_updates(params, updates), opt_state, x_T), (loss, finite)

    (params, opt_state, x), (losses, finite) = jax.lax.scan(step, (params, opt_state, x), starts)
    return eqx.combine(params, static), opt_state, x, losses, finite


@eqx.filter_jit
def _validation_loss(model, u, y, washout: int):
    """`mean_squared_error` of a free simulation from the zero state, after ``washout`` steps."""
    _, y_hat = model.simulate(model.initial_state(u.shape[0]), u)
    return mean_squared_error(y[:, washout:], y_hat[:, washout:])


def fit(
    spec: ModelSpec,
    train: SequenceData,
    validation: SequenceData | None = None,
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
    """Train a model of kind and size ``spec`` on ``train`` by truncated BPTT.

    Args:
        spec: the model to build (its ``nu``/``ny`` must match the data); initialised from
            ``config.seed``.
        train: training records in physical units, trained on as one batch.
        validation: records for validation (free simulation from the zero state, first
            ``config.washout`` steps left out), for early stopping and ``restore_best``.
        config: training settings; default `TrainConfig()` (the paper's F-16 protocol).
        normalizer: z-score applied to all data; default: fitted on ``train``.
        run_dir: if given, a checkpoint is written there (atomically) after every epoch.
        resume: continue the run checkpointed in ``run_dir`` where it stopped, with the same
            spec, data and settings (only ``config.epochs`` may differ).
        optimizer: any Optax optimiser, used instead of the one ``config`` names (clipping
            included). Pass the same one when resuming.
        callbacks: called with an `EpochReport` after each epoch and its checkpoint.
        metadata: JSON-serialisable notes stored in the checkpoint (e.g. the data source).
        progress: show a progress bar with the loss and learning rate.

    Raises:
        TrainingDiverged: the loss or a gradient became NaN or infinite; the message names
            the epoch and segment, and the last checkpoint is left intact.
    """
    config = TrainConfig() if config is None else config
    _check_data(spec, train, validation, config)
    normalizer = Normalizer.fit(train) if normalizer is None else normalizer
    steps = train.length // config.segment_length
    schedule = config.schedule(steps) if optimizer is None else None
    optimizer = config.optimizer_for(steps) if optimizer is None else optimizer
    # Every optimiser is told the loss (``value=``), so `optax.contrib.reduce_on_plateau` works.
    optimizer = optax.with_extra_args_support(optimizer)
    checkpoint_path = None if run_dir is None else Path(run_dir) / CHECKPOINT
    run = TrainedModel(
        model=spec.build(jax.random.key(config.seed)),
        spec=spec,
        normalizer=normalizer,
        dt=train.dt,
        input_names=train.input_names,
        output_names=train.output_names,
    )
    checkpoint = Checkpoint(
        run=run,
        config=config,
        state=RunState(),
        opt_state=optimizer.init(eqx.filter(run.model, eqx.is_inexact_array)),
        best_model=None,
        metadata=dict(metadata or {}),
    )
    if resume:
        checkpoint = _resume(checkpoint_path, optimizer, checkpoint)
    state, best_model = checkpoint.state, checkpoint.best_model

    mesh = parallel.batch_mesh(train.batch, config.devices)
    model, opt_state = parallel.replicate((checkpoint.run.model, checkpoint.opt_state), mesh)
    u, y = parallel.shard_batch(_arrays(normalizer.apply(train), model.dtype), mesh)
    x0 = parallel.shard_batch(model.initial_state(train.batch), mesh)
    if validation is not None:
        place = parallel.shard_batch if validation.batch % mesh.size == 0 else parallel.replicate
        u_val, y_val = place(_arrays(normalizer.apply(validation), model.dtype), mesh)
    per_call = max(n for n in range(1, SEGMENTS_PER_CALL + 1) if steps % n == 0)
    starts = config.segment_length * jnp.arange(steps, dtype=jnp.int32).reshape(-1, per_call)
    log_lines = progress and not sys.stderr.isatty()  # a log gets one line per epoch, no bar
    bar = tqdm(
        total=config.epochs * steps,
        initial=min(state.epoch, config.epochs) * steps,
        disable=not progress or log_lines,
        unit="seg",
        dynamic_ncols=True,
    )
    first_epoch = state.epoch
    began = started = time.perf_counter()
    with bar, full_precision(config.matmul_precision), _SigtermAsInterrupt() as stop:
        while state.epoch < config.epochs and state.stop_reason is None:
            epoch = state.epoch + 1
            kept = _kept(checkpoint_path)
            lr = None if schedule is None else float(schedule(state.epoch * steps))
            bar.set_description(f"epoch {epoch}/{config.epochs}")
            x, losses, unread = x0, [], None
            # A call's segments are checked and recorded only once the next call is queued, so
            # that the device never waits for the host.
            for c in range(len(starts) + 1):
                if c < len(starts):
                    model, opt_state, x, loss, finite = _train_segments(
                        model, opt_state, x, u, y, starts[c], config.segment_length, optimizer
                    )
                read, unread = unread, (loss, finite)
                if stop.is_set():
                    raise TrainingInterrupted(
                        f"interrupted by SIGTERM in epoch {epoch}; {kept} kept",
                        _existing(checkpoint_path),
                    )
                if read is None:
                    continue
                read_losses, read_finite = np.asarray(read[0]), np.asarray(read[1])
                if not read_finite.all():
                    k = len(losses) + int(np.argmin(read_finite)) + 1
                    raise TrainingDiverged(
                        f"the loss or a gradient is NaN or infinite at epoch {epoch}, segment "
                        f"{k} of {steps} (loss {read_losses[k - len(losses) - 1]}); {kept} left "
                        "intact. Try a lower learning rate or gradient clipping."
                    )
                losses.extend(read_losses.tolist())
                postfix = _postfix(loss=losses[-1], lr=lr, val=_last(state, "validation"))
                bar.set_postfix(postfix, refresh=False)
                bar.update(len(read_losses))

            val_loss = None
            if validation is not None and (
                epoch % config.validate_every == 0 or epoch == config.epochs
            ):
                val_loss = float(_validation_loss(model, u_val, y_val, config.washout))
                if not math.isfinite(val_loss):
                    raise TrainingDiverged(
                        f"the validation loss is {val_loss} after epoch {epoch}; {kept} left intact"
                    )
                if state.best_loss is None or val_loss < state.best_loss:
                    state.best_loss, state.best_epoch, best_model = val_loss, epoch, model
            # An epoch's time runs from the end of the previous one's, so it includes validation
            # and the previous checkpoint write; the last write is added after the loop.
            seconds, started = time.perf_counter() - started, time.perf_counter()
            _record(state, np.mean(losses), val_loss, lr, seconds)
            if log_lines:
                print(_log_line(state, config.epochs, started - began), file=sys.stderr)
            _check_patience(state, config.patience)
            if checkpoint_path is not None:
                checkpoint = dataclasses.replace(
                    checkpoint,
                    run=dataclasses.replace(run, model=model),
                    opt_state=opt_state,
                    best_model=best_model,
                )
                save_checkpoint(checkpoint_path, checkpoint)
            report = EpochReport(epoch, state.history["train"][-1], val_loss, lr, seconds, model)
            for callback in callbacks:
                callback(report)

    if state.epoch > first_epoch:
        state.history["seconds"][-1] += time.perf_counter() - started
    final = best_model if config.restore_best and best_model is not None else model
    return FitResult(_with_model(run, final), state, config, checkpoint.metadata)


def _kept(path: Path | None) -> str:
    """What a message may say is kept: only a checkpoint that exists."""
    if _existing(path) is None:
        return "no checkpoint was written yet (nothing to resume)"
    return f"the last checkpoint {path} is"


def _existing(path: Path | None) -> Path | None:
    return path if path is not None and path.is_file() else None


class _SigtermAsInterrupt:
    """Within it SIGTERM sets the returned event instead of killing the process; `fit` checks
    it after each compiled call and stops as on SIGINT, its last checkpoint intact.

    Outside the main thread no handler can be installed and the event never sets.
    """

    def __enter__(self) -> threading.Event:
        self.event, self.previous = threading.Event(), None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _log_line(state: RunState, epochs: int, elapsed: float) -> str:
    """One progress line for logs: epoch, losses, learning rate, elapsed time."""
    values = _postfix(
        train=state.history["train"][-1],
        validation=state.history["validation"][-1],
        lr=state.history["lr"][-1],
    )
    fields = " ".join(f"{name}={value}" for name, value in values.items())
    return f"epoch {state.epoch}/{epochs} {fields} elapsed={elapsed:.1f}s"


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


def _check_patience(state: RunState, patience: int | None) -> None:
    best = state.best_epoch
    if patience is not None and best is not None and state.epoch - best >= patience:
        state.stop_reason = (
            f"early stopping: no validation improvement in {patience} epochs (best at epoch {best})"
        )


def _last(state: RunState, series: str) -> float | None:
    """The latest non-missing value of a history series."""
    return next((v for v in reversed(state.history[series]) if v is not None), None)


def _postfix(**values: float | None) -> dict[str, str]:
    return {name: f"{value:.4g}" for name, value in values.items() if value is not None}


def _record(state: RunState, train_loss, val_loss, lr, seconds) -> None:
    state.epoch += 1
    for name, value in (
        ("train", float(train_loss)),
        ("validation", val_loss),
        ("lr", lr),
        ("seconds", seconds),
    ):
        state.history[name].append(value)


def _with_model(run: TrainedModel, model: AbstractRecurrentModel) -> TrainedModel:
    """``run`` with ``model``, gathered onto the default device."""
    device = jax.devices()[0]
    gathered = jax.tree.map(lambda a: jax.device_put(a, device) if eqx.is_array(a) else a, model)
    return dataclasses.replace(run, model=gathered)


def _arrays(data: SequenceData, dtype) -> tuple[Array, Array]:
    return jnp.asarray(data.u, dtype=dtype), jnp.asarray(data.y, dtype=dtype)


def _check_data(
    spec: ModelSpec, train: SequenceData, validation: SequenceData | None, config: TrainConfig
) -> None:
    if (spec.nu, spec.ny) != (train.nu, train.ny):
        raise ValueError(
            f"the model has nu={spec.nu} inputs and ny={spec.ny} outputs but the training data "
            f"has {train.nu} ({', '.join(train.input_names)}) and {train.ny} "
            f"({', '.join(train.output_names)})"
        )
    if config.segment_length > train.length:
        raise ValueError(
            f"segment_length {config.segment_length} exceeds the training records' length "
            f"{train.length}; use at most {train.length}"
        )
    if validation is None:
        return
    if (validation.input_names, validation.output_names) != (
        train.input_names,
        train.output_names,
    ):
        raise ValueError(
            f"validation channels {validation.input_names} → {validation.output_names} differ "
            f"from the training channels {train.input_names} → {train.output_names}"
        )
    if config.washout >= validation.length:
        raise ValueError(
            f"washout {config.washout} leaves nothing of the validation records "
            f"({validation.length} steps); use a smaller washout"
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
