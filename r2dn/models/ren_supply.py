"""The supply-rate part of a REN: its feedthrough ``D22`` and its terms of ``H``.

One final part per kind of supply rate, each validating the rate it is built for:

- `ContractingSupply`: no supply rate; ``D22`` free or zero, nothing added to ``H``;
- `UnitGainSupply`: (Q, S, R) with ``Q ≺ 0`` (γ-Lipschitz among them);
  ``D22 = −Q⁻¹Sᵀ + L_Q⁻¹ N L_R`` with ``N`` a strict contraction (or zero);
- `PassiveSupply`: ``Q = 0`` (incremental passivity); ``D22 = S⁻¹(M − R/2)`` with ``M``
  positive real.

`REN` asks `supply_part` for the part of its rate: the first class in `SUPPLY_PARTS` that
`accepts` it (`r2dn.models.base.choose_part`, the rule an R2DN's input/output blocks follow
too). A new kind of supply rate is one new subclass of `AbstractRENSupply` and one entry in
`SUPPLY_PARTS` (docs/architecture.md walks through it).
"""

import abc
from typing import final

import equinox as eqx
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.models.base import (
    AbstractSupplyPart,
    Feedthrough,
    choose_part,
    free_feedthrough,
    unit_gain_contraction,
)
from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.margin import MarginRule
from r2dn.parameterizations.positive import PositiveReal
from r2dn.parameterizations.supply import SupplyRate


class AbstractRENSupply(AbstractSupplyPart):
    """What a REN's supply rate decides: ``D22``, ``𝓡`` and the rate's terms of ``H``."""

    @abc.abstractmethod
    def feedthrough(self, dtype) -> Float[Array, "ny nu"]:
        """The explicit ``D22``."""

    @abc.abstractmethod
    def gram(
        self,
        C2: Float[Array, "ny nx"],
        D21: Float[Array, "ny nv"],
        D12: Float[Array, "nv nu"],
        B2: Float[Array, "nx nu"],
    ) -> Float[Array, "2nx+nv 2nx+nv"]:
        """What the supply rate adds to ``H`` over the blocks ``(x, w, x⁺)``."""


def supply_gram(
    supply: SupplyRate,
    D22: Float[Array, "ny nu"],
    Rcal: Float[Array, "nu nu"],
    C2: Float[Array, "ny nx"],
    D21: Float[Array, "ny nv"],
    D12: Float[Array, "nv nu"],
    B2: Float[Array, "nx nu"],
) -> Float[Array, "2nx+nv 2nx+nv"]:
    """``Vᵀ𝓡⁻¹V − UᵀQU`` over ``(x, w, x⁺)``, for ``𝓡 = R + S D22 + D22ᵀSᵀ + D22ᵀQ D22 ≻ 0``.

    ``V = [M C2, M D21 − D̃12ᵀ, B̃2ᵀ]`` with ``M = D22ᵀQ + S``, and ``U = [C2, D21, 0]``.
    """
    dtype = D22.dtype
    Q, S = (jnp.asarray(A, dtype=dtype) for A in (supply.Q, supply.S))
    M = D22.T @ Q + S
    V = jnp.concatenate([M @ C2, M @ D21 - D12.T, B2.T], axis=1)
    U = jnp.concatenate([C2, D21, jnp.zeros_like(C2)], axis=1)
    V = jsl.solve_triangular(jnp.linalg.cholesky(Rcal), V, lower=True)
    return V.T @ V - U.T @ Q @ U


@final
class ContractingSupply(AbstractRENSupply):
    """No supply rate: ``D22`` is free (or zero) and adds nothing to ``H``."""

    D22: Float[Array, "ny nu"] | None  # None: D22 = 0
    nu: int = eqx.field(static=True)
    ny: int = eqx.field(static=True)
    supply: None = eqx.field(static=True)

    def __init__(
        self,
        supply: None,
        feedthrough: Feedthrough,
        nu: int,
        ny: int,
        *,
        key: PRNGKeyArray,
        eps: float,
        margin_rule: MarginRule,
        dtype,
    ):
        if supply is not None:
            raise ValueError("ContractingSupply is for models without a supply rate.")
        self.D22 = free_feedthrough(feedthrough, ny, nu, dtype)
        self.nu, self.ny, self.supply = nu, ny, None

    @classmethod
    def accepts(cls, supply: SupplyRate | None) -> bool:
        return supply is None

    def feedthrough(self, dtype) -> Float[Array, "ny nu"]:
        return jnp.zeros((self.ny, self.nu), dtype) if self.D22 is None else self.D22

    def gram(self, C2, D21, D12, B2) -> Float[Array, "2nx+nv 2nx+nv"]:
        n = 2 * C2.shape[1] + D21.shape[1]
        return jnp.zeros((n, n), C2.dtype)


@final
class UnitGainSupply(AbstractRENSupply):
    """(Q, S, R) with ``Q ≺ 0``: ``D22 = −Q⁻¹Sᵀ + L_Q⁻¹ N L_R``, so ``𝓡 = L_Rᵀ(I − NᵀN)L_R``."""

    N: StrictContraction | None  # None: N = 0 (feedthrough="zero")
    supply: SupplyRate = eqx.field(static=True)

    def __init__(
        self,
        supply: SupplyRate,
        feedthrough: Feedthrough,
        nu: int,
        ny: int,
        *,
        key: PRNGKeyArray,
        eps: float,
        margin_rule: MarginRule,
        dtype,
    ):
        supply.check_unit_gain()
        self.supply = supply
        self.N = unit_gain_contraction(
            feedthrough, ny, nu, key=key, eps=eps, margin_rule=margin_rule, dtype=dtype
        )

    @classmethod
    def accepts(cls, supply: SupplyRate | None) -> bool:
        return supply is not None and supply.unit_gain

    def _feedthrough(self, dtype) -> tuple[Float[Array, "ny nu"], Float[Array, "nu nu"]]:
        f = self.supply.factors(dtype)
        shape = (self.supply.ny, self.supply.nu)
        N = jnp.zeros(shape, dtype) if self.N is None else self.N()
        eye = jnp.eye(self.supply.nu, dtype=dtype)
        return f.D22_offset + f.LQ_inv @ N @ f.LR, f.LR.T @ (eye - N.T @ N) @ f.LR

    def feedthrough(self, dtype) -> Float[Array, "ny nu"]:
        return self._feedthrough(dtype)[0]

    def gram(self, C2, D21, D12, B2) -> Float[Array, "2nx+nv 2nx+nv"]:
        D22, Rcal = self._feedthrough(C2.dtype)
        return supply_gram(self.supply, D22, Rcal, C2, D21, D12, B2)


@final
class PassiveSupply(AbstractRENSupply):
    """``Q = 0``: ``D22 = S⁻¹(M − R/2)`` with ``M`` positive real, so ``𝓡 = M + Mᵀ ≻ 0``."""

    M: PositiveReal
    supply: SupplyRate = eqx.field(static=True)

    def __init__(
        self,
        supply: SupplyRate,
        feedthrough: Feedthrough,
        nu: int,
        ny: int,
        *,
        key: PRNGKeyArray,
        eps: float,
        margin_rule: MarginRule,
        dtype,
    ):
        if supply is None or np.any(supply.Q):
            raise ValueError("PassiveSupply is for supply rates with Q = 0 (passivity).")
        if feedthrough != "free":
            raise ValueError(
                "A supply rate with Q = 0 (passivity) needs feedthrough='free': its D22 must "
                "make R + S D22 + D22ᵀSᵀ positive definite, so it cannot be fixed."
            )
        self.supply = supply
        self.M = PositiveReal(nu, key=key, eps=eps, margin_rule=margin_rule, dtype=dtype)

    @classmethod
    def accepts(cls, supply: SupplyRate | None) -> bool:
        return supply is not None and not supply.unit_gain

    def _feedthrough(self, dtype) -> tuple[Float[Array, "ny nu"], Float[Array, "nu nu"]]:
        M = self.M()
        S, R = (jnp.asarray(A, dtype=dtype) for A in (self.supply.S, self.supply.R))
        return jnp.linalg.solve(S, M - R / 2), M + M.T

    def feedthrough(self, dtype) -> Float[Array, "ny nu"]:
        return self._feedthrough(dtype)[0]

    def gram(self, C2, D21, D12, B2) -> Float[Array, "2nx+nv 2nx+nv"]:
        D22, Rcal = self._feedthrough(C2.dtype)
        return supply_gram(self.supply, D22, Rcal, C2, D21, D12, B2)


#: The supply-rate parts a REN chooses from, in order: the first that `accepts` a rate builds it.
SUPPLY_PARTS: list[type[AbstractRENSupply]] = [ContractingSupply, UnitGainSupply, PassiveSupply]


def supply_part(supply: SupplyRate | None) -> type[AbstractRENSupply]:
    """The part of `SUPPLY_PARTS` for ``supply``.

    >>> from r2dn.parameterizations import SupplyRate
    >>> supply_part(SupplyRate.lipschitz(2.0, 1, 1)).__name__
    'UnitGainSupply'
    """
    return choose_part(SUPPLY_PARTS, supply, "REN")
