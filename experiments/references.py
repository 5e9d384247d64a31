"""Unconstrained reference networks, written the way a user would write them.

Both expose ``simulate(x0, u) -> (x_T, y)`` like the library's models, so one timing harness
serves every network. Neither has any parameterization: the weights are used as they are.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class GRU(eqx.Module):
    """``equinox.nn.GRUCell`` over time with ``lax.scan``, and a linear readout after it."""

    cell: eqx.nn.GRUCell
    readout: eqx.nn.Linear

    def __init__(self, nu: int, width: int, ny: int, *, key: PRNGKeyArray):
        k_cell, k_out = jax.random.split(key)
        self.cell = eqx.nn.GRUCell(nu, width, key=k_cell)
        self.readout = eqx.nn.Linear(width, ny, key=k_out)

    @property
    def nx(self) -> int:
        return self.cell.hidden_size

    def simulate(
        self, x0: Float[Array, "B nx"], u: Float[Array, "B T nu"]
    ) -> tuple[Float[Array, "B nx"], Float[Array, "B T ny"]]:
        def body(h, u_t):
            h = jax.vmap(self.cell)(u_t, h)
            return h, h

        h_T, hs = jax.lax.scan(body, x0, jnp.swapaxes(u, 0, 1))
        return h_T, jnp.swapaxes(hs, 0, 1) @ self.readout.weight.T + self.readout.bias


class PlainR2DN(eqx.Module):
    """The R2DN's structure (an LTI system in feedback with an MLP) with free dense weights.

    Every equation sits inside the scan body, as a direct transcription of the model would:
    ``x⁺ = Ax + B1w + B2u + bx``, ``w = MLP(C1x + D12u + bv)``, ``y = C2x + D21w + D22u + by``.
    """

    A: Array
    B1: Array
    B2: Array
    C1: Array
    D12: Array
    C2: Array
    D21: Array
    D22: Array
    bx: Array
    bv: Array
    by: Array
    mlp: eqx.nn.MLP

    def __init__(
        self, nu: int, nx: int, nv: int, ny: int, width: int, depth: int, *, key: PRNGKeyArray
    ):
        keys = iter(jax.random.split(key, 9))
        dense = lambda m, n: jax.random.normal(next(keys), (m, n)) / jnp.sqrt(n)  # noqa: E731
        self.A, self.B1, self.B2 = 0.9 * jnp.eye(nx), dense(nx, nv), dense(nx, nu)
        self.C1, self.D12 = dense(nv, nx), dense(nv, nu)
        self.C2, self.D21, self.D22 = dense(ny, nx), dense(ny, nv), dense(ny, nu)
        self.bx, self.bv, self.by = jnp.zeros(nx), jnp.zeros(nv), jnp.zeros(ny)
        self.mlp = eqx.nn.MLP(nv, nv, width, depth, activation=jax.nn.relu, key=next(keys))

    @property
    def nx(self) -> int:
        return self.A.shape[0]

    def simulate(
        self, x0: Float[Array, "B nx"], u: Float[Array, "B T nu"]
    ) -> tuple[Float[Array, "B nx"], Float[Array, "B T ny"]]:
        def body(x, u_t):
            w = jax.vmap(self.mlp)(x @ self.C1.T + u_t @ self.D12.T + self.bv)
            y = x @ self.C2.T + w @ self.D21.T + u_t @ self.D22.T + self.by
            return x @ self.A.T + w @ self.B1.T + u_t @ self.B2.T + self.bx, y

        x_T, ys = jax.lax.scan(body, x0, jnp.swapaxes(u, 0, 1))
        return x_T, jnp.swapaxes(ys, 0, 1)


def count_parameters(model: eqx.Module) -> int:
    """Number of trainable scalars: floating-point array entries (arrays or their shapes)."""
    leaves = jax.tree.leaves(model)
    return sum(x.size for x in leaves if jnp.issubdtype(getattr(x, "dtype", int), jnp.inexact))


def width_for(build: Callable[[int], eqx.Module], n_params: int) -> int:
    """The width whose model has the parameter count closest to ``n_params``.

    Models are only traced (`eqx.filter_eval_shape`), never built, while searching.
    """

    def count(width: int) -> int:
        return count_parameters(eqx.filter_eval_shape(build, width))

    lo, hi = 1, 2
    while count(hi) < n_params:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < n_params else (lo, mid)
    return min((lo, hi), key=lambda w: abs(count(w) - n_params))
