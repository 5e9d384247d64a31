"""Matrix building blocks shared by every direct parameterization.

Each function maps free (unconstrained) matrices to a matrix with a guaranteed property, so
that training needs no projections: a Gram matrix with a trainable norm (`polar_gram`), a
matrix with orthonormal columns (`cayley`), a matrix with positive definite symmetric part
(`positive_real`) and a strict contraction (`strict_contraction`).
All functions are differentiable everywhere, including at zero.
"""

import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float

from r2dn.parameterizations.margin import (
    DEFAULT_MARGIN_RULE,
    MarginRule,
    contraction_factor,
    margin_size,
)

#: Smoothing inside the Frobenius norm so that its gradient exists at zero.
FROBENIUS_EPS = 1e-12


def frobenius(X: Float[Array, "m n"]) -> Float[Array, ""]:
    """Smoothed Frobenius norm ``sqrt(sum X² + eps)``, safe to differentiate at ``X = 0``."""
    return jnp.sqrt(jnp.sum(X**2) + FROBENIUS_EPS)


def polar_gram(X: Float[Array, "m n"], p: Float[Array, ""], eps: float) -> Float[Array, "n n"]:
    """``(p²/‖X‖²_F) XᵀX + εI``: a positive definite matrix whose scale ``p`` is a free parameter.

    Separating direction (``X``) from magnitude (``p``) is the "polar" parameterization that
    the R2DN and REN papers train with.
    """
    n = X.shape[1]
    return (p / frobenius(X)) ** 2 * (X.T @ X) + eps * jnp.eye(n, dtype=X.dtype)


def cayley(
    X: Float[Array, "q q"], Yb: Float[Array, "p q"]
) -> tuple[Float[Array, "q q"], Float[Array, "q p"]]:
    """Cayley transform to ``(Aᵀ, B)`` such that ``[Aᵀ; Bᵀ]`` has orthonormal columns.

    ``Z = X − Xᵀ + YbᵀYb``, ``Aᵀ = (I + Z)⁻¹(I − Z)``, ``Bᵀ = −2 Yb (I + Z)⁻¹``. ``I + Z`` is
    invertible for every ``X, Yb`` because its symmetric part is ``I + YbᵀYb ≻ 0``.
    """
    At, Bt = _cayley_blocks(X - X.T + Yb.T @ Yb, Yb)
    return At, Bt.T


def _cayley_blocks(
    S: Float[Array, "n n"], W: Float[Array, "k n"]
) -> tuple[Float[Array, "n n"], Float[Array, "k n"]]:
    """``(I − S)(I + S)⁻¹`` and ``−2W(I + S)⁻¹``, for ``S`` whose symmetric part is ⪰ 0.

    With ``R = (I + S)⁻¹`` the first is ``2R − I`` (as ``I − S = 2I − (I + S)``), so both
    blocks are products with one explicit inverse. Inverting is safe here (``‖R‖ ≤ 1``), and its
    derivative is two matrix products where a solve's would be two more triangular solves.
    """
    eye = jnp.eye(S.shape[0], dtype=S.dtype)
    R = jnp.linalg.inv(eye + S)
    return 2.0 * R - eye, -2.0 * W @ R


def positive_real(
    X: Float[Array, "n n"],
    Y: Float[Array, "n n"],
    eps: float,
    rule: MarginRule = DEFAULT_MARGIN_RULE,
) -> Float[Array, "n n"]:
    """``M₀ + mI`` with ``M₀ = XᵀX + Y − Yᵀ``: its symmetric part is at least ``mI ⪰ εI``.

    ``m = ε(1 + ‖M₀‖_F/√n)`` by the "relative" rule (`r2dn.parameterizations.margin`), so the
    margin keeps its proportion to ``M₀`` (and to its round-off) at every scale; ``m = ε`` by
    the "absolute" one.
    """
    n = X.shape[0]
    M0 = X.T @ X + Y - Y.T
    if rule == "absolute":  # summed in the order of r2dn ≤ 0.2, to rebuild its models exactly
        return M0 + eps * jnp.eye(n, dtype=X.dtype)
    return M0 + margin_size(eps, rule, frobenius(M0) / n**0.5) * jnp.eye(n, dtype=X.dtype)


def strict_contraction(
    X: Float[Array, "n n"],
    Y: Float[Array, "n n"],
    Z: Float[Array, "k n"],
    eps: float,
    rule: MarginRule = DEFAULT_MARGIN_RULE,
) -> Float[Array, "n+k n"]:
    """A matrix ``N`` with ``‖N‖ < 1`` for every value of the free matrices.

    ``M = XᵀX + Y − Yᵀ + ZᵀZ + εI`` and ``N = c[(I − M)(I + M)⁻¹; −2Z(I + M)⁻¹]``, so that
    ``|Nv|² ≤ c²(|v|² − 4ε|(I + M)⁻¹v|²)``. The Cayley margin ``4ε|(I + M)⁻¹v|²`` vanishes as
    ``M`` grows, so the "relative" rule takes ``c = 1 − ε``: then ``‖N‖ ≤ 1 − ε`` at every scale
    of the free matrices ("absolute": ``c = 1``). Unlike ``W(I + WᵀW)^(-1/2)`` it needs no
    eigendecomposition, so its gradient exists at ``X = Y = Z = 0``.
    """
    M = X.T @ X + Y - Y.T + eps * jnp.eye(X.shape[0], dtype=X.dtype) + Z.T @ Z
    N = jnp.concatenate(_cayley_blocks(M, Z), axis=0)
    c = contraction_factor(eps, rule)
    return N if c == 1.0 else c * N


def congruence_metric(E: Float[Array, "n n"], Pcal: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """The certificate ``P = Eᵀ 𝒫⁻¹ E`` via a Cholesky factor of ``𝒫``; symmetric."""
    Lp = jnp.linalg.cholesky(Pcal)
    G = jsl.solve_triangular(Lp, E, lower=True)
    return G.T @ G
