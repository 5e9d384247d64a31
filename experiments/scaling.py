"""§4 of the paper: how evaluation time grows with expressivity, REN vs R2DN.

Each model (``nx = nu = ny = 1``, identity output, random initialisation) learns the one-step
map ``x⁺ = f(x, u)`` of `r2dn.examples.scaling`; expressivity is ``1 / NRMSE(%)`` on the
validation grid. Its inference (jit of a simulation) and backpropagation (jit of a gradient)
are timed on random sequences. REN grows with ``nv``; R2DN keeps ``nv = 16`` and grows its
network's width. The report fits the log–log slope of time against expressivity.

    python -m experiments.scaling --out runs/scaling            # the paper's protocol
    python -m experiments.scaling --quick --out runs/scaling    # minutes on a laptop
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from experiments import common
from r2dn.examples import scaling
from r2dn.metrics import nrmse
from r2dn.registry import ModelSpec
from r2dn.training import TrainConfig, full_precision
from r2dn.training.engine import Epoch

#: The random sequences the models are timed on are the same for every model.
TIMING_KEY = 7


@dataclass(frozen=True)
class Settings:
    """The sweep, the training protocol and the timing protocol."""

    epochs: int
    seeds: tuple[int, ...]
    ren_nv: tuple[int, ...] = (20, 30, 40, 60, 80, 100, 128, 200)
    r2dn_nv: int = 16
    r2dn_depth: int = 6
    r2dn_width: tuple[int, ...] = (8, 16, 24, 32, 48, 64, 80, 96)
    batches: int = 128
    batch_size: int = 512
    lr: float = 1e-3
    validation_points: int = scaling.VALIDATION_POINTS
    timing_batch: int = 64
    timing_horizon: int = 128
    repeats: int = 1_000


PRESETS = {
    "paper": Settings(epochs=1_500, seeds=tuple(range(5))),
    "quick": Settings(
        epochs=10,
        seeds=(0,),
        ren_nv=(20, 40, 80, 200),
        r2dn_width=(8, 24, 48, 96),
        batches=32,
        repeats=20,
    ),
    "tiny": Settings(
        epochs=1,
        seeds=(0,),
        ren_nv=(3,),
        r2dn_nv=3,
        r2dn_depth=2,
        r2dn_width=(4,),
        batches=2,
        batch_size=16,
        validation_points=32,
        timing_batch=2,
        timing_horizon=4,
        repeats=2,
    ),
}


def sweep(name: str, s: Settings) -> list[tuple[int, ModelSpec]]:
    """(size, spec) pairs: REN (tanh) over ``nv``; R2DN (relu) over its hidden width."""
    sizes = dict(nu=1, nx=1, ny=1, identity_output=True)
    if name == "ren":
        return [
            (nv, ModelSpec("contracting-ren", sizes | dict(nv=nv, activation="tanh")))
            for nv in s.ren_nv
        ]
    return [
        (
            width,
            ModelSpec(
                "contracting-r2dn",
                sizes | dict(nv=s.r2dn_nv, hidden=(width,) * s.r2dn_depth, activation="relu"),
            ),
        )
        for width in s.r2dn_width
    ]


def one_step(model, x, u):
    """``x⁺`` from pairs ``x, u`` of shape (n, 1)."""
    x_next, _ = model.simulate(x, u[:, None, :])
    return x_next


def one_step_loss(model, carry, data: scaling.OneStepData):
    return jnp.mean((one_step(model, data.x, data.u) - data.x_next) ** 2), carry


def train(model, s: Settings, key):
    """Fresh samples for every minibatch; returns the model, epoch losses and seconds."""

    def epoch(e: int) -> Epoch:
        data = scaling.sample(jax.random.fold_in(key, e), s.batches * s.batch_size)
        data = [a.astype(model.dtype).reshape(s.batches, s.batch_size, 1) for a in data]
        return Epoch(one_step_loss, [scaling.OneStepData(*data)])

    optimizer = TrainConfig(lr=s.lr).optimizer_for(s.batches)  # Adam, elementwise clip at 10
    return common.train(model, optimizer, epoch, epochs=s.epochs, steps=s.batches, unit="batch")


def _timed(fn: Callable, repeats: int, *args) -> tuple[float, float]:
    """(seconds of the first call, with compilation; mean seconds of ``repeats`` more)."""
    started = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return compile_seconds, (time.perf_counter() - started) / repeats


def timing(model, s: Settings) -> dict[str, float]:
    """Inference and backpropagation seconds on random states and inputs (batch × horizon)."""
    kx, ku = jax.random.split(jax.random.key(TIMING_KEY))
    x0 = jax.random.normal(kx, (s.timing_batch, model.nx), model.dtype)
    u = jax.random.normal(ku, (s.timing_batch, s.timing_horizon, model.nu), model.dtype)

    def objective(m, x0, u):
        x_T, y = m.simulate(x0, u)
        return jnp.mean(x_T**2) + jnp.mean(y**2)

    forward = eqx.filter_jit(lambda m, x0, u: m.simulate(x0, u))
    backward = eqx.filter_jit(eqx.filter_grad(objective))
    compile_f, inference = _timed(forward, s.repeats, model, x0, u)
    compile_b, backprop = _timed(backward, s.repeats, model, x0, u)
    return {
        "inference_seconds": inference,
        "backprop_seconds": backprop,
        "inference_compile_seconds": compile_f,
        "backprop_compile_seconds": compile_b,
    }


def run(name: str, size: int, spec: ModelSpec, seed: int, s: Settings, out: Path) -> Path:
    key_model, key_train = jax.random.split(jax.random.key(seed))
    grid = scaling.validation_grid(s.validation_points)
    with full_precision():
        model = spec.build(key_model)
        model, losses, seconds = train(model, s, key_train)
        x, u = (a.astype(model.dtype) for a in (grid.x, grid.u))
        predicted = np.asarray(one_step(model, x, u))
        times = timing(model, s)
    percent = 100 * float(nrmse(grid.x_next, predicted, per_channel=False))
    return common.write_result(
        out,
        "scaling",
        f"{name}-{size}",
        seed,
        model=model,
        settings=s,
        train_loss=losses,
        epoch_seconds=seconds,
        test={"metric": "nrmse_percent", "value": percent, "expressivity": 1 / percent} | times,
        extra={
            "family": name,
            "size": size,
            "prediction": {
                "x": np.asarray(grid.x[:, 0]).tolist(),
                "y": np.asarray(grid.x_next[:, 0]).tolist(),
                "y_hat": predicted[:, 0].tolist(),
            },
        },
    )


def main(argv: list[str] | None = None) -> list[Path]:
    args = common.parse_options(argv, __doc__.splitlines()[0])
    s = common.protocol(args, PRESETS)
    runs = [
        (name, size, spec, seed)
        for name in args.models
        for size, spec in sweep(name, s)
        for seed in s.seeds
    ]
    return [run(*r, s, args.out) for r in tqdm(runs, unit="model", dynamic_ncols=True)]


if __name__ == "__main__":
    main()
