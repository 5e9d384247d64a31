"""§2 of the paper: learn a contracting observer of a reaction–diffusion PDE, REN vs R2DN.

The observer's state estimates the 51 node values (identity output) and its input is the
measurement ``[b_t, ξ_t(node 25)]``. It is trained one step ahead on a long record from
``ξ_0 = 0``, in shuffled minibatches, with Adam and reduce-on-plateau; it is tested by running
it from ``x̂_0 = 0`` alongside a fresh trajectory from ``ξ_0 = 1`` (NRMSE over all nodes).
Contraction makes the estimate forget its wrong initial value.

    python -m experiments.pde_observer --out runs/pde            # the paper's protocol
    python -m experiments.pde_observer --quick --out runs/pde    # minutes on a laptop
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import common
from r2dn.examples import pde
from r2dn.metrics import nrmse
from r2dn.registry import ModelSpec
from r2dn.training import full_precision
from r2dn.training.engine import Epoch

#: The training record and the test scenario are the same for every seed.
DATA_KEY, TEST_KEY = 0, 1
#: Nodes (besides the measured middle one) kept in the result for the prediction figure.
SHOWN_NODES = (12, 37)


@dataclass(frozen=True)
class Settings:
    """Model sizes and training protocol."""

    epochs: int
    seeds: tuple[int, ...]
    ren_nv: int = 200
    r2dn_nv: int = 50
    hidden: tuple[int, ...] = (96,) * 4
    train_steps: int = pde.TRAIN_STEPS
    batches: int = 200
    test_steps: int = pde.TEST_STEPS
    lr: float = 2e-3
    patience: int = 10
    min_lr: float = 1e-6


PRESETS = {
    "paper": Settings(epochs=200, seeds=tuple(range(10))),
    "quick": Settings(epochs=10, seeds=(0,), train_steps=20_000, batches=40),
    "tiny": Settings(
        epochs=2,
        seeds=(0,),
        ren_nv=6,
        r2dn_nv=4,
        hidden=(8,),
        train_steps=200,
        batches=4,
        test_steps=50,
    ),
}


def spec(name: str, s: Settings) -> ModelSpec:
    """Contracting observer, state = output = the 51 node estimates (relu, long memory)."""
    n = pde.N_NODES
    sizes = dict(nu=2, nx=n, ny=n, identity_output=True, init="long_memory", activation="relu")
    if name == "ren":
        return ModelSpec("contracting-ren", sizes | dict(nv=s.ren_nv))
    return ModelSpec("contracting-r2dn", sizes | dict(nv=s.r2dn_nv, hidden=s.hidden))


def one_step_loss(model, carry, batch, xi, y, xi_next):
    """Mean over the minibatch ``batch`` (indices) of ``‖ξ_{t+1} − x̂⁺(ξ_t, y_t)‖²``."""
    x_next, _ = model.step(xi[batch], y[batch])
    return jnp.mean(jnp.sum((x_next - xi_next[batch]) ** 2, axis=-1)), carry


def optimizer(s: Settings) -> optax.GradientTransformation:
    """Elementwise clip at 10, Adam, and the learning rate ×0.1 after ``patience`` flat epochs."""
    return optax.chain(
        optax.clip(10.0),
        optax.adam(s.lr),
        optax.contrib.reduce_on_plateau(
            factor=0.1,
            patience=s.patience,
            min_scale=s.min_lr / s.lr,
            accumulation_size=s.batches,  # one plateau check per epoch, on its mean loss
        ),
    )


def train(model, s: Settings, data: pde.ObserverData, key):
    """Shuffled one-step-ahead minibatches; returns the model, epoch losses and seconds."""
    size = s.train_steps // s.batches

    def epoch(e: int) -> Epoch:
        order = jax.random.permutation(jax.random.fold_in(key, e), s.train_steps)
        return Epoch(
            one_step_loss, [order[: s.batches * size].reshape(s.batches, size)], None, data
        )

    return common.train(model, optimizer(s), epoch, epochs=s.epochs, steps=s.batches, unit="batch")


def run(name: str, seed: int, s: Settings, data, test, out: Path) -> Path:
    key_model, key_shuffle = jax.random.split(jax.random.key(seed))
    with full_precision():
        model = spec(name, s).build(key_model)
        data = tuple(a.astype(model.dtype) for a in data)
        model, losses, seconds = train(model, s, data, key_shuffle)
        _, xi_hat = model.simulate(model.initial_state(), test.y.astype(model.dtype))
    truth, xi_hat = np.asarray(test.xi[:-1]), np.asarray(xi_hat)
    error = float(nrmse(truth, xi_hat, per_channel=False))
    nodes = list(SHOWN_NODES)
    return common.write_result(
        out,
        "pde_observer",
        name,
        seed,
        model=model,
        settings=s,
        train_loss=losses,
        epoch_seconds=seconds,
        test={"metric": "nrmse", "value": error},
        extra={
            "prediction": {
                "nodes": nodes,
                "y": truth[:, nodes].T.tolist(),
                "y_hat": xi_hat[:, nodes].T.tolist(),
            }
        },
    )


def main(argv: list[str] | None = None) -> list[Path]:
    args = common.parse_options(argv, __doc__.splitlines()[0])
    s = common.protocol(args, PRESETS)
    data = pde.observer_dataset(s.train_steps, jax.random.key(DATA_KEY))
    test = pde.observer_test_trajectory(s.test_steps, jax.random.key(TEST_KEY))
    return [run(name, seed, s, data, test, args.out) for name in args.models for seed in s.seeds]


if __name__ == "__main__":
    main()
