"""Windowed minibatch training: each optimiser step on a minibatch of short windows.

Windows of ``window_length`` steps are drawn uniformly from all the positions of any number
of records of different lengths (`WindowSampler`, a pure function of a PRNG key and the
step count, so a resumed run draws exactly the windows an uninterrupted one would). The
initial state of a window is either

- the zero state, with the first ``burn_in`` steps of the window left out of the loss (the
  model is contracting, so it forgets the wrong initial state), or
- a learned estimate ``x₀ = ψ(u, y)`` from the ``encoder_context`` steps before the window
  (`Encoder`, an unconstrained MLP trained jointly with the model).

Neither choice touches the model's certificate: contraction and the incremental
integral-quadratic constraint hold from every pair of initial states, so whatever state an
encoder produces, the model run from it keeps every guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import Array, Float, Int, PRNGKeyArray

from r2dn.training import parallel


class Encoder(eqx.Module):
    """``x₀ = ψ(u, y)``: an initial state from ``context`` steps of inputs and outputs.

    An unconstrained MLP on the flattened past window; any state it gives is a valid initial
    state of a certified model, whose guarantees hold from every initial state.

    >>> import jax, jax.numpy as jnp
    >>> psi = Encoder(nu=1, ny=2, nx=3, context=5, width=8, depth=1, key=jax.random.key(0))
    >>> psi(jnp.zeros((5, 1)), jnp.zeros((5, 2))).shape
    (3,)
    """

    mlp: eqx.nn.MLP
    context: int = eqx.field(static=True)

    def __init__(
        self,
        nu: int,
        ny: int,
        nx: int,
        context: int,
        width: int,
        depth: int,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        self.context = context
        self.mlp = eqx.nn.MLP(
            context * (nu + ny), nx, width, depth, activation=jnp.tanh, key=key, dtype=dtype
        )

    def __call__(
        self, u: Float[Array, "context nu"], y: Float[Array, "context ny"]
    ) -> Float[Array, " nx"]:
        return self.mlp(jnp.concatenate([u, y], axis=-1).reshape(-1))


@dataclass(frozen=True)
class WindowSampler:
    """Window positions drawn uniformly from every record, as a pure function of (key, step).

    A position is a record and the start of its window; each window has ``context`` steps
    before it in its record (for an encoder) and ``window`` steps in it. Records too short
    for one window are never drawn.

    >>> import jax
    >>> sample = WindowSampler(lengths=(10, 4), window=3, context=1, batch_size=6)
    >>> records, starts = sample(jax.random.key(0), 0)
    >>> records.shape, bool(((starts >= 1) & (starts + 3 <= jnp.array([10, 4])[records])).all())
    ((6,), True)
    """

    lengths: tuple[int, ...]
    window: int
    context: int
    batch_size: int

    def __post_init__(self) -> None:
        longest = max(self.lengths)
        if self.context + self.window > longest:
            needed = f"window_length {self.window}" + (
                f" + encoder_context {self.context}" if self.context else ""
            )
            raise ValueError(
                f"{needed} = {self.context + self.window} steps exceeds every training record "
                f"(the longest has {longest}); use a shorter window"
            )

    @property
    def counts(self) -> np.ndarray:
        """Number of window positions in each record."""
        return np.maximum(np.asarray(self.lengths) - self.window - self.context + 1, 0)

    def __call__(
        self, key: PRNGKeyArray, step: int | Int[Array, ""]
    ) -> tuple[Int[Array, " batch"], Int[Array, " batch"]]:
        """The record and the window's first step for each of the ``batch_size`` windows."""
        counts = self.counts
        ends = jnp.asarray(np.cumsum(counts), dtype=jnp.int32)
        i = jax.random.randint(
            jax.random.fold_in(key, step), (self.batch_size,), 0, int(counts.sum())
        )
        records = jnp.searchsorted(ends, i, side="right")
        return records, i - (ends - jnp.asarray(counts, jnp.int32))[records] + self.context


@dataclass(frozen=True)
class WindowLoss:
    """The loss of one minibatch of windows, for `r2dn.training.steps.train_steps`.

    Called as ``loss(trainee, None, step, key, u, y)`` with ``u, y`` the records padded to
    one length, and ``trainee`` the model or ``(model, encoder)``: the mean over windows of
    the squared error summed over outputs and averaged over the window's steps after
    ``burn_in``. The windows are split over the devices of ``mesh``.
    """

    sampler: WindowSampler
    burn_in: int
    mesh: Mesh | None = None

    def __call__(self, trainee, carry, step, key, u, y):
        n, length = self.sampler.context, self.sampler.context + self.sampler.window
        records, starts = self.sampler(key, step)
        u_w, y_w = jax.vmap(
            lambda r, s: tuple(
                jax.lax.dynamic_slice_in_dim(a[r], s - n, length, axis=0) for a in (u, y)
            )
        )(records, starts)
        if self.mesh is not None and self.mesh.size > 1:
            u_w, y_w = parallel.shard_batch((u_w, y_w), self.mesh)
        if isinstance(trainee, tuple):
            model, encoder = trainee
            x0 = jax.vmap(encoder)(u_w[:, :n], y_w[:, :n])
        else:
            model, x0 = trainee, trainee.initial_state(self.sampler.batch_size)
        _, y_hat = model.simulate(x0, u_w[:, n:])
        error = (y_hat - y_w[:, n:])[:, self.burn_in :]
        return jnp.sum(error**2) / (error.shape[0] * error.shape[1]), carry


def padded(records: Sequence[np.ndarray]) -> np.ndarray:
    """Records ``(T_i, channels)`` stacked into ``(len, max T_i, channels)``, zero-padded."""
    out = np.zeros((len(records), max(len(r) for r in records), records[0].shape[-1]))
    for i, r in enumerate(records):
        out[i, : len(r)] = r
    return out
