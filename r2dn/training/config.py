"""`TrainConfig`: every setting of a training run, and the optimiser it implies."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jax
import optax

ClipMode = Literal["elementwise", "global_norm"]
Mode = Literal["carried", "windowed"]
InitialState = Literal["burn_in", "encoder"]
PRECISIONS = ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32")


def full_precision(precision: str | None = None):
    """A context for matmuls in ``precision``; ``None`` means full float32 on every backend.

    GPUs and TPUs use reduced-precision passes (TF32, bf16) by default, so there ``None`` sets
    "highest", as the paper's experiments do. On CPU the default already is full float32, and
    setting any precision explicitly there sends XLA to a much slower matmul path (measured
    here: 60× slower for a 6-layer, 48-wide R2DN), so ``None`` leaves the default alone.
    """
    if precision is None:
        precision = None if jax.default_backend() == "cpu" else "highest"
    return jax.default_matmul_precision(precision)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run over input/output records.

    Two modes. ``"carried"`` (truncated backpropagation through time, the default): each epoch
    runs the records (the batch) through consecutive time segments of ``segment_length``
    steps, from the zero state, carrying the state from one segment to the next; each segment
    is one optimiser step. The defaults are the paper's F-16 protocol. ``"windowed"``: each
    optimiser step takes a minibatch of ``batch_size`` windows of ``window_length`` steps drawn
    at random from any number of records (`r2dn.training.windows`), started from the zero state
    with a ``burn_in`` left out of the loss, or from a learned encoder's estimate.

    Attributes:
        epochs: number of passes over the data.
        segment_length: steps per segment (a remainder at the end of the records is dropped).
        lr: initial learning rate.
        decay_every: if set, multiply the learning rate by ``decay_rate`` every this many
            epochs (a staircase), never below ``min_lr``.
        decay_rate, min_lr: see ``decay_every``.
        optimizer: name of an Optax optimiser taking ``learning_rate`` ("adam", "adamw", "sgd",
            "lion", ...); pass an optimiser object to `fit` for anything else.
        clip: clip gradients at this value before the optimiser; ``None`` for no clipping.
        clip_mode: "elementwise" (`optax.clip`, the paper's) or "global_norm".
        validate_every: validate every this many epochs (and after the last).
        washout: initial steps of each validation record left out of the validation loss.
        patience: stop when the validation loss has not improved for this many epochs.
        restore_best: at the end, return the model of the best validation loss.
        seed: seeds the model's initialisation (training itself is deterministic).
        devices: number of devices to shard the batch over (data parallelism); ``None`` uses
            as many of the available devices as divide the batch.
        matmul_precision: JAX matmul precision; ``None`` (default) means full float32 on every
            backend (see `full_precision`).
        mode: "carried" (segments with the state carried) or "windowed" (minibatches of
            random windows).
        window_length: windowed mode: steps per window (burn-in included).
        batch_size: windowed mode: windows per optimiser step (split over the devices).
        steps_per_epoch: windowed mode: optimiser steps per epoch; ``None`` means about one
            pass over the training samples (their number // (batch_size · window_length)).
        initial_state: windowed mode: "burn_in" (zero state, the first ``burn_in`` steps of
            each window left out of the loss) or "encoder" (a learned estimate from the
            ``encoder_context`` steps before the window).
        burn_in: windowed mode: first steps of each window left out of the loss (also with
            the encoder); must be less than ``window_length``.
        encoder_context: windowed mode with the encoder: past steps of u and y it reads.
        encoder_width, encoder_depth: the encoder MLP's hidden width and number of hidden
            layers.
    """

    epochs: int = 70
    segment_length: int = 256
    lr: float = 1e-3
    decay_every: int | None = None
    decay_rate: float = 0.1
    min_lr: float = 1e-6
    optimizer: str = "adam"
    clip: float | None = 10.0
    clip_mode: ClipMode = "elementwise"
    validate_every: int = 1
    washout: int = 100
    patience: int | None = None
    restore_best: bool = False
    seed: int = 0
    devices: int | None = None
    matmul_precision: str | None = None
    mode: Mode = "carried"
    window_length: int = 128
    batch_size: int = 32
    steps_per_epoch: int | None = None
    initial_state: InitialState = "burn_in"
    burn_in: int = 32
    encoder_context: int = 32
    encoder_width: int = 64
    encoder_depth: int = 2

    def __post_init__(self) -> None:
        positive = ("epochs", "segment_length", "validate_every", "window_length", "batch_size")
        positive += ("encoder_context", "encoder_width", "encoder_depth")
        for name in positive:
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("washout", "seed", "burn_in"):
            _check_int(name, getattr(self, name), minimum=0)
        if self.seed >= 2**63:
            raise ValueError(f"seed must be less than 2**63; got {self.seed}")
        for name in ("decay_every", "patience", "devices", "steps_per_epoch"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        for name in ("lr", "min_lr", "decay_rate") + (() if self.clip is None else ("clip",)):
            _check_real(name, getattr(self, name))
        if not isinstance(self.restore_best, bool):
            raise ValueError(f"restore_best must be True or False; got {self.restore_best!r}")
        _check_choice("mode", self.mode, ("carried", "windowed"))
        _check_choice("initial_state", self.initial_state, ("burn_in", "encoder"))
        if self.matmul_precision is not None:
            _check_choice("matmul_precision", self.matmul_precision, PRECISIONS)
        if self.burn_in >= self.window_length:
            raise ValueError(
                f"burn_in {self.burn_in} leaves nothing of a window of window_length "
                f"{self.window_length} steps to train on; use a burn_in below window_length"
            )
        if not self.lr > 0 or not self.min_lr >= 0:
            raise ValueError(
                f"lr must be positive and min_lr non-negative; got {self.lr}, {self.min_lr}"
            )
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f"decay_rate must lie in (0, 1]; got {self.decay_rate}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be positive or None; got {self.clip}")
        if self.clip_mode not in ("elementwise", "global_norm"):
            raise ValueError(
                f"clip_mode must be 'elementwise' or 'global_norm'; got {self.clip_mode!r}"
            )
        if not _is_optimizer_name(self.optimizer):
            raise ValueError(
                f"optimizer {self.optimizer!r} is not an Optax optimiser taking a learning "
                "rate; use a name such as 'adam', 'adamw' or 'sgd', or pass an "
                "optax.GradientTransformation to fit()"
            )

    def schedule(self, steps_per_epoch: int) -> optax.Schedule:
        """The learning rate as a function of the optimiser step."""
        if self.decay_every is None:
            return _constant(self.lr)
        return _staircase(
            self.lr, self.decay_every * steps_per_epoch, self.decay_rate, min(self.min_lr, self.lr)
        )

    def optimizer_for(self, steps_per_epoch: int) -> optax.GradientTransformation:
        """Gradient clipping (if any) followed by the named optimiser on `schedule`.

        Equal settings give the same object, so compiled training steps are reused.
        """
        return _optimizer(self.optimizer, self.schedule(steps_per_epoch), self.clip, self.clip_mode)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; `from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(names)}")
        return cls(**data)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{name} must be {kind} integer; got {value!r}")


def _check_real(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"{name} must be a number; got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def _is_optimizer_name(name: Any) -> bool:
    """A public Optax function that builds an optimiser from ``learning_rate`` (not `clip`)."""
    if not isinstance(name, str) or name.startswith("_"):
        return False
    factory = getattr(optax, name, None)
    if not inspect.isfunction(factory):
        return False
    return "learning_rate" in inspect.signature(factory).parameters


# Cached so that equal settings give the same objects: jit-compiled steps that take them as
# static arguments are then reused rather than compiled again.
_constant = functools.cache(optax.constant_schedule)


@functools.cache
def _staircase(lr: float, steps: int, rate: float, floor: float) -> optax.Schedule:
    return optax.exponential_decay(
        lr, transition_steps=steps, decay_rate=rate, staircase=True, end_value=floor
    )


#: Optimisers that update each scalar on its own. For them (and for either clipping),
#: running on the parameters flattened into one vector (`optax.flatten`) changes nothing but
#: the cost: a few large fused updates instead of one small update per array (the F-16
#: R2DN has ~100 arrays), which cut a training step by ~20 % on a CPU.
ELEMENTWISE = frozenset(
    {"adam", "adamw", "adamax", "adabelief", "amsgrad", "nadam", "radam", "rmsprop", "sgd"}
)


@functools.cache
def _optimizer(
    name: str, schedule: optax.Schedule, clip: float | None, clip_mode: ClipMode
) -> optax.GradientTransformation:
    opt = getattr(optax, name)(learning_rate=schedule)
    if clip is not None:
        clip_fn = optax.clip if clip_mode == "elementwise" else optax.clip_by_global_norm
        opt = optax.chain(clip_fn(clip), opt)
    return optax.flatten(opt) if name in ELEMENTWISE else opt
