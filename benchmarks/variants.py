"""The R2DN evaluated as it was before each speed-up, for the before/after table.

Each wrapper keeps the model's direct parameters (so gradients include direct → explicit) and
changes only how the explicit system is simulated:

- `Unfused`: the code before this work: φ as Sandwich layers with two matrices each, and the
  original scan.
- `GenericScan`: φ's matrices multiplied out, but still the generic scan (φ opaque to it).
- `Patched`: any of these (or the model) with module attributes replaced while it is traced:
  another scan kernel of `r2dn.simulation` (plain autodiff, ``_lbdn_scan.fun``, or
  `hand_written_vjp`, a ``jax.custom_vjp`` alternative to the library's ``jax.custom_jvp``
  rule), the scan's ``UNROLL``, or `lu_cayley_blocks`, the Cayley transform by LU solves.
- `Segmented`: the model simulated in checkpointed segments (memory for long horizons).
- `FixedExplicit`: the simulation from an explicit system computed once, without
  direct → explicit (its parameters are the explicit matrices).
"""

import contextlib
from collections.abc import Callable
from typing import Any
from unittest import mock

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array

from r2dn import simulation
from r2dn.models import R2DN
from r2dn.networks.activations import get_activation
from r2dn.networks.sandwich import LBDN, DenseWeights, apply_dense


class UnfusedLBDN(eqx.Module):
    """The explicit LBDN before fusion: per layer ``σ(h W_inᵀ + b) W_out``, then ``W``, ``b``."""

    layers: tuple[DenseWeights, ...]
    W: Array
    b: Array
    activation: str = eqx.field(static=True)

    def __init__(self, net: LBDN):
        sqrt_gamma = jnp.sqrt(net.gamma)
        layers = [layer.explicit() for layer in net.layers]
        first = layers[0]
        layers[0] = DenseWeights(sqrt_gamma * first.W_in, first.b, first.W_out)
        W, self.b = net.output.explicit()
        self.layers, self.W, self.activation = tuple(layers), sqrt_gamma * W, net.activation

    def __call__(self, h):
        for layer in self.layers:
            h = apply_dense(layer, self.activation, h)
        return h @ self.W.T + self.b


class Opaque(eqx.Module):
    """Hides φ's type from `simulate`, which then takes its generic path."""

    phi: Callable

    def __call__(self, v):
        return self.phi(v)


def original_simulate(sys: simulation.ExplicitSystem, x0, u):
    """`simulate` as it was before this work (batch shapes already matched here)."""
    u = jnp.moveaxis(u, -2, 0)
    ux = u @ sys.B2.T + sys.bx
    uv = u @ sys.D12.T + sys.bv

    def body(x, inputs):
        ux_t, uv_t = inputs
        w = sys.phi(x @ sys.C1.T + uv_t)
        return x @ sys.A.T + w @ sys.B1.T + ux_t, (x, w)

    x_T, (xs, ws) = jax.lax.scan(body, x0, (ux, uv))
    y = xs @ sys.C2.T + ws @ sys.D21.T + u @ sys.D22.T + sys.by
    return x_T, jnp.moveaxis(y, 0, -2)


class Unfused(eqx.Module):
    model: R2DN

    @property
    def nx(self) -> int:
        return self.model.nx

    def simulate(self, x0, u):
        sys = eqx.tree_at(lambda s: s.phi, self.model.explicit(), UnfusedLBDN(self.model.phi))
        return original_simulate(sys, x0, u)


class GenericScan(eqx.Module):
    model: R2DN

    @property
    def nx(self) -> int:
        return self.model.nx

    def simulate(self, x0, u):
        sys = self.model.explicit()
        return simulation.simulate(eqx.tree_at(lambda s: s.phi, sys, Opaque(sys.phi)), x0, u)


class Patched(eqx.Module):
    """A model simulated with module attributes replaced: ``(module, name, value)`` each."""

    model: eqx.Module
    changes: tuple[tuple[Any, str, Any], ...] = eqx.field(static=True)

    @property
    def nx(self) -> int:
        return self.model.nx

    def simulate(self, x0, u):
        # Active while jit traces, so the compiled function keeps the replacements.
        with contextlib.ExitStack() as stack:
            for module, name, value in self.changes:
                stack.enter_context(mock.patch.object(module, name, value))
            return self.model.simulate(x0, u)


def lu_cayley_blocks(S, W):
    """``(I − S)(I + S)⁻¹`` and ``−2W(I + S)⁻¹`` by one LU factorisation and two solves."""
    eye = jnp.eye(S.shape[0], dtype=S.dtype)
    lu = jsl.lu_factor(eye + S)
    return jsl.lu_solve(lu, eye - S), -2.0 * jsl.lu_solve(lu, W.T, trans=1).T


@jax.custom_vjp
def hand_written_vjp(rec, x0, e, c):
    """Same outputs as ``simulation._lbdn_scan``; a reverse scan written out by hand."""
    x_T, (xs, hs) = simulation._run(rec, x0, e, c, keep_layers=False)
    return x_T, xs, hs


def _forward(rec, x0, e, c):
    x_T, (xs, zs) = simulation._run(rec, x0, e, c, keep_layers=True)
    return (x_T, xs, get_activation(rec.activation)(zs[-1])), (rec, xs, zs)


def _backward(residuals, cotangents):
    """Carry the state adjoint back in time; weight gradients as ``Xᵀ·Δ`` after the scan."""
    rec, xs, zs = residuals
    ct_x_T, ct_xs, ct_hs = cotangents
    sigma = get_activation(rec.activation)
    slopes = [jax.jvp(sigma, (z,), (jnp.ones_like(z),))[1] for z in zs]
    nx = xs.shape[-1]

    def body(lam, inputs):
        s, ct_h, ct_x = inputs
        back = lam @ rec.S.T
        dh, dzs = back[:, nx:] + ct_h, []
        for k in reversed(range(len(s))):
            dzs.insert(0, s[k] * dh)
            if k:
                dh = dzs[0] @ rec.mids[k - 1].T
        return back[:, :nx] + dzs[0] @ rec.G.T + ct_x, (lam, dzs)

    ct_x0, (lams, dzs) = jax.lax.scan(body, ct_x_T, (slopes, ct_hs, ct_xs), reverse=True)
    hs = [sigma(z) for z in zs]

    def outer(a, b):
        return jnp.einsum("tbi,tbj->ij", a, b)

    ct_rec = simulation._Recurrence(
        G=outer(xs, dzs[0]),
        mids=tuple(outer(h, dz) for h, dz in zip(hs[:-1], dzs[1:], strict=True)),
        biases=tuple(dz.sum((0, 1)) for dz in dzs[1:]),
        S=outer(jnp.concatenate([xs, hs[-1]], axis=-1), lams),
        activation=rec.activation,
    )
    return ct_rec, ct_x0, lams, dzs[0]


hand_written_vjp.defvjp(_forward, _backward)


class FixedExplicit(eqx.Module):
    """An explicit system simulated as it is: no direct → explicit in its calls or gradient."""

    system: simulation.ExplicitSystem

    @property
    def nx(self) -> int:
        return self.system.A.shape[0]

    def simulate(self, x0, u):
        return simulation.simulate(self.system, x0, u)


class Segmented(eqx.Module):
    """Simulation in segments under ``jax.checkpoint`` (memory for long horizons).

    The backward pass stores only the state at segment boundaries and recomputes each
    segment's forward pass when it reaches it: memory ~ T/length + length steps, not T.
    """

    model: R2DN
    length: int = eqx.field(static=True)

    @property
    def nx(self) -> int:
        return self.model.nx

    def simulate(self, x0, u):
        sys = self.model.explicit()
        batch, T, nu = u.shape
        segments = jnp.swapaxes(u.reshape(batch, T // self.length, self.length, nu), 0, 1)

        @jax.checkpoint
        def segment(x, u_segment):
            return simulation.simulate(sys, x, u_segment)

        x_T, ys = jax.lax.scan(segment, x0, segments)
        return x_T, jnp.swapaxes(ys, 0, 1).reshape(batch, T, -1)
