"""§3 of the paper: learn a Youla parameter ``Q`` for a lightly damped plant, REN vs R2DN.

Any contracting ``Q`` keeps the loop stable, so training is unconstrained. Each epoch draws
fresh piecewise-constant disturbances and runs the loop over consecutive segments with its
state carried, one Adam step per segment on the cost ``mean |z| + 1e-4 ũ²`` (through
`r2dn.training.engine`); the test cost is on a fixed set of disturbances.

    python -m experiments.youla --out runs/youla            # the paper's protocol
    python -m experiments.youla --quick --out runs/youla    # minutes on a laptop
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from r2dn.examples import youla
from r2dn.registry import ModelSpec
from r2dn.training import TrainConfig, full_precision
from r2dn.training.engine import Epoch

#: The test disturbances are the same for every seed.
TEST_KEY = 12345
#: Steps of the first test disturbance kept in the result, for the response figure.
SHOWN = 400


@dataclass(frozen=True)
class Settings:
    """Model sizes and training protocol."""

    epochs: int
    seeds: tuple[int, ...]
    nx: int = 10
    ren_nv: int = 400
    r2dn_nv: int = 100
    hidden: tuple[int, ...] = (140,) * 4
    batch: int = 64
    horizon: int = 800
    segments: int = 4
    lr: float = 5e-3
    decay_after: int = 60


PRESETS = {
    "paper": Settings(epochs=80, seeds=tuple(range(10))),
    "quick": Settings(epochs=10, seeds=(0,)),
    "tiny": Settings(
        epochs=2,
        seeds=(0,),
        nx=2,
        ren_nv=6,
        r2dn_nv=4,
        hidden=(8,),
        batch=4,
        horizon=60,
        segments=2,
    ),
}


def spec(name: str, s: Settings) -> ModelSpec:
    """The paper's contracting ``Q`` (tanh, long-memory initialisation)."""
    sizes = dict(nu=1, nx=s.nx, ny=1, init="long_memory", activation="tanh")
    if name == "ren":
        return ModelSpec("contracting-ren", sizes | dict(nv=s.ren_nv))
    return ModelSpec("contracting-r2dn", sizes | dict(nv=s.r2dn_nv, hidden=s.hidden))


def segment_cost(policy, state, w):
    """The loop's cost over one segment from ``state``, and its final state for the next."""
    state, z, u = youla.closed_loop(policy, w, state)
    return youla.cost(z, u), state


def train(model, s: Settings, key):
    """Fresh disturbances each epoch, split into segments; returns model, losses, seconds."""
    # Adam with clip 10, ×0.1 after `decay_after` epochs, floor 1e-6 (a one-step staircase).
    config = TrainConfig(lr=s.lr, decay_every=s.decay_after, min_lr=1e-6)
    length = s.horizon // s.segments

    def epoch(e: int) -> Epoch:
        w = youla.disturbances(jax.random.fold_in(key, e), s.batch, s.horizon)
        w = w[:, : s.segments * length].astype(model.dtype)
        segments = jnp.swapaxes(w.reshape(s.batch, s.segments, length, 1), 0, 1)
        return Epoch(segment_cost, [segments], youla.initial_loop_state(model, s.batch))

    return common.train(
        model,
        config.optimizer_for(s.segments),
        epoch,
        epochs=s.epochs,
        steps=s.segments,
        unit="segment",
    )


def run(name: str, seed: int, s: Settings, w_test, out: Path) -> Path:
    key_model, key_train = jax.random.split(jax.random.key(seed))
    with full_precision():
        model = spec(name, s).build(key_model)
        model, losses, seconds = train(model, s, key_train)
        _, z, u = youla.closed_loop(model, w_test.astype(model.dtype))
    shown = slice(0, SHOWN)
    return common.write_result(
        out,
        "youla",
        name,
        seed,
        model=model,
        settings=s,
        train_loss=losses,
        epoch_seconds=seconds,
        test={"metric": "cost", "value": float(youla.cost(z, u))},
        extra={
            "prediction": {
                "w": np.asarray(w_test[0, shown, 0]).tolist(),
                "z": np.asarray(z[0, shown, 0]).tolist(),
                "u": np.asarray(u[0, shown, 0]).tolist(),
            }
        },
    )


def main(argv: list[str] | None = None) -> list[Path]:
    args = common.parse_options(argv, __doc__.splitlines()[0])
    s = common.protocol(args, PRESETS)
    w_test = youla.disturbances(jax.random.key(TEST_KEY), s.batch, s.horizon)
    return [run(name, seed, s, w_test, args.out) for name in args.models for seed in s.seeds]


if __name__ == "__main__":
    main()
