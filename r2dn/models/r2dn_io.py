"""An R2DN's input/output block: outputs, feedthroughs and what its supply rate adds to ``H``.

One final block per kind of supply rate, each validating the rate it is built for:

- `ContractingIO`: no supply rate; ``C2, D12, D21`` free and ``D22`` free or zero; nothing of
  it enters ``H``;
- `UnitGainIO`: (Q, S, R) with ``Q ≺ 0`` (γ-Lipschitz among them), through the unit-gain
  transform of section 4: ``Ĉ2`` free and ``D̂12, D̂21, N`` strict contractions, which enter
  ``H`` as ``Ĉ2`` (in ``K``) and ``G`` (in ``L``). A rate with ``Q = 0`` has no unit-gain form: the
  block rejects it (use a REN).

Every block stores ``C2 = None`` for an identity output (``y = x``). `R2DN` asks `io_part` for
the block of its rate: the first class in `IO_PARTS` that `accepts` it (the rule REN supply
parts follow, `r2dn.models.base.choose_part`). A new kind of supply rate is one new subclass of
`AbstractR2DNIO` and one entry in `IO_PARTS`.
"""

import abc
from typing import NamedTuple, Self, final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.models.base import (
    AbstractSupplyPart,
    Feedthrough,
    choose_part,
    free_feedthrough,
    unit_gain_contraction,
    zero_if_none,
)
from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.core import (
    Feedthrough as UnitGainFeedthrough,
)
from r2dn.parameterizations.core import (
    to_user_coordinates,
    unit_gain_feedthrough,
)
from r2dn.parameterizations.margin import MarginRule
from r2dn.parameterizations.supply import SupplyRate

#: What a block couples into ``H``: ``(Ĉ2, unit-gain feedthrough)``, or ``None``.
IOCoupling = tuple[Float[Array, "ny nx"], UnitGainFeedthrough] | None


class Outputs(NamedTuple):
    """The explicit input and output matrices, in the user's coordinates."""

    B2: Float[Array, "nx nu"]
    C2: Float[Array, "ny nx"]
    D12: Float[Array, "nv nu"]
    D21: Float[Array, "ny nv"]
    D22: Float[Array, "ny nu"]


class AbstractR2DNIO(AbstractSupplyPart):
    """What an R2DN's supply rate decides: its couplings into ``H`` and its explicit outputs.

    Every final block is built as ``Block(supply, feedthrough, identity_output, nu, nx, nv, ny,
    key=key, eps=eps, margin_rule=margin_rule, dtype=dtype)``.
    """

    @abc.abstractmethod
    def coupling(self, dtype) -> IOCoupling:
        """``(Ĉ2, feedthrough)`` entering ``H``, or ``None`` when nothing of the block does."""

    @abc.abstractmethod
    def outputs(self, B2: Float[Array, "nx nu"], dtype) -> Outputs:
        """The explicit ``B2, C2, D12, D21, D22`` from the LTI part's ``B2 = E⁻¹B̃2``."""

    @abc.abstractmethod
    def scaled(self, s: float) -> Self:
        """A copy whose couplings into ``H`` are scaled by ``s`` (the long-memory start)."""


def _identity(C2: Float[Array, "ny nx"] | None, ny: int, dtype) -> Float[Array, "ny nx"]:
    """The explicit ``C2``: ``I`` for an identity output (``C2 = None``; then ``ny = nx``)."""
    return jnp.eye(ny, dtype=dtype) if C2 is None else C2


@final
class ContractingIO(AbstractR2DNIO):
    """No supply rate: free ``C2, D12, D21``, ``D22`` free (from zero) or zero; none enter ``H``."""

    C2: Float[Array, "ny nx"] | None  # None: identity output
    D12: Float[Array, "nv nu"]
    D21: Float[Array, "ny nv"] | None  # None: identity output (D21 = 0)
    D22: Float[Array, "ny nu"] | None  # None: D22 = 0
    nu: int = eqx.field(static=True)
    nv: int = eqx.field(static=True)
    ny: int = eqx.field(static=True)
    supply: None = eqx.field(static=True)

    def __init__(
        self,
        supply: None,
        feedthrough: Feedthrough,
        identity_output: bool,
        nu: int,
        nx: int,
        nv: int,
        ny: int,
        *,
        key: PRNGKeyArray,
        eps: float,
        margin_rule: MarginRule,
        dtype,
    ):
        if supply is not None:
            raise ValueError("ContractingIO is for models without a supply rate.")
        kC, kD12, kD21 = jax.random.split(key, 3)
        self.C2 = None if identity_output else lecun_normal(kC, (ny, nx), dtype)
        self.D12 = lecun_normal(kD12, (nv, nu), dtype)
        self.D21 = None if identity_output else lecun_normal(kD21, (ny, nv), dtype)
        self.D22 = free_feedthrough(feedthrough, ny, nu, dtype)
        self.nu, self.nv, self.ny, self.supply = nu, nv, ny, None

    @classmethod
    def accepts(cls, supply: SupplyRate | None) -> bool:
        return supply is None

    def coupling(self, dtype) -> IOCoupling:
        return None

    def outputs(self, B2: Float[Array, "nx nu"], dtype) -> Outputs:
        return Outputs(
            B2,
            _identity(self.C2, self.ny, dtype),
            self.D12,
            zero_if_none(self.D21, (self.ny, self.nv), dtype),
            zero_if_none(self.D22, (self.ny, self.nu), dtype),
        )

    def scaled(self, s: float) -> "ContractingIO":
        return self  # nothing of it enters H


@final
class UnitGainIO(AbstractR2DNIO):
    """(Q, S, R) with ``Q ≺ 0``: ``Ĉ2`` free, ``D̂12, D̂21, N`` strict contractions (section 4).

    ``D̂22 = L_y N L_uᵀ`` (zero without ``N``); the user's matrices follow by section 4(c).
    """

    C2: Float[Array, "ny nx"] | None  # Ĉ2; None: identity output (Ĉ2 = L_Q, so C2 = I)
    D12: StrictContraction
    D21: StrictContraction | None  # None: identity output (D21 = 0)
    N: StrictContraction | None  # None: N = 0 (feedthrough="zero")
    nv: int = eqx.field(static=True)
    supply: SupplyRate = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    margin_rule: MarginRule = eqx.field(static=True)

    def __init__(
        self,
        supply: SupplyRate,
        feedthrough: Feedthrough,
        identity_output: bool,
        nu: int,
        nx: int,
        nv: int,
        ny: int,
        *,
        key: PRNGKeyArray,
        eps: float,
        margin_rule: MarginRule,
        dtype,
    ):
        supply.check_unit_gain()
        kC, kD12, kD21, kN = jax.random.split(key, 4)
        contraction = lambda m, n, k: StrictContraction(  # noqa: E731
            m, n, key=k, eps=eps, margin_rule=margin_rule, dtype=dtype
        )
        self.C2 = None if identity_output else lecun_normal(kC, (ny, nx), dtype)
        self.D12 = contraction(nv, nu, kD12)
        self.D21 = None if identity_output else contraction(ny, nv, kD21)
        self.N = unit_gain_contraction(
            feedthrough, ny, nu, key=kN, eps=eps, margin_rule=margin_rule, dtype=dtype
        )
        self.nv, self.supply, self.eps, self.margin_rule = nv, supply, eps, margin_rule

    @classmethod
    def accepts(cls, supply: SupplyRate | None) -> bool:
        return supply is not None  # Q = 0 too: the constructor says to use a REN

    def _coupling(self, dtype) -> tuple[Float[Array, "ny nx"], UnitGainFeedthrough]:
        C2 = self.supply.factors(dtype).LQ if self.C2 is None else self.C2
        D21 = jnp.zeros((self.supply.ny, self.nv), dtype) if self.D21 is None else self.D21()
        N = None if self.N is None else self.N()
        feedthrough = unit_gain_feedthrough(
            self.D12(), D21, N, eps=self.eps, margin_rule=self.margin_rule
        )
        return C2, feedthrough

    def coupling(self, dtype) -> IOCoupling:
        return self._coupling(dtype)

    def outputs(self, B2: Float[Array, "nx nu"], dtype) -> Outputs:
        C2, ft = self._coupling(dtype)
        B2, D12, C2, D21, D22 = to_user_coordinates(self.supply.factors(dtype), B2, C2, ft)
        if self.C2 is None:
            C2 = jnp.eye(self.supply.ny, dtype=dtype)
        return Outputs(B2, C2, D12, D21, D22)

    def scaled(self, s: float) -> "UnitGainIO":
        if self.C2 is None:  # an identity output's Ĉ2 is fixed
            return self
        return eqx.tree_at(lambda m: m.C2, self, s * self.C2)


#: The input/output blocks an R2DN chooses from, in order: the first that `accepts` a rate.
IO_PARTS: list[type[AbstractR2DNIO]] = [ContractingIO, UnitGainIO]


def io_part(supply: SupplyRate | None) -> type[AbstractR2DNIO]:
    """The block of `IO_PARTS` for ``supply``.

    >>> from r2dn.parameterizations import SupplyRate
    >>> io_part(SupplyRate.lipschitz(2.0, 1, 1)).__name__
    'UnitGainIO'
    """
    return choose_part(IO_PARTS, supply, "R2DN")
