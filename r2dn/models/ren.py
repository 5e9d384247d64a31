"""Recurrent equilibrium networks (REN; Revay, Wang & Manchester 2023): design note, section 5.

    x⁺ = A x + B1 w + B2 u + bx,   w = σ(C1 x + D11 w + D12 u + bv),
    y  = C2 x + D21 w + D22 u + by

with ``D11`` strictly lower triangular, so that the equilibrium ``w`` is solved exactly by
forward substitution (`r2dn.networks.equilibrium`). One class, `REN`, whose supply rate (none,
γ-Lipschitz, (Q, S, R) with ``Q ≺ 0``, or passivity-type with ``Q = 0``) is data;
`ContractingREN`, `LipschitzREN`, `RobustREN` and `PassiveREN` only choose that data.

All variants share one map: ``H = polar(X) + (supply terms) + mI`` (``m ≥ ε``: the margin) over
the blocks ``(x, w, x⁺)``, partitioned into the implicit matrices ``E, 𝒫, F, B̃1, C̃1, Λ,
D̃11``. Only the feedthrough ``D22`` and the supply terms depend on the kind of supply rate:
they are the REN's supply part (`r2dn.models.ren_supply`), chosen from the rate. The named
variants are functions that choose the rate; `REN` is the one (final) class.
"""

from typing import Literal, NamedTuple, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.models.base import (
    DEFAULT_EPS,
    AbstractRecurrentModel,
    CertificateData,
    check_options,
    check_sizes,
)
from r2dn.models.ren_supply import AbstractRENSupply, supply_part
from r2dn.networks.equilibrium import EquilibriumLayer
from r2dn.parameterizations import congruence_metric, frobenius
from r2dn.parameterizations.core import certificate_gram, implicit_state_matrix, solve_implicit
from r2dn.parameterizations.init import gram_factor, long_memory_target
from r2dn.parameterizations.margin import DEFAULT_MARGIN_RULE, MarginRule
from r2dn.parameterizations.supply import SupplyRate
from r2dn.simulation import ExplicitSystem


class RENCore(NamedTuple):
    """Explicit matrices that come out of ``H``, and the certificate's pieces ``E, 𝒫, Λ``."""

    A: Float[Array, "nx nx"]
    B1: Float[Array, "nx nv"]
    B2: Float[Array, "nx nu"]
    C1: Float[Array, "nv nx"]
    D11: Float[Array, "nv nv"]
    D12: Float[Array, "nv nu"]
    E: Float[Array, "nx nx"]
    Pcal: Float[Array, "nx nx"]
    multiplier: Float[Array, " nv"]

    def metric(self) -> Float[Array, "nx nx"]:
        """The certificate ``P = Eᵀ𝒫⁻¹E``."""
        return congruence_metric(self.E, self.Pcal)


def ren_core(
    H: Float[Array, "2nx+nv 2nx+nv"],
    Y: Float[Array, "nx nx"],
    B2: Float[Array, "nx nu"],
    D12: Float[Array, "nv nu"],
    *,
    alpha_bar: float,
) -> RENCore:
    """Partition ``H`` over ``(x, w, x⁺)`` and solve for the explicit matrices.

    ``𝒫 = H33, F = H31, B̃1 = H32, C̃1 = −H21, Λ = ½ diag(H22), D̃11 = −strict_lower(H22)``,
    ``E = ½(H11 + 𝒫/ᾱ² + Y − Yᵀ)``; then ``[A B1 B2] = E⁻¹[F B̃1 B̃2]`` and
    ``[C1 D11 D12] = Λ⁻¹[C̃1 D̃11 D̃12]``. ``B2, D12`` are the implicit ``B̃2, D̃12``.
    """
    nx = Y.shape[0]
    x, w, x_next = slice(0, nx), slice(nx, H.shape[0] - nx), slice(H.shape[0] - nx, None)
    Pcal, H22 = H[x_next, x_next], H[w, w]
    E = implicit_state_matrix(H[x, x], Pcal, Y, alpha_bar)
    A, B1, B2 = solve_implicit(E, H[x_next, x], H[x_next, w], B2)
    lam = 0.5 * jnp.diag(H22)
    C1, D11, D12 = (M / lam[:, None] for M in (-H[w, x], -jnp.tril(H22, -1), D12))
    return RENCore(A, B1, B2, C1, D11, D12, E, Pcal, lam)


@final
class REN(AbstractRecurrentModel):
    """A REN with any supply rate (``None`` = contracting only).

        x⁺ = A x + B1 w + B2 u + bx,   w = σ(C1 x + D11 w + D12 u + bv),
        y  = C2 x + D21 w + D22 u + by

    Every value of the parameters gives a model that is contracting with rate ``alpha_bar`` and
    satisfies ``supply``; the certificate is the metric `certificate` with the diagonal IQC
    multiplier `multiplier` on ``σ``. Prefer the named variants `ContractingREN`,
    `LipschitzREN`, `RobustREN` and `PassiveREN`. Its parts: the dense core ``X, p, Y`` (the
    polar ``H``), the input/output couplings, the supply part ``feedthrough`` (its ``D22`` and
    terms of ``H``; `r2dn.models.ren_supply`) and the equilibrium layer φ.

    Options (the rules shared with R2DN are `r2dn.models.base.check_options`):
    ``feedthrough`` ("free", the default: a trainable ``D22``; "zero": ``D22 = 0``, or
    ``−Q⁻¹Sᵀ`` for a supply rate; a ``Q = 0`` rate needs "free"), ``init`` ("random" or
    "long_memory": ``A ≈ ᾱI`` at the start), ``identity_output`` (``y = x``; needs ``ny = nx``,
    and for a supply rate ``S = 0``; its feedthrough is "zero"), ``activation`` σ (any in
    `r2dn.networks.ACTIVATIONS`: monotone, slope in [0, 1]), ``eps`` (the margin ``ε > 0`` that
    makes the certificate strict), ``margin_rule`` (how ``ε`` scales with the parameters:
    "relative", or the "absolute" rule of files from r2dn ≤ 0.2;
    `r2dn.parameterizations.margin`), ``dtype``.

    >>> import jax, jax.numpy as jnp
    >>> model = REN(2, 4, 8, 1, supply=SupplyRate.lipschitz(3.0, 2, 1), key=jax.random.key(0))
    >>> x_T, y = model.simulate(model.initial_state(5), jnp.ones((5, 20, 2)))
    >>> y.shape, model.multiplier().shape
    ((5, 20, 1), (8,))
    """

    X: Float[Array, "2nx+nv 2nx+nv"]
    p: Float[Array, ""]
    Y: Float[Array, "nx nx"]
    B2: Float[Array, "nx nu"]
    D12: Float[Array, "nv nu"]
    C2: Float[Array, "ny nx"] | None
    D21: Float[Array, "ny nv"] | None
    feedthrough: AbstractRENSupply
    bx: Float[Array, " nx"]
    bv: Float[Array, " nv"]
    by: Float[Array, " ny"] | None
    alpha_bar: float = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    margin_rule: MarginRule = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    nu: int = eqx.field(static=True)
    nx: int = eqx.field(static=True)
    nv: int = eqx.field(static=True)
    ny: int = eqx.field(static=True)

    def __init__(
        self,
        nu: int,
        nx: int,
        nv: int,
        ny: int,
        *,
        supply: SupplyRate | None = None,
        alpha_bar: float = 1.0,
        feedthrough: Literal["zero", "free"] | None = None,
        init: Literal["random", "long_memory"] = "random",
        identity_output: bool = False,
        activation: str = "relu",
        eps: float = DEFAULT_EPS,
        margin_rule: MarginRule = DEFAULT_MARGIN_RULE,
        dtype=jnp.float32,
        key: PRNGKeyArray,
    ):
        feedthrough = check_options(
            sizes=dict(nu=nu, nx=nx, nv=nv, ny=ny),
            supply=supply,
            alpha_bar=alpha_bar,
            init=init,
            feedthrough=feedthrough,
            identity_output=identity_output,
            activation=activation,
            eps=eps,
            margin_rule=margin_rule,
            dtype=dtype,
        )
        self.alpha_bar, self.eps, self.margin_rule = float(alpha_bar), float(eps), margin_rule
        self.activation = activation
        self.nu, self.nx, self.nv, self.ny = nu, nx, nv, ny

        keys = iter(jax.random.split(key, 8))
        normal = lambda *shape: lecun_normal(next(keys), shape, dtype)  # noqa: E731
        self.Y = normal(nx, nx)
        self.B2, self.D12 = normal(nx, nu), normal(nv, nu)
        self.C2 = None if identity_output else normal(ny, nx)
        self.D21 = None if identity_output else normal(ny, nv)
        self.bx, self.bv = jnp.zeros(nx, dtype), jnp.zeros(nv, dtype)
        self.by = None if identity_output else jnp.zeros(ny, dtype)
        self.feedthrough = supply_part(supply)(
            supply,
            feedthrough,
            nu,
            ny,
            key=next(keys),
            eps=eps,
            margin_rule=margin_rule,
            dtype=dtype,
        )

        if init == "random":
            self.X = normal(2 * nx + nv, 2 * nx + nv)
            self.p = frobenius(self.X)
        else:
            self._init_long_memory(next(keys))

    def _init_long_memory(self, key: PRNGKeyArray) -> None:
        """Section 7: ``H`` starts at the long-memory target with ``Λ = I`` and ``D̃11 = 0``.

        ``X`` factors that target minus the supply terms, with ``B̃2, D̃12, C2, D21`` scaled down
        until the difference stays positive definite; they are never zero, so gradients reach
        them. ``Y = I``, so ``A = ᾱ diag(f)`` and ``B̃1 = C̃1 = 0`` at the start. If no scale
        fits (a fixed identity output with a small γ: ``y = x`` cannot remember long and have a
        small gain), ``X`` factors the target alone, the couplings stay as drawn and ``A`` starts
        faster.
        """
        dtype = self.dtype
        nx, nv = self.nx, self.nv
        self.Y = jnp.eye(nx, dtype=dtype)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
        state_target = long_memory_target(nx, self.alpha_bar, rng)
        target = np.zeros((2 * nx + nv, 2 * nx + nv))
        states = np.r_[0:nx, nx + nv : 2 * nx + nv]
        target[np.ix_(states, states)] = state_target
        target[nx : nx + nv, nx : nx + nv] = 2 * np.eye(nv)

        def other_terms(s: float) -> np.ndarray:
            return np.asarray(self._scaled_io(s)._supply_gram(), dtype=np.float64)

        X, s = gram_factor(target, other_terms, self.eps, self.margin_rule)
        scaled = self._scaled_io(s) if self.supply is not None and s > 0 else self
        self.B2, self.D12, self.C2, self.D21 = scaled.B2, scaled.D12, scaled.C2, scaled.D21
        self.X = jnp.asarray(X, dtype=dtype)
        self.p = frobenius(self.X)

    def _scaled_io(self, s: float) -> "REN":
        """A copy with the input/output couplings ``B̃2, D̃12, C2, D21`` scaled by ``s``."""
        return eqx.tree_at(
            lambda m: (m.B2, m.D12, m.C2, m.D21),
            self,
            replace_fn=lambda a: None if a is None else s * a,
            is_leaf=lambda a: a is None,
        )

    @property
    def dtype(self) -> jnp.dtype:
        return self.Y.dtype

    @property
    def supply(self) -> SupplyRate | None:
        return self.feedthrough.supply

    def _output(self) -> tuple[Array, Array]:
        """``C2`` and ``D21`` in explicit form (``C2 = I`` for an identity output)."""
        dtype = self.dtype
        C2 = jnp.eye(self.nx, dtype=dtype) if self.C2 is None else self.C2
        D21 = jnp.zeros((self.ny, self.nv), dtype) if self.D21 is None else self.D21
        return C2, D21

    def _supply_gram(self) -> Float[Array, "2nx+nv 2nx+nv"]:
        """The supply rate's part of ``H`` (zero when contracting only)."""
        return self.feedthrough.gram(*self._output(), self.D12, self.B2)

    def _core(self) -> RENCore:
        H = certificate_gram(
            self.X, self.p, self._supply_gram(), eps=self.eps, margin_rule=self.margin_rule
        )
        return ren_core(H, self.Y, self.B2, self.D12, alpha_bar=self.alpha_bar)

    def explicit(self) -> ExplicitSystem:
        return self._explicit(self._core())

    def _explicit(self, core: RENCore) -> ExplicitSystem:
        C2, D21 = self._output()
        by = jnp.zeros(self.ny, self.dtype) if self.by is None else self.by
        return ExplicitSystem(
            A=core.A,
            B1=core.B1,
            B2=core.B2,
            C1=core.C1,
            C2=C2,
            D12=core.D12,
            D21=D21,
            D22=self.feedthrough.feedthrough(self.dtype),
            bx=self.bx,
            bv=self.bv,
            by=by,
            phi=EquilibriumLayer(core.D11, self.activation),
        )

    def certificate(self) -> Float[Array, "nx nx"]:
        return self._core().metric()

    def multiplier(self) -> Float[Array, " nv"]:
        """The diagonal of the IQC multiplier ``Λ ≻ 0`` on ``2Δwᵀ Λ (Δv − Δw) ≥ 0``."""
        return self._core().multiplier

    def certificate_data(self) -> CertificateData:
        """The explicit system, ``P``, and ``D11`` with the multiplier ``Λ`` of the equilibrium."""
        core = self._core()
        return CertificateData(
            self._explicit(core), core.metric(), D11=core.D11, multiplier=core.multiplier
        )


def ContractingREN(nu: int, nx: int, nv: int, ny: int, **kwargs) -> REN:
    """A REN that is contracting with rate ``alpha_bar``; ``D22`` is free.

    >>> import jax, jax.numpy as jnp
    >>> model = ContractingREN(2, 4, 8, 1, alpha_bar=0.9, key=jax.random.key(0))
    >>> x_T, y = model.simulate(model.initial_state(), jnp.ones((10, 2)))
    >>> y.shape
    (10, 1)
    """
    return REN(nu, nx, nv, ny, supply=None, **kwargs)


def LipschitzREN(nu: int, nx: int, nv: int, ny: int, *, gamma: float, **kwargs) -> REN:
    """A contracting REN with ``‖Δy‖ ≤ γ‖Δu‖`` over any horizon (``Q = −I/γ, S = 0, R = γI``).

    >>> import jax
    >>> model = LipschitzREN(1, 4, 8, 1, gamma=2.0, key=jax.random.key(0))
    >>> model.supply.gamma
    2.0
    """
    return REN(nu, nx, nv, ny, supply=SupplyRate.lipschitz(gamma, nu, ny), **kwargs)


def RobustREN(nu: int, nx: int, nv: int, ny: int, *, Q, S, R, **kwargs) -> REN:
    """A contracting REN satisfying the incremental (Q, S, R) supply rate.

    ``Q`` (ny×ny) must be negative definite with ``R − S Q⁻¹ Sᵀ`` positive definite, or zero
    with ``S`` (nu×ny) square and invertible.

    >>> import jax, numpy as np
    >>> model = RobustREN(2, 3, 4, 2, Q=-np.eye(2), S=0.1 * np.ones((2, 2)), R=np.eye(2),
    ...                   key=jax.random.key(0))
    >>> from r2dn.certificates import check_lmi
    >>> check_lmi(model).holds
    True
    """
    return REN(nu, nx, nv, ny, supply=SupplyRate(Q, S, R), **kwargs)


def PassiveREN(
    nu: int,
    nx: int,
    nv: int,
    ny: int,
    *,
    nu_index: float = 0.0,
    rho_index: float = 0.0,
    **kwargs,
) -> REN:
    """An incrementally passive REN: ``Σ Δyᵀ Δu ≥ ν Σ|Δu|² + ρ Σ|Δy|²`` from equal states.

    ``nu_index`` (ν) and ``rho_index`` (ρ) are the input and output passivity indices, both
    ``≥ 0`` with ``ρν < ¼`` (`SupplyRate.passive`); needs ``nu == ny``. With ``ρ = 0`` the supply
    has ``Q = 0`` and ``D22 = 2M + νI`` with ``M`` positive real.

    >>> import jax
    >>> model = PassiveREN(2, 3, 4, 2, nu_index=0.1, key=jax.random.key(0))
    >>> model.supply.S.tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """
    check_sizes(nu=nu, ny=ny)
    if nu != ny:
        raise ValueError(f"A passive REN needs as many outputs as inputs; got nu={nu}, ny={ny}.")
    supply = SupplyRate.passive(nu, nu_index=nu_index, rho_index=rho_index)
    return REN(nu, nx, nv, ny, supply=supply, **kwargs)
