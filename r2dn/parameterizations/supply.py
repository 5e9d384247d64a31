"""Supply rates: the robustness property a model is built to satisfy, as data.

A (Q, S, R) supply rate asks that, for any two input sequences from the same initial state,

    Σ_t [Δy; Δu]ᵀ [[Q, Sᵀ], [S, R]] [Δy; Δu] ≥ 0,

with ``Q ≺ 0``, or ``Q = 0`` (passivity-type rates, which only RENs support). γ-Lipschitz is
``Q = −I/γ, S = 0, R = γI``. A model that is only contracting has no supply rate (``None``).
The R2DN parameterization never branches on the kind of supply rate: it transforms it to
unit-gain coordinates (section 4(a) of the design note) and back, which needs ``Q ≺ 0``.
"""

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class UnitGainFactors(NamedTuple):
    """Factors of a supply rate: ``−Q = L_QᵀL_Q``, ``R − SQ⁻¹Sᵀ = L_RᵀL_R``, and ``−Q⁻¹Sᵀ``."""

    LQ: Float[Array, "ny ny"]
    LQ_inv: Float[Array, "ny ny"]
    LR: Float[Array, "nu nu"]
    D22_offset: Float[Array, "ny nu"]


def _square_matrix(name: str, M, n: int | None = None) -> np.ndarray:
    M = np.atleast_2d(np.asarray(M, dtype=np.float64))
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {M.shape}.")
    if n is not None and M.shape[0] != n:
        raise ValueError(f"{name} must be {n}×{n}; got shape {M.shape}.")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or inf.")
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric.")
    return (M + M.T) / 2


#: Magnitudes a supply rate's matrices may have: outside, the factors of section 5 overflow or
#: vanish in floating point (γ = 1e30, Q = −1e-300) and the certificate is meaningless.
SCALE_RANGE = (1e-8, 1e8)


def _check_scale(name: str, M: np.ndarray) -> None:
    """Reject a matrix whose nonzero entries lie outside `SCALE_RANGE`."""
    magnitudes = np.abs(M[M != 0])
    low, high = SCALE_RANGE
    if magnitudes.size and (magnitudes.min() < low or magnitudes.max() > high):
        raise ValueError(
            f"{name} has entries of magnitude {magnitudes.min():.3g}…{magnitudes.max():.3g}; "
            f"supply rates must have nonzero entries between {low:g} and {high:g} (e.g. a "
            "Lipschitz bound γ in that range). Rescale the inputs or outputs instead."
        )


def _check_bounded(Q: np.ndarray, S: np.ndarray, R: np.ndarray) -> None:
    """A rate with ``Q ≠ 0`` needs ``Q ≺ 0`` and ``R − S Q⁻¹ Sᵀ ≻ 0``."""
    q_max = np.linalg.eigvalsh(Q).max()
    if q_max >= 0:
        raise ValueError(
            f"Q must be negative definite (or exactly zero, for passivity); its largest "
            f"eigenvalue is {q_max:.3g}. For a γ-Lipschitz bound use Q = −I/γ, S = 0, R = γI."
        )
    r_min = np.linalg.eigvalsh(R - S @ np.linalg.solve(Q, S.T)).min()
    if r_min <= 0:
        raise ValueError(
            f"R − S Q⁻¹ Sᵀ must be positive definite; its smallest eigenvalue is {r_min:.3g}, "
            "so no system satisfies this supply rate. Increase R or reduce S."
        )


@dataclass(frozen=True, eq=False)
class SupplyRate:
    """An incremental (Q, S, R) supply rate; ``Q`` is ny×ny, ``S`` is nu×ny, ``R`` is nu×nu.

    Validated on construction: either ``Q ≺ 0`` and ``R − S Q⁻¹ Sᵀ ≻ 0``, or ``Q = 0`` with
    ``S`` square and invertible (otherwise no model can satisfy it). Hashable, so models keep
    it as a static (non-trainable) field.

    >>> rate = SupplyRate.lipschitz(2.0, nu=1, ny=1)
    >>> rate.gamma
    2.0
    """

    Q: np.ndarray
    S: np.ndarray
    R: np.ndarray

    def __post_init__(self):
        Q = _square_matrix("Q", self.Q)
        R = _square_matrix("R", self.R)
        S = np.atleast_2d(np.asarray(self.S, dtype=np.float64))
        if S.shape != (R.shape[0], Q.shape[0]):
            raise ValueError(
                f"S must be nu×ny = {R.shape[0]}×{Q.shape[0]} (R is nu×nu, Q is ny×ny); "
                f"got shape {S.shape}."
            )
        if not np.all(np.isfinite(S)):
            raise ValueError("S contains NaN or inf.")
        for name, value in (("Q", Q), ("S", S), ("R", R)):
            _check_scale(name, value)
        if np.any(Q):
            _check_bounded(Q, S, R)
        elif S.shape[0] != S.shape[1] or np.linalg.cond(S) > 1e12:
            raise ValueError(
                "Q must be negative definite, or exactly zero (a passivity-type rate) with S "
                f"square and invertible (nu == ny); got Q = 0 and S of shape {S.shape} with "
                f"condition number {np.linalg.cond(S):.3g}."
            )
        for name, value in (("Q", Q), ("S", S), ("R", R)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def lipschitz(cls, gamma: float, nu: int, ny: int) -> "SupplyRate":
        """``‖Δy‖ ≤ γ‖Δu‖``: ``Q = −I/γ``, ``S = 0``, ``R = γI``."""
        gamma = float(gamma)
        if not np.isfinite(gamma) or gamma <= 0:
            raise ValueError(f"The Lipschitz bound gamma must be a positive number; got {gamma}.")
        return cls(-np.eye(ny) / gamma, np.zeros((nu, ny)), gamma * np.eye(nu))

    @classmethod
    def passive(cls, n: int, nu_index: float = 0.0, rho_index: float = 0.0) -> "SupplyRate":
        """``Σ Δyᵀ Δu ≥ ν Σ|Δu|² + ρ Σ|Δy|²``: ``Q = −ρI``, ``S = ½I``, ``R = −νI`` (nu = ny = n).

        ``ν`` (``nu_index``) is the input and ``ρ`` (``rho_index``) the output passivity index;
        ``ν = ρ = 0`` is plain incremental passivity. A system can only meet both if ``ρν < ¼``.
        """
        nu_index, rho_index = float(nu_index), float(rho_index)
        for name, value in (("nu_index", nu_index), ("rho_index", rho_index)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"The passivity index {name} must be finite and ≥ 0; got {value}.")
        if rho_index * nu_index >= 0.25:
            raise ValueError(
                f"Passivity indices need rho_index·nu_index < 1/4; got ρν = "
                f"{rho_index}·{nu_index} = {rho_index * nu_index:.4g}. No system is that passive."
            )
        return cls(-rho_index * np.eye(n), 0.5 * np.eye(n), -nu_index * np.eye(n))

    @property
    def nu(self) -> int:
        return self.R.shape[0]

    @property
    def ny(self) -> int:
        return self.Q.shape[0]

    @property
    def gamma(self) -> float | None:
        """The Lipschitz bound if this is a pure γ-Lipschitz rate, else ``None``."""
        gamma = self.R[0, 0]
        if gamma <= 0:
            return None
        lipschitz = SupplyRate.lipschitz(gamma, self.nu, self.ny)
        return float(gamma) if self == lipschitz else None

    def check_sizes(self, nu: int, ny: int) -> None:
        """Raise a ``ValueError`` unless this rate is for ``nu`` inputs and ``ny`` outputs."""
        if (self.nu, self.ny) != (nu, ny):
            raise ValueError(
                f"The supply rate is for nu={self.nu}, ny={self.ny} (R is {self.nu}×{self.nu}, "
                f"Q is {self.ny}×{self.ny}) but the model has nu={nu}, ny={ny}."
            )

    @property
    def unit_gain(self) -> bool:
        """Whether the rate maps to unit gain (``Q ≺ 0``); ``False`` for ``Q = 0``."""
        return bool(np.any(self.Q))

    def check_unit_gain(self) -> None:
        """Raise a ``ValueError`` unless ``Q ≺ 0``, which the unit-gain (R2DN) core needs."""
        if not self.unit_gain:
            raise ValueError(
                "This supply rate has Q = 0 (passivity), which has no unit-gain form; use a "
                "REN (e.g. PassiveREN), or a rate with Q ≺ 0 (an output-strict passivity "
                "index rho_index > 0 gives Q = −ρI)."
            )

    def factors(self, dtype) -> UnitGainFactors:
        """Unit-gain factors (section 4(a)), computed in float64 and cast to ``dtype``."""
        self.check_unit_gain()
        LQ = np.linalg.cholesky(-self.Q).T
        R_hat = self.R - self.S @ np.linalg.solve(self.Q, self.S.T)
        LR = np.linalg.cholesky(R_hat).T
        offset = -np.linalg.solve(self.Q, self.S.T)
        return UnitGainFactors(
            *(jnp.asarray(M, dtype=dtype) for M in (LQ, np.linalg.inv(LQ), LR, offset))
        )

    def matrix(self) -> np.ndarray:
        """The symmetric supply matrix ``[[Q, Sᵀ], [S, R]]`` over ``(y, u)``."""
        return np.block([[self.Q, self.S.T], [self.S, self.R]])

    def __call__(
        self, dy: Float[Array, "... ny"], du: Float[Array, "... nu"]
    ) -> Float[Array, "..."]:
        """Supply ``Δyᵀ Q Δy + 2 Δuᵀ S Δy + Δuᵀ R Δu`` at each time step."""
        Q, S, R = (jnp.asarray(M, dtype=dy.dtype) for M in (self.Q, self.S, self.R))
        return (
            jnp.einsum("...i,ij,...j->...", dy, Q, dy)
            + 2 * jnp.einsum("...i,ij,...j->...", du, S, dy)
            + jnp.einsum("...i,ij,...j->...", du, R, du)
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, SupplyRate) and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in "QSR"
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k).tobytes() for k in "QSR"))

    def __repr__(self) -> str:
        gamma = self.gamma
        if gamma is not None:
            return f"SupplyRate.lipschitz({gamma}, nu={self.nu}, ny={self.ny})"
        return f"SupplyRate(Q={self.Q.tolist()}, S={self.S.tolist()}, R={self.R.tolist()})"
