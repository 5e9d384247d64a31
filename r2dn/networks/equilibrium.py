"""The equilibrium layer of a REN: ``w = σ(D11 w + b)`` with ``D11`` strictly lower triangular.

Because ``D11`` is strictly lower triangular the equilibrium is explicit: row ``i`` of ``w``
depends only on rows ``< i``, so forward substitution solves it exactly in ``nv`` steps. The
steps run in one ``lax.fori_loop`` (compile time does not grow with ``nv``). The gradient comes
from the implicit function theorem rather than from differentiating the loop: differentiating
``w = σ(D11 w + b)`` gives ``(I − J D11) dw = J (dD11 w + db)`` with ``J = diag σ'(v)``, so a
reverse pass is one triangular solve with ``(I − J D11)ᵀ`` (unit diagonal, since ``D11`` is
strictly lower triangular).
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from r2dn.networks.activations import get_activation
from r2dn.networks.base import AbstractNonlinearity


def forward_substitution(
    activation: str, D11: Float[Array, "nv nv"], b: Float[Array, "... nv"]
) -> Float[Array, "... nv"]:
    """Solve ``w = σ(D11 w + b)`` row by row; only the strictly lower part of ``D11`` is read.

    Differentiating this function differentiates the loop; `solve_equilibrium` is the same
    solve with the implicit-function gradient.
    """
    sigma = get_activation(activation)
    D11 = jnp.tril(D11, -1)

    def row(i, w):
        v_i = jax.lax.dynamic_index_in_dim(b, i, axis=-1, keepdims=False) + w @ D11[i]
        return jax.lax.dynamic_update_index_in_dim(w, sigma(v_i), i, axis=-1)

    return jax.lax.fori_loop(0, b.shape[-1], row, jnp.zeros_like(b))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def solve_equilibrium(
    activation: str, D11: Float[Array, "nv nv"], b: Float[Array, "... nv"]
) -> Float[Array, "... nv"]:
    """Solve ``w = σ(D11 w + b)`` exactly, with gradients from the implicit function theorem.

    Works for any leading batch dimensions of ``b`` and under ``jit``, ``vmap`` and reverse-mode
    differentiation (forward mode, e.g. ``jax.jacfwd``, is not defined for it).
    """
    return forward_substitution(activation, D11, b)


def _solve_fwd(activation, D11, b):
    w = forward_substitution(activation, D11, b)
    D11 = jnp.tril(D11, -1)
    v = w @ D11.T + b
    slope = jax.jvp(get_activation(activation), (v,), (jnp.ones_like(v),))[1]
    # Only vectors of size nv per sample are kept: I − J D11 is rebuilt in the reverse pass.
    return w, (D11, w, slope)


def _solve_bwd(activation, residuals, g):
    D11, w, slope = residuals
    eye = jnp.eye(D11.shape[0], dtype=D11.dtype)
    lower = eye - slope[..., :, None] * D11
    # λ = (I − J D11)⁻ᵀ g, then the cotangent of v is Jλ.
    lam = jax.lax.linalg.triangular_solve(
        lower, g[..., :, None], left_side=True, lower=True, transpose_a=True, unit_diagonal=True
    )[..., 0]
    g_v = slope * lam
    g_D11 = jnp.tril(jnp.einsum("...i,...j->ij", g_v, w), -1)
    return g_D11, g_v


solve_equilibrium.defvjp(_solve_fwd, _solve_bwd)


class EquilibriumLayer(AbstractNonlinearity):
    """The map ``b ↦ w`` with ``w = σ(D11 w + b)``: the nonlinearity φ of a REN.

    ``D11`` is stored strictly lower triangular (anything on or above the diagonal is dropped).

    >>> import jax.numpy as jnp
    >>> layer = EquilibriumLayer(jnp.array([[0.0, 0.0], [-2.0, 0.0]]), "relu")
    >>> layer(jnp.array([1.0, 3.0])).tolist()  # w₀ = relu(1) = 1, w₁ = relu(3 − 2·1) = 1
    [1.0, 1.0]
    """

    D11: Float[Array, "nv nv"]
    activation: str = eqx.field(static=True)

    def __init__(self, D11: Float[Array, "nv nv"], activation: str = "relu"):
        get_activation(activation)
        if D11.ndim != 2 or D11.shape[0] != D11.shape[1]:
            raise ValueError(f"D11 must be a square nv×nv matrix; got shape {D11.shape}.")
        self.D11 = jnp.tril(D11, -1)
        self.activation = activation

    def __call__(self, b: Float[Array, "... nv"]) -> Float[Array, "... nv"]:
        return solve_equilibrium(self.activation, self.D11, b)
