"""The normalised unit-gain core (section 4 of the design note): one routine for every R2DN.

Supply rates are transformed to unit gain (`SupplyRate.factors`), a unit-gain core is built
here, and the result is mapped back by `to_user_coordinates`. A contracting model is the same
core without the input/output blocks. RENs reuse `implicit_state_matrix` and `solve_implicit`.
"""

from typing import NamedTuple

import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float

from r2dn.parameterizations._linalg import congruence_metric, polar_gram
from r2dn.parameterizations.margin import MarginRule, contraction_factor, gram_margin
from r2dn.parameterizations.supply import UnitGainFactors


class Core(NamedTuple):
    """Explicit state-space blocks of a unit-gain core and the pieces of its certificate."""

    A: Float[Array, "nx nx"]
    B1: Float[Array, "nx nv"]
    B2: Float[Array, "nx nu"]
    E: Float[Array, "nx nx"]
    Pcal: Float[Array, "nx nx"]

    def metric(self) -> Float[Array, "nx nx"]:
        """The certificate ``P = Eᵀ𝒫⁻¹E`` (design note, section 6)."""
        return congruence_metric(self.E, self.Pcal)


class Feedthrough(NamedTuple):
    """Unit-gain feedthrough matrices and the off-diagonal block ``G`` of ``L``."""

    D12: Float[Array, "nv nu"]
    D21: Float[Array, "ny nv"]
    D22: Float[Array, "ny nu"]
    G: Float[Array, "nv+nu nv+ny"]


def unit_gain_feedthrough(
    D12: Float[Array, "nv nu"],
    D21: Float[Array, "ny nv"],
    N: Float[Array, "ny nu"] | None,
    *,
    eps: float,
    margin_rule: MarginRule,
) -> Feedthrough:
    """Feedthroughs from three strict contractions, with ``D̂22 = L_y N L_uᵀ`` (zero if no ``N``).

    ``L_u L_uᵀ = I − D̂12ᵀD̂12`` and ``L_y L_yᵀ = I − D̂21D̂21ᵀ``; this makes
    ``L = [[I, G], [Gᵀ, I]] ≻ 0`` with ``G = [[0, D̂21ᵀ], [D̂12ᵀ, D̂22ᵀ]]`` over (w, u) × (v, y).
    The "relative" ``margin_rule`` scales all three by ``1 − ε``: then ``‖G‖ ≤ 1 − ε`` and
    ``L ⪰ εI`` (margins of the three contractions alone would multiply, ``~ε²``).
    """
    nv, nu = D12.shape
    ny = D21.shape[0]
    if N is None:
        D22 = jnp.zeros((ny, nu), dtype=D12.dtype)
    else:
        Lu = jnp.linalg.cholesky(jnp.eye(nu, dtype=D12.dtype) - D12.T @ D12)
        Ly = jnp.linalg.cholesky(jnp.eye(ny, dtype=D12.dtype) - D21 @ D21.T)
        D22 = Ly @ N @ Lu.T
    c = contraction_factor(eps, margin_rule)
    if c != 1.0:
        D12, D21, D22 = c * D12, c * D21, c * D22
    G = jnp.block([[jnp.zeros((nv, nv), dtype=D12.dtype), D21.T], [D12.T, D22.T]])
    return Feedthrough(D12, D21, D22, G)


def coupling_gram(
    B: Float[Array, "nx m"], C: Float[Array, "k nx"], G: Float[Array, "m k"] | None
) -> Float[Array, "2nx 2nx"]:
    """``K L⁻¹ Kᵀ`` for ``K = [[0, Cᵀ], [B, 0]]`` over (x, x⁺) and ``L = [[I, G], [Gᵀ, I]]``.

    Closed form through the Schur complement ``S = I − GᵀG`` (one Cholesky of size ``k``):
    blocks ``CᵀS⁻¹C``, ``−BGS⁻¹C`` and ``BBᵀ + BGS⁻¹GᵀBᵀ``. ``G = None`` means ``L = I``.
    """
    if G is None:
        Cs, BGs = C, jnp.zeros_like(C, shape=(C.shape[0], B.shape[0]))
    else:
        Ls = jnp.linalg.cholesky(jnp.eye(G.shape[1], dtype=G.dtype) - G.T @ G)
        Cs = jsl.solve_triangular(Ls, C, lower=True)
        BGs = jsl.solve_triangular(Ls, (B @ G).T, lower=True)
    stacked = jnp.concatenate([Cs, -BGs], axis=1)
    gram = stacked.T @ stacked
    nx = B.shape[0]
    return gram.at[nx:, nx:].add(B @ B.T)


def certificate_gram(
    X: Float[Array, "m n"],
    p: Float[Array, ""],
    other: Float[Array, "n n"],
    *,
    eps: float,
    margin_rule: MarginRule,
) -> Float[Array, "n n"]:
    """``H = polar(X) + other + mI``, with the margin ``m`` of `gram_margin`.

    Shared by R2DN (``other = K L⁻¹ Kᵀ``) and REN (``other`` = its supply terms).
    """
    if margin_rule == "absolute":  # summed in the order of r2dn ≤ 0.2, to rebuild its models
        return polar_gram(X, p, eps) + other
    polar = polar_gram(X, p, 0.0)
    m = gram_margin(polar, other, eps, margin_rule)
    return polar + other + m * jnp.eye(polar.shape[0], dtype=polar.dtype)


def implicit_state_matrix(
    H11: Float[Array, "nx nx"],
    Pcal: Float[Array, "nx nx"],
    Y: Float[Array, "nx nx"],
    alpha_bar: float,
) -> Float[Array, "nx nx"]:
    """``E = ½(H11 + 𝒫/ᾱ² + Y − Yᵀ)``; ``E + Eᵀ ≻ 0`` so ``E`` is invertible."""
    return 0.5 * (H11 + Pcal / alpha_bar**2 + Y - Y.T)


def solve_implicit(E: Float[Array, "nx nx"], *blocks: Float[Array, "nx _"]) -> list[Array]:
    """``E⁻¹ M`` for each block ``M``, with one LU factorisation of ``E``."""
    widths = [b.shape[1] for b in blocks]
    solved = jnp.linalg.solve(E, jnp.concatenate(blocks, axis=1))
    return jnp.split(solved, np.cumsum(widths[:-1]), axis=1)


def unit_gain_core(
    X: Float[Array, "m 2nx"],
    p: Float[Array, ""],
    Y: Float[Array, "nx nx"],
    B1: Float[Array, "nx nv"],
    B2: Float[Array, "nx nu"],
    C1: Float[Array, "nv nx"],
    *,
    alpha_bar: float,
    eps: float,
    margin_rule: MarginRule,
    io: tuple[Float[Array, "ny nx"], Feedthrough] | None = None,
) -> Core:
    """The section-4(b) core: ``H = polar(X) + K L⁻¹ Kᵀ + mI``, then ``A = E⁻¹F`` and so on.

    With ``io = (Ĉ2, feedthrough)`` the inputs and outputs enter the certificate (a unit-gain
    bound); with ``io = None`` only ``B̃1`` and ``C1`` do, which certifies contraction alone.
    The margin ``m ≥ ε`` follows ``margin_rule`` (`certificate_gram`).
    """
    nx = Y.shape[0]
    if io is None:
        coupling = coupling_gram(B1, C1, None)
    else:
        C2, ft = io
        B = jnp.concatenate([B1, B2], axis=1)
        C = jnp.concatenate([C1, C2], axis=0)
        coupling = coupling_gram(B, C, ft.G)
    H = certificate_gram(X, p, coupling, eps=eps, margin_rule=margin_rule)
    H11, F, Pcal = H[:nx, :nx], H[nx:, :nx], H[nx:, nx:]
    E = implicit_state_matrix(H11, Pcal, Y, alpha_bar)
    A, B1_, B2_ = solve_implicit(E, F, B1, B2)
    return Core(A, B1_, B2_, E, Pcal)


def to_user_coordinates(
    f: UnitGainFactors,
    B2: Float[Array, "nx nu"],
    C2: Float[Array, "ny nx"],
    ft: Feedthrough,
) -> tuple[Array, Array, Array, Array, Array]:
    """Section 4(c): ``(B2, D12, C2, D21, D22)`` in the user's coordinates from unit gain."""
    return (
        B2 @ f.LR,
        ft.D12 @ f.LR,
        f.LQ_inv @ C2,
        f.LQ_inv @ ft.D21,
        f.LQ_inv @ ft.D22 @ f.LR + f.D22_offset,
    )
