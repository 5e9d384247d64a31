"""The section-4 unit-gain core with diagonal-plus-low-rank (DPLR) free matrices.

The construction of `r2dn.parameterizations.core.unit_gain_core`, unchanged, for the free matrices
``X = [[diag d₁, diag d₂], [U₁, U₂]]`` ((nx + r) × 2nx) and ``Y = diag(y) + Y_aᵀY_b``
(design note ``structured.md``). Every block of ``H``, ``E``, ``𝒫`` and ``A`` is then a diagonal
plus thin factors, and nothing of size nx × nx is ever formed: per sequence O(nx·k² + k³), per
step O(nx·k). ``y`` is not a parameter: the diagonal of ``Y`` cancels in ``Y − Yᵀ``.

With ``σ = p/‖X‖_F`` (``s = σ²``), ``K L⁻¹ Kᵀ`` in closed form (``Ĉ = L_s⁻¹C``, ``Ĝ = G L_s⁻ᵀ``,
``L_s L_sᵀ = I − GᵀG``, ``L_t L_tᵀ = I + ĜĜᵀ``, ``B̂ = B L_t``):

    H11 = s D₁² + εI + s U₁ᵀU₁ + ĈᵀĈ,    𝒫 = s D₂² + εI + s U₂ᵀU₂ + B̂B̂ᵀ,
    F   = s D₂D₁ + s U₂ᵀU₁ − B̂ (L_t⁻¹Ĝ) Ĉ,
    E   = Λ_E + L_E R_Eᵀ,  L_E = ½[σU₁ᵀ, Ĉᵀ, σU₂ᵀ/ᾱ, B̂/ᾱ, Y_aᵀ, Y_bᵀ],  R_E = [⋯, Y_bᵀ, −Y_aᵀ].

``F``'s low-rank part lies in the span of ``L_E``'s columns, ``F − Λ_F = L_E N_F``, so that (check
``E A = F``) ``A = E⁻¹F = diag(λ_A) + Λ_E⁻¹L_E · M⁻¹(N_F − R_Eᵀ diag λ_A)`` with
``λ_A = Λ_F/Λ_E`` and the Woodbury matrix ``M = I + R_EᵀΛ_E⁻¹L_E``: ``A``'s rank is that of
``E``'s low-rank part, ``k = 2r + 2r_Y + (nv + ny) + (nv + nu)`` (``2r + 2r_Y + 2nv`` when
contracting only).

>>> import jax, jax.numpy as jnp
>>> free = random_free(jax.random.key(0), nx=5, rank=2)
>>> B1, B2, C1 = jnp.ones((5, 3)), jnp.ones((5, 1)), jnp.ones((3, 5))
>>> core = dplr_core(free, B1, B2, C1, alpha_bar=0.9, eps=1e-3, margin_rule="relative")
>>> core.A.diagonal.shape, core.A.U.shape, core.B1.shape
((5,), (5, 14), (5, 3))
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.parameterizations._linalg import FROBENIUS_EPS, congruence_metric
from r2dn.parameterizations.core import Feedthrough
from r2dn.parameterizations.margin import MarginRule, margin_size


class DiagonalPlusLowRank(eqx.Module):
    """The n × n matrix ``diag(diagonal) + U Vᵀ``, kept as its factors.

    ``x @ M`` (rows ``x`` of shape ``(..., n)``) costs O(n·k), as does ``x @ M.T``; `dense`
    materialises it, for certificate checks only.

    >>> import jax.numpy as jnp
    >>> M = DiagonalPlusLowRank(jnp.array([1.0, 2.0]), jnp.ones((2, 1)), jnp.array([[0.0], [3.0]]))
    >>> M.dense().tolist(), (jnp.array([1.0, 1.0]) @ M.T).tolist()
    ([[1.0, 3.0], [0.0, 5.0]], [4.0, 5.0])
    """

    diagonal: Float[Array, " n"]
    U: Float[Array, "n k"]
    V: Float[Array, "n k"]

    @property
    def shape(self) -> tuple[int, int]:
        n = self.diagonal.shape[0]
        return n, n

    @property
    def dtype(self) -> jnp.dtype:
        return self.diagonal.dtype

    @property
    def rank(self) -> int:
        """Width ``k`` of the low-rank factors."""
        return self.U.shape[1]

    @property
    def T(self) -> "DiagonalPlusLowRank":
        return DiagonalPlusLowRank(self.diagonal, self.V, self.U)

    def __rmatmul__(self, x: Float[Array, "... n"]) -> Float[Array, "... n"]:
        """``x @ M = x ⊙ d + (x U) Vᵀ`` for row vectors ``x``."""
        return x * self.diagonal + (x @ self.U) @ self.V.T

    def dense(self) -> Float[Array, "n n"]:
        """The matrix itself (nx × nx): for checks, never for training or simulation."""
        return jnp.diag(self.diagonal) + self.U @ self.V.T


class LowRank(eqx.Module):
    """The n × m matrix ``U Vᵀ``, kept as its factors: ``x @ M`` costs O((n + m)·k).

    A DPLR core's ``B1`` lies in the column span of its ``A``'s ``U`` (``B1 = U Vᵀ`` with the
    same ``U``), so that one step's ``A x + B1 w = λ ⊙ x + U (Vᵀ_A x + Vᵀ w)`` needs one
    product with ``U`` (`r2dn.simulation`).

    >>> import jax.numpy as jnp
    >>> M = LowRank(jnp.ones((3, 1)), jnp.array([[1.0], [2.0]]))
    >>> M.shape, (jnp.ones(3) @ M).tolist(), M.dense().tolist()
    ((3, 2), [3.0, 6.0], [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    """

    U: Float[Array, "n k"]
    V: Float[Array, "m k"]

    @property
    def shape(self) -> tuple[int, int]:
        return self.U.shape[0], self.V.shape[0]

    @property
    def dtype(self) -> jnp.dtype:
        return self.U.dtype

    @property
    def T(self) -> "LowRank":
        return LowRank(self.V, self.U)

    def __rmatmul__(self, x: Float[Array, "... n"]) -> Float[Array, "... m"]:
        """``x @ M = (x U) Vᵀ``."""
        return (x @ self.U) @ self.V.T

    def dense(self) -> Float[Array, "n m"]:
        """The matrix itself, for checks."""
        return self.U @ self.V.T


class DPLRFree(NamedTuple):
    """Free parameters of the DPLR state matrices: ``X = [[D₁, D₂], [U₁, U₂]]``, ``p``,
    and the skew part ``Y_aᵀY_b − Y_bᵀY_a`` of ``Y − Yᵀ``."""

    d1: Float[Array, " nx"]
    d2: Float[Array, " nx"]
    U1: Float[Array, "r nx"]
    U2: Float[Array, "r nx"]
    p: Float[Array, ""]
    Ya: Float[Array, "rY nx"]
    Yb: Float[Array, "rY nx"]


class DPLRCore(NamedTuple):
    """Explicit blocks of a DPLR unit-gain core and its certificate pieces, all structured."""

    A: DiagonalPlusLowRank
    B1: LowRank
    B2: Float[Array, "nx nu"]
    E: DiagonalPlusLowRank
    Pcal: DiagonalPlusLowRank

    def metric(self) -> Float[Array, "nx nx"]:
        """The certificate ``P = Eᵀ𝒫⁻¹E``, materialised (nx × nx) for the section-6 check."""
        return congruence_metric(self.E.dense(), self.Pcal.dense())


def frobenius_dplr(free: DPLRFree) -> Float[Array, ""]:
    """``‖X‖_F`` (smoothed as `r2dn.parameterizations.frobenius`) without forming ``X``."""
    squares = sum(jnp.sum(m**2) for m in (free.d1, free.d2, free.U1, free.U2))
    return jnp.sqrt(squares + FROBENIUS_EPS)


def check_free(free: DPLRFree, nx: int) -> None:
    """Raise a ``ValueError`` unless the free parameters are for a state of size ``nx``."""
    expected = dict(d1=(nx,), d2=(nx,), p=())
    expected.update(U1=(free.U1.shape[0], nx), U2=(free.U1.shape[0], nx))
    expected.update(Ya=(free.Ya.shape[0], nx), Yb=(free.Ya.shape[0], nx))
    wrong = [
        f"{name} has shape {getattr(free, name).shape}, expected {shape}"
        for name, shape in expected.items()
        if getattr(free, name).shape != shape
    ]
    if wrong:
        raise ValueError(
            f"DPLR free parameters for nx={nx} (the rows of B̃1): " + "; ".join(wrong) + ". "
            "d₁, d₂ are (nx,), U₁, U₂ are (r, nx) and Y_a, Y_b are (r_Y, nx)."
        )


def _coupling_factors(
    B: Float[Array, "nx m"], C: Float[Array, "kc nx"], G: Float[Array, "m kc"] | None
) -> tuple[Array, Array, Array | None, Array]:
    """Thin ``(Ĉ, B̂, J, T)`` with ``K L⁻¹ Kᵀ = [[ĈᵀĈ, ·], [−B̂JĈ, B̂B̂ᵀ]]`` (``J = None``:
    zero) and ``B = B̂ T``.

    The closed form of `r2dn.parameterizations.core.coupling_gram`, regrouped so that ``𝒫``'s
    coupling has ``m`` columns rather than ``m + kc``.
    """
    eye_m = jnp.eye(B.shape[1], dtype=B.dtype)
    if G is None:
        return C, B, None, eye_m
    eye_k = jnp.eye(G.shape[1], dtype=G.dtype)
    Ls = jnp.linalg.cholesky(eye_k - G.T @ G)
    C_hat = jsl.solve_triangular(Ls, C, lower=True)
    G_hat = jsl.solve_triangular(Ls, G.T, lower=True).T
    Lt = jnp.linalg.cholesky(eye_m + G_hat @ G_hat.T)
    J = jsl.solve_triangular(Lt, G_hat, lower=True)
    return C_hat, B @ Lt, J, jsl.solve_triangular(Lt, eye_m, lower=True)


def dplr_core(
    free: DPLRFree,
    B1: Float[Array, "nx nv"],
    B2: Float[Array, "nx nu"],
    C1: Float[Array, "nv nx"],
    *,
    alpha_bar: float,
    eps: float,
    margin_rule: MarginRule,
    io: tuple[Float[Array, "ny nx"], Feedthrough] | None = None,
) -> DPLRCore:
    """`r2dn.parameterizations.core.unit_gain_core` for DPLR free matrices, in O(nx·k² + k³).

    Same arguments and meaning (``io = None``: contracting only); ``A``, ``E`` and ``𝒫`` come
    back as `DiagonalPlusLowRank`, ``B2 = E⁻¹B̃2`` by Woodbury and ``B1 = E⁻¹B̃1`` as a
    `LowRank` on ``A``'s own ``U`` (``B̃1``'s columns are in ``E``'s low-rank span). The margin
    follows ``margin_rule`` as in `r2dn.parameterizations.margin.gram_margin`, from traces of
    thin factors: ``tr(polar) = p²`` and ``tr(K L⁻¹ Kᵀ) = ‖Ĉ‖² + ‖B̂‖²``.
    """
    check_free(free, B1.shape[0])
    d1, d2, U1, U2, _, Ya, Yb = free
    sigma = free.p / frobenius_dplr(free)
    s, a = sigma**2, alpha_bar
    if io is None:
        C_hat, B_hat, J, T = _coupling_factors(B1, C1, None)
    else:
        C2, ft = io
        B = jnp.concatenate([B1, B2], axis=1)
        C_hat, B_hat, J, T = _coupling_factors(B, jnp.concatenate([C1, C2], axis=0), ft.G)
    trace_other = jnp.sum(C_hat**2) + jnp.sum(B_hat**2)
    eps = margin_size(eps, margin_rule, free.p**2 / (2 * d1.shape[0]) + trace_other)

    sym = [sigma * U1.T, C_hat.T, sigma * U2.T / a, B_hat / a]
    L_E = 0.5 * jnp.concatenate([*sym, Ya.T, Yb.T], axis=1)
    R_E = jnp.concatenate([*sym, Yb.T, -Ya.T], axis=1)
    lam_E = 0.5 * (s * d1**2 + eps + (s * d2**2 + eps) / a**2)
    lam_A = s * d1 * d2 / lam_E
    # F − Λ_F = L_E N_F: only the σU₂ᵀ/ᾱ and B̂/ᾱ blocks of L_E carry F's low-rank part.
    zeros = lambda n: jnp.zeros((n, d1.shape[0]), dtype=d1.dtype)  # noqa: E731
    N_F = jnp.concatenate(
        [
            zeros(U1.shape[0] + C_hat.shape[0]),
            2 * a * sigma * U1,
            zeros(B_hat.shape[1]) if J is None else -2 * a * J @ C_hat,
            zeros(2 * Ya.shape[0]),
        ]
    )
    U_A = L_E / lam_E[:, None]
    woodbury = jnp.eye(L_E.shape[1], dtype=L_E.dtype) + R_E.T @ U_A
    B_scaled = jnp.concatenate([B1, B2], axis=1) / lam_E[:, None]
    V_At, correction = jnp.split(
        jnp.linalg.solve(
            woodbury, jnp.concatenate([N_F - R_E.T * lam_A, R_E.T @ B_scaled], axis=1)
        ),
        [d1.shape[0]],
        axis=1,
    )
    correction_B1, correction_B2 = jnp.split(correction, [B1.shape[1]], axis=1)
    # B̃1 = B̂ T[:, :nv] and Λ_E⁻¹B̂ = 2ᾱ·(U_A's B̂ block), so B1 = U_A (2ᾱ·T₁ placed − correction).
    start = 2 * U1.shape[0] + C_hat.shape[0]
    in_span = (
        jnp.zeros_like(correction_B1)
        .at[start : start + B_hat.shape[1]]
        .set(2 * a * T[:, : B1.shape[1]])
    )
    B2_ = B_scaled[:, B1.shape[1] :] - U_A @ correction_B2
    Pcal_factor = jnp.concatenate([sigma * U2.T, B_hat], axis=1)
    return DPLRCore(
        A=DiagonalPlusLowRank(lam_A, U_A, V_At.T),
        B1=LowRank(U_A, (in_span - correction_B1).T),
        B2=B2_,
        E=DiagonalPlusLowRank(lam_E, L_E, R_E),
        Pcal=DiagonalPlusLowRank(s * d2**2 + eps, Pcal_factor, Pcal_factor),
    )


def dense_free(
    free: DPLRFree, y: Float[Array, " nx"] | None = None
) -> tuple[Float[Array, "nx+r 2nx"], Float[Array, "nx nx"]]:
    """``(X, Y)`` as dense matrices, for `r2dn.parameterizations.core.unit_gain_core` (checks).

    ``y`` is any diagonal of ``Y`` (it cancels); zero by default.
    """
    X = jnp.block([[jnp.diag(free.d1), jnp.diag(free.d2)], [free.U1, free.U2]])
    Y = free.Ya.T @ free.Yb
    return X, Y if y is None else Y + jnp.diag(y)


def random_free(
    key: PRNGKeyArray, nx: int, rank: int, *, rank_Y: int | None = None, dtype=jnp.float64
) -> DPLRFree:
    """Random initialisation: ``d₁, d₂ ~ N(0, 1)`` and LeCun-scaled factors (each low-rank term
    of norm about 1, as the diagonal), ``p = ‖X‖_F``. ``rank_Y`` defaults to ``rank``."""
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    rank_Y = rank if rank_Y is None else rank_Y
    free = DPLRFree(
        d1=jax.random.normal(k1, (nx,), dtype),
        d2=jax.random.normal(k2, (nx,), dtype),
        U1=lecun_normal(k3, (rank, nx), dtype),
        U2=lecun_normal(k4, (rank, nx), dtype),
        p=jnp.zeros((), dtype),
        Ya=lecun_normal(k5, (rank_Y, nx), dtype),
        Yb=lecun_normal(k6, (rank_Y, nx), dtype),
    )
    return free._replace(p=frobenius_dplr(free))


def long_memory_free(
    key: PRNGKeyArray,
    nx: int,
    rank: int,
    *,
    alpha_bar: float,
    eps: float,
    rank_Y: int | None = None,
    scale: float = 1e-2,
    dtype=jnp.float64,
) -> DPLRFree:
    """Section 7's long memory: ``λ_A = ᾱ(1 − 0.05·U[0.02, 1])`` elementwise, so ``A ≈ λ_A``.

    With ``d₁ = 1/ᾱ`` (``E ≈ I/ᾱ²``) and ``s = 1``, ``λ_A = 2ᾱt/(1 + t² + ε(1 + ᾱ²))`` for
    ``d₂ = t``: solve that for ``t`` (the ratio), then set ``p = ‖X‖_F`` (so ``s = 1``).
    ``U₁, U₂, Y_a, Y_b`` are ``scale`` times LeCun-random, not zero: ``UᵀU`` has no gradient at
    ``U = 0``. The model must also start ``B̃1 = C1 = 0`` and make ``B̃2, Ĉ2`` small, as they
    add low-rank terms to ``E`` and ``F``.
    """
    k_f, k_rest = jax.random.split(key)
    f = 1.0 - 0.05 * jax.random.uniform(k_f, (nx,), dtype, minval=0.02, maxval=1.0)
    e = eps * (1.0 + alpha_bar**2)
    t = (1.0 - jnp.sqrt(jnp.maximum(1.0 - f**2 * (1.0 + e), 0.0))) / f
    small = random_free(k_rest, nx, rank, rank_Y=rank_Y, dtype=dtype)
    free = DPLRFree(
        d1=jnp.full((nx,), 1.0 / alpha_bar, dtype),
        d2=t,
        U1=scale * small.U1,
        U2=scale * small.U2,
        p=jnp.zeros((), dtype),
        Ya=scale * small.Ya,
        Yb=scale * small.Yb,
    )
    return free._replace(p=frobenius_dplr(free))
