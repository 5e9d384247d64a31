"""The host-side training driver: epochs of compiled steps, with everything around them.

A training run is described by `Epoch`, the work of one epoch (a loss, the stacks of batches
its compiled calls step through, the carry and data they get), produced per epoch by any
function of the epoch's index. `run_epochs` is the one loop over epochs: it runs the
compiled calls (`r2dn.training.steps.train_steps`), guards against NaN, stops cleanly on
SIGINT or SIGTERM, shows progress, validates, stops early, keeps the best model, saves a
checkpoint and calls callbacks. `r2dn.training.fit` and the paper's experiments all train
through it.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optax
from jaxtyping import PyTree
from tqdm.auto import tqdm

from r2dn.training.checkpoint import RunState
from r2dn.training.steps import Loss, train_steps


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or infinite; the last checkpoint is left as it was."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGTERM stopped training after a compiled call; the message says what is kept.

    A `KeyboardInterrupt`, so that SIGTERM and SIGINT are handled alike by callers.

    Attributes:
        checkpoint: the checkpoint of the last completed epoch, or ``None`` if none was written.
    """

    def __init__(self, message: str, checkpoint: Path | None):
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass(frozen=True, eq=False)
class EpochReport:
    """What a callback is told after each epoch (and its checkpoint)."""

    epoch: int  # 1-based
    train_loss: float
    validation_loss: float | None
    lr: float | None
    seconds: float
    model: Any  # the model (for `fit`) or whatever pytree is trained


@dataclass(frozen=True, eq=False)
class Epoch:
    """The work of one epoch: one compiled `train_steps` call per stack of batches.

    Attributes:
        loss: ``loss(model, carry, batch, *data) -> (value, next_carry)``; static (use an
            equal, hashable object every epoch so the compiled call is reused).
        chunks: stacks of batches, one per compiled call (leading axis: its steps).
        carry: the carry of the epoch's first step (``None`` for none); each call's final
            carry is the next call's first.
        data: passed unchanged to every step (arrays the batches index into).
    """

    loss: Loss
    chunks: Sequence[PyTree]
    carry: PyTree = None
    data: tuple = ()


@dataclass(frozen=True, eq=False)
class Schedule:
    """When to validate and stop, and how to describe the run to the user.

    Attributes:
        epochs: train until this many epochs are done.
        steps: optimiser steps per epoch (for the progress bar and messages).
        validate_every: validate every this many epochs, and after the last.
        patience: stop when the validation loss has not improved for this many epochs.
        lr: the learning rate at a step (for progress and history), if known.
        progress: show a bar on a terminal, one line per epoch in a log.
        unit: what a step is called in the progress bar and messages ("segment", "batch").
    """

    epochs: int
    steps: int
    validate_every: int = 1
    patience: int | None = None
    lr: Callable[[int], float] | None = None
    progress: bool = True
    unit: str = "step"


@dataclass(eq=False)
class Trainee:
    """What the driver updates: the trained pytree, its optimiser state and the best so far."""

    model: PyTree
    opt_state: optax.OptState
    best: PyTree | None = None
    state: RunState = field(default_factory=RunState)


def run_epochs(
    trainee: Trainee,
    optimizer: optax.GradientTransformation,
    epoch_work: Callable[[int], Epoch],
    schedule: Schedule,
    *,
    validate: Callable[[PyTree], float] | None = None,
    save: Callable[[Trainee], None] | None = None,
    checkpoint: Path | None = None,
    callbacks: Sequence[Callable[[EpochReport], None]] = (),
    view: Callable[[PyTree], Any] = lambda model: model,
) -> Trainee:
    """Train ``trainee`` from epoch ``trainee.state.epoch`` to ``schedule.epochs``, in place.

    Epoch ``e`` (0-based) runs ``epoch_work(e)``; then, where due, ``validate(model)``
    (which updates the best model), early stopping, ``save(trainee)`` (a checkpoint, written
    at ``checkpoint``: messages name it only once it exists) and the callbacks (told
    ``view(model)``). Returns ``trainee``.

    Raises:
        TrainingDiverged: a loss, gradient or validation loss is NaN or infinite.
        TrainingInterrupted: SIGTERM arrived (checked after each compiled call).
    """
    state, first = trainee.state, trainee.state.epoch
    bar = _progress_bar(schedule, state.epoch)
    began = started = time.perf_counter()
    with bar, _sigterm_as_interrupt() as stop:
        while state.epoch < schedule.epochs and state.stop_reason is None:
            lr = None if schedule.lr is None else float(schedule.lr(state.epoch * schedule.steps))
            bar.set_description(f"epoch {state.epoch + 1}/{schedule.epochs}")
            losses = _train_epoch(
                trainee, optimizer, epoch_work(state.epoch), schedule, bar, stop, checkpoint, lr
            )
            val_loss = _validate(trainee, validate, schedule, checkpoint)
            # An epoch's time runs from the end of the previous one's, so it includes validation
            # and the previous checkpoint write; the last write is added after the loop.
            seconds, started = time.perf_counter() - started, time.perf_counter()
            _record(state, float(np.mean(losses)), val_loss, lr, seconds)
            if schedule.progress and bar.disable:
                print(_log_line(state, schedule.epochs, started - began), file=sys.stderr)
            _check_patience(state, schedule.patience)
            if save is not None:
                save(trainee)
            report = EpochReport(
                state.epoch, state.history["train"][-1], val_loss, lr, seconds, view(trainee.model)
            )
            for callback in callbacks:
                callback(report)
    if state.epoch > first:
        state.history["seconds"][-1] += time.perf_counter() - started
    return trainee


def _train_epoch(trainee, optimizer, work: Epoch, schedule, bar, stop, checkpoint, lr):
    """Every compiled call of one epoch; returns the losses of its steps.

    A call's losses are checked and recorded only once the next call is queued, so that the
    device never waits for the host.
    """
    epoch, carry, losses, unread = trainee.state.epoch + 1, work.carry, [], None
    for c in range(len(work.chunks) + 1):
        read = unread
        if c < len(work.chunks):
            trainee.model, trainee.opt_state, carry, loss, finite = train_steps(
                work.loss,
                optimizer,
                trainee.model,
                trainee.opt_state,
                carry,
                work.chunks[c],
                *work.data,
            )
            unread = loss, finite
        if stop.is_set():
            raise TrainingInterrupted(
                f"interrupted by SIGTERM in epoch {epoch}; {_kept(checkpoint)} kept",
                _existing(checkpoint),
            )
        if read is None:
            continue
        values, finite = np.asarray(read[0]), np.asarray(read[1])
        if not finite.all():
            k = int(np.argmin(finite))
            raise TrainingDiverged(
                f"the loss or a gradient is NaN or infinite at epoch {epoch}, {schedule.unit} "
                f"{len(losses) + k + 1} of {schedule.steps} (loss {values[k]}); "
                f"{_kept(checkpoint)} left intact. Try a lower learning rate or gradient clipping."
            )
        losses.extend(values.tolist())
        bar.set_postfix(
            _postfix(loss=losses[-1], lr=lr, val=_last(trainee.state, "validation")),
            refresh=False,
        )
        bar.update(len(values))
    return losses


def _validate(trainee: Trainee, validate, schedule: Schedule, checkpoint) -> float | None:
    """The validation loss after this epoch, if due; updates the best model."""
    state, epoch = trainee.state, trainee.state.epoch + 1
    if validate is None or (epoch % schedule.validate_every and epoch != schedule.epochs):
        return None
    loss = float(validate(trainee.model))
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"the validation loss is {loss} after epoch {epoch}; {_kept(checkpoint)} left intact"
        )
    if state.best_loss is None or loss < state.best_loss:
        state.best_loss, state.best_epoch, trainee.best = loss, epoch, trainee.model
    return loss


def _progress_bar(schedule: Schedule, done: int) -> tqdm:
    """A bar on a terminal; disabled for logs (one line per epoch instead) and without progress."""
    log_lines = schedule.progress and not sys.stderr.isatty()
    return tqdm(
        total=schedule.epochs * schedule.steps,
        initial=min(done, schedule.epochs) * schedule.steps,
        disable=not schedule.progress or log_lines,
        unit=schedule.unit,
        dynamic_ncols=True,
    )


def _kept(path: Path | None) -> str:
    """What a message may say is kept: only a checkpoint that exists."""
    if _existing(path) is None:
        return "no checkpoint was written yet (nothing to resume)"
    return f"the last checkpoint {path} is"


def _existing(path: Path | None) -> Path | None:
    return path if path is not None and path.is_file() else None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[threading.Event]:
    """Within it SIGTERM sets the event instead of killing the process; the driver checks it
    after each compiled call and stops as on SIGINT, its last checkpoint intact.

    Outside the main thread no handler can be installed and the event never sets.
    """
    event, previous = threading.Event(), None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield event
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _log_line(state: RunState, epochs: int, elapsed: float) -> str:
    """One progress line for logs: epoch, losses, learning rate, elapsed time."""
    values = _postfix(
        train=state.history["train"][-1],
        validation=state.history["validation"][-1],
        lr=state.history["lr"][-1],
    )
    fields = " ".join(f"{name}={value}" for name, value in values.items())
    return f"epoch {state.epoch}/{epochs} {fields} elapsed={elapsed:.1f}s"


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


def _record(state: RunState, train_loss: float, val_loss, lr, seconds: float) -> None:
    state.epoch += 1
    for name, value in (
        ("train", train_loss),
        ("validation", val_loss),
        ("lr", lr),
        ("seconds", seconds),
    ):
        state.history[name].append(value)
