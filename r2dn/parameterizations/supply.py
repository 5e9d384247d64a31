"""Supply rates: the robustness property a model is built to satisfy, as data.

A (Q, S, R) supply rate asks that, for any two input sequences from the same initial state,

    Σ_t [Δy; Δu]ᵀ [[Q, Sᵀ], [S, R]] [Δy; Δu] ≥ 0,

with ``Q ≺ 0``. γ-Lipschitz is ``Q = −I/γ, S = 0, R = γI``. A model that is only contracting has
no supply rate (``None``). The parameterizations never branch on the kind of supply rate: they
transform it to unit-gain coordinates (section 4(a) of the design note) and back.
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


@dataclass(frozen=True, eq=False)
class SupplyRate:
    """An incremental (Q, S, R) supply rate; ``Q`` is ny×ny, ``S`` is nu×ny, ``R`` is nu×nu.

    Validated on construction: ``Q ≺ 0`` and ``R − S Q⁻¹ Sᵀ ≻ 0`` (otherwise no model can
    satisfy it). Hashable, so models keep it as a static (non-trainable) field.

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
        q_max = np.linalg.eigvalsh(Q).max()
        if q_max >= 0:
            raise ValueError(
                f"Q must be negative definite; its largest eigenvalue is {q_max:.3g}. "
                "For a γ-Lipschitz bound use Q = −I/γ, S = 0, R = γI."
            )
        r_min = np.linalg.eigvalsh(R - S @ np.linalg.solve(Q, S.T)).min()
        if r_min <= 0:
            raise ValueError(
                f"R − S Q⁻¹ Sᵀ must be positive definite; its smallest eigenvalue is {r_min:.3g}, "
                "so no system satisfies this supply rate. Increase R or reduce S."
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
        lipschitz = SupplyRate.lipschitz(gamma, self.nu, self.ny)
        return float(gamma) if self == lipschitz else None

    def check_sizes(self, nu: int, ny: int) -> None:
        """Raise a ``ValueError`` unless this rate is for ``nu`` inputs and ``ny`` outputs."""
        if (self.nu, self.ny) != (nu, ny):
            raise ValueError(
                f"The supply rate is for nu={self.nu}, ny={self.ny} (R is {self.nu}×{self.nu}, "
                f"Q is {self.ny}×{self.ny}) but the model has nu={nu}, ny={ny}."
            )

    def factors(self, dtype) -> UnitGainFactors:
        """Unit-gain factors (section 4(a)), computed in float64 and cast to ``dtype``."""
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
