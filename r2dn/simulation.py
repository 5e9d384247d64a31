"""Explicit state-space models and their simulation with one ``lax.scan`` over time.

Every recurrent model in the library (R2DN, REN) evaluates as

    x⁺ = A x + B1 w + B2 u + bx,   w = φ(C1 x + D12 u + bv),   y = C2 x + D21 w + D22 u + by,

and differs only in φ: a 1-Lipschitz network for an R2DN, an equilibrium layer for a REN.
Work that does not depend on the state (input projections, output maps) is done for all time
steps at once outside the scan.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class ExplicitSystem(eqx.Module):
    """Explicit matrices of a recurrent model (named as in the design note) and its φ."""

    A: Float[Array, "nx nx"]
    B1: Float[Array, "nx nv"]
    B2: Float[Array, "nx nu"]
    C1: Float[Array, "nv nx"]
    C2: Float[Array, "ny nx"]
    D12: Float[Array, "nv nu"]
    D21: Float[Array, "ny nv"]
    D22: Float[Array, "ny nu"]
    bx: Float[Array, " nx"]
    bv: Float[Array, " nv"]
    by: Float[Array, " ny"]
    phi: Callable[[Float[Array, "... nv"]], Float[Array, "... nv"]]

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """``(nu, nx, nv, ny)``."""
        return self.B2.shape[1], self.A.shape[0], self.C1.shape[0], self.C2.shape[0]


def _check_inputs(sys: ExplicitSystem, x: Array, u: Array, *, sequence: bool) -> None:
    nu, nx, _, _ = sys.sizes
    u_form, min_rank = ("(..., T, nu)", 2) if sequence else ("(..., nu)", 1)
    if u.ndim < min_rank or u.shape[-1] != nu:
        raise ValueError(f"Expected u of shape {u_form} with nu={nu}; got shape {u.shape}.")
    if x.ndim < 1 or x.shape[-1] != nx:
        raise ValueError(f"Expected a state of shape (..., nx) with nx={nx}; got shape {x.shape}.")
    batch_u = u.shape[:-2] if sequence else u.shape[:-1]
    try:
        jnp.broadcast_shapes(x.shape[:-1], batch_u)
    except ValueError:
        raise ValueError(
            f"The batch dimensions of the state {x.shape[:-1]} and of u {batch_u} do not "
            "broadcast together."
        ) from None


def step(
    sys: ExplicitSystem, x: Float[Array, "... nx"], u: Float[Array, "... nu"]
) -> tuple[Float[Array, "... nx"], Float[Array, "... ny"]]:
    """One time step: ``(x, u) ↦ (x⁺, y)``."""
    _check_inputs(sys, x, u, sequence=False)
    w = sys.phi(x @ sys.C1.T + u @ sys.D12.T + sys.bv)
    x_next = x @ sys.A.T + w @ sys.B1.T + u @ sys.B2.T + sys.bx
    y = x @ sys.C2.T + w @ sys.D21.T + u @ sys.D22.T + sys.by
    return x_next, y


def simulate(
    sys: ExplicitSystem, x0: Float[Array, "... nx"], u: Float[Array, "... T nu"]
) -> tuple[Float[Array, "... nx"], Float[Array, "... T ny"]]:
    """Run the model over a sequence; returns the final state and the outputs.

    Leading batch dimensions of ``x0`` and ``u`` broadcast against each other.
    """
    _check_inputs(sys, x0, u, sequence=True)
    dtype = jnp.result_type(sys.A, x0, u)
    batch = jnp.broadcast_shapes(x0.shape[:-1], u.shape[:-2])
    x0 = jnp.broadcast_to(x0, (*batch, x0.shape[-1])).astype(dtype)
    u = jnp.moveaxis(jnp.broadcast_to(u, (*batch, *u.shape[-2:])).astype(dtype), -2, 0)
    ux = u @ sys.B2.T + sys.bx
    uv = u @ sys.D12.T + sys.bv

    def body(x, inputs):
        ux_t, uv_t = inputs
        w = sys.phi(x @ sys.C1.T + uv_t)
        return x @ sys.A.T + w @ sys.B1.T + ux_t, (x, w)

    xT, (xs, ws) = jax.lax.scan(body, x0, (ux, uv))
    y = xs @ sys.C2.T + ws @ sys.D21.T + u @ sys.D22.T + sys.by
    return xT, jnp.moveaxis(y, 0, -2)
