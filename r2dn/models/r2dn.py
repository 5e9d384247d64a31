"""Robust Recurrent Deep Networks (R2DN): an LTI system in feedback with a 1-Lipschitz network.

One class, `R2DN`, built by the unit-gain core of section 4 of the design note; the supply rate
(none, γ-Lipschitz or (Q, S, R)) is data. `ContractingR2DN`, `LipschitzR2DN` and `RobustR2DN` only
choose that data.
"""

from collections.abc import Sequence
from typing import Literal

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
    Feedthrough,
    check_options,
)
from r2dn.networks.sandwich import LBDN
from r2dn.parameterizations import congruence_metric, frobenius
from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.core import (
    Core,
    coupling_gram,
    to_user_coordinates,
    unit_gain_core,
    unit_gain_feedthrough,
)
from r2dn.parameterizations.init import gram_factor, long_memory_target
from r2dn.parameterizations.margin import DEFAULT_MARGIN_RULE, MarginRule
from r2dn.parameterizations.supply import SupplyRate
from r2dn.simulation import ExplicitSystem

Matrix = Float[Array, "m n"]


def _matrix(param: Matrix | StrictContraction | None, shape: tuple[int, int], dtype) -> Matrix:
    """A direct parameter as a matrix: free, a strict contraction, or structurally zero."""
    if param is None:
        return jnp.zeros(shape, dtype=dtype)
    return param() if isinstance(param, StrictContraction) else param


class R2DN(AbstractRecurrentModel):
    """An R2DN with any supply rate (``None`` = contracting only).

        x⁺ = A x + B1 w + B2 u + bx,   w = φ(C1 x + D12 u + bv),   y = C2 x + D21 w + D22 u + by

    φ is a 1-Lipschitz LBDN from ``nv`` through ``hidden`` to ``nv``. Every value of the
    parameters gives a model that is contracting with rate ``alpha_bar`` and satisfies
    ``supply``. Prefer the named variants `ContractingR2DN`, `LipschitzR2DN`, `RobustR2DN`.

    Options: ``feedthrough`` ("zero": the paper's unit-gain ``D̂22 = 0``; "free": a trainable
    ``D̂22``; the default, as for every model, is "free", or "zero" with ``identity_output``),
    ``init`` ("random" or "long_memory": ``A ≈ ᾱI`` at the start),
    ``identity_output`` (``y = x``; needs ``ny = nx``, and for a supply rate ``S = 0`` and no
    feedthrough), ``activation`` of φ, ``dtype``.
    """

    X: Float[Array, "2nx 2nx"]
    p: Float[Array, ""]
    Y: Float[Array, "nx nx"]
    B1: Float[Array, "nx nv"]
    B2: Float[Array, "nx nu"]
    C1: Float[Array, "nv nx"]
    C2: Float[Array, "ny nx"] | None
    D12: Matrix | StrictContraction
    D21: Matrix | StrictContraction | None
    D22: Matrix | StrictContraction | None
    bx: Float[Array, " nx"]
    bv: Float[Array, " nv"]
    by: Float[Array, " ny"] | None
    phi: LBDN
    supply: SupplyRate | None = eqx.field(static=True)
    alpha_bar: float = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    margin_rule: MarginRule = eqx.field(static=True)
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
        hidden: Sequence[int] = (),
        *,
        supply: SupplyRate | None = None,
        alpha_bar: float = 1.0,
        feedthrough: Feedthrough | None = None,
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
        bounded = supply is not None
        if bounded:
            supply.check_unit_gain()
        self.supply, self.alpha_bar, self.eps = supply, float(alpha_bar), float(eps)
        self.margin_rule = margin_rule
        self.nu, self.nx, self.nv, self.ny = nu, nx, nv, ny

        keys = iter(jax.random.split(key, 12))
        normal = lambda *shape: lecun_normal(next(keys), shape, dtype)  # noqa: E731
        contraction = lambda m, n: StrictContraction(  # noqa: E731
            m, n, key=next(keys), eps=eps, margin_rule=margin_rule, dtype=dtype
        )
        self.phi = LBDN(nv, hidden, nv, activation=activation, key=next(keys), dtype=dtype)
        self.Y = normal(nx, nx)
        self.B1, self.B2, self.C1 = normal(nx, nv), normal(nx, nu), normal(nv, nx)
        self.C2 = None if identity_output else normal(ny, nx)
        self.bx, self.bv = jnp.zeros(nx, dtype), jnp.zeros(nv, dtype)
        self.by = None if identity_output else jnp.zeros(ny, dtype)
        if bounded:
            self.D12 = contraction(nv, nu)
            self.D21 = None if identity_output else contraction(ny, nv)
            self.D22 = contraction(ny, nu) if feedthrough == "free" else None
        else:
            self.D12 = normal(nv, nu)
            self.D21 = None if identity_output else normal(ny, nv)
            self.D22 = (
                None if identity_output or feedthrough == "zero" else jnp.zeros((ny, nu), dtype)
            )

        if init == "random":
            self.X = normal(2 * nx, 2 * nx)
            self.p = frobenius(self.X)
        else:
            self._init_long_memory(next(keys))

    def _init_long_memory(self, key: PRNGKeyArray) -> None:
        """Section 7: ``B̃1 = C1 = 0``, ``Y = I`` and ``X`` such that ``A ≈ ᾱI``.

        The input/output couplings ``B̃2, Ĉ2`` (which enter ``H`` when there is a supply rate)
        are scaled down until the long-memory ``H`` minus their contribution stays positive
        definite; they are never zero, so gradients reach them.
        """
        dtype = self.Y.dtype
        self.B1 = jnp.zeros_like(self.B1)
        self.C1 = jnp.zeros_like(self.C1)
        self.Y = jnp.eye(self.nx, dtype=dtype)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
        target = long_memory_target(self.nx, self.alpha_bar, rng)
        io = self._io()
        if io is None:  # B̃1 = C1 = 0: nothing else enters H
            X, _ = gram_factor(target, lambda s: 0.0, self.eps, self.margin_rule)
        else:
            C2, ft = io
            scales_C2 = self.C2 is not None  # an identity output's Ĉ2 is fixed

            def other_terms(s: float) -> np.ndarray:
                B = jnp.concatenate([self.B1, s * self.B2], axis=1)
                C = jnp.concatenate([self.C1, s * C2 if scales_C2 else C2], axis=0)
                return np.asarray(coupling_gram(B, C, ft.G), dtype=np.float64)

            X, s = gram_factor(target, other_terms, self.eps, self.margin_rule)
            self.B2 = s * self.B2
            self.C2 = s * self.C2 if scales_C2 else None
        self.X = jnp.asarray(X, dtype=dtype)
        self.p = frobenius(self.X)

    @property
    def dtype(self) -> jnp.dtype:
        return self.Y.dtype

    def _io(self):
        """Unit-gain output matrix ``Ĉ2`` and feedthroughs, or ``None`` when contracting only."""
        if self.supply is None:
            return None
        dtype = self.dtype
        # Identity output: Ĉ2 = L_Q makes C2 = L_Q⁻¹Ĉ2 = I.
        C2 = self.supply.factors(dtype).LQ if self.C2 is None else self.C2
        D12 = self.D12()
        D21 = _matrix(self.D21, (self.ny, self.nv), dtype)
        N = None if self.D22 is None else self.D22()
        return C2, unit_gain_feedthrough(D12, D21, N, eps=self.eps, margin_rule=self.margin_rule)

    def _core(self) -> tuple[Core, tuple[Array, ...]]:
        io = self._io()
        core = unit_gain_core(
            self.X,
            self.p,
            self.Y,
            self.B1,
            self.B2,
            self.C1,
            alpha_bar=self.alpha_bar,
            eps=self.eps,
            margin_rule=self.margin_rule,
            io=io,
        )
        dtype = self.dtype
        if io is None:
            B2, D12 = core.B2, self.D12
            C2 = jnp.eye(self.nx, dtype=dtype) if self.C2 is None else self.C2
            D21 = _matrix(self.D21, (self.ny, self.nv), dtype)
            D22 = _matrix(self.D22, (self.ny, self.nu), dtype)
        else:
            C2h, ft = io
            B2, D12, C2, D21, D22 = to_user_coordinates(
                self.supply.factors(dtype), core.B2, C2h, ft
            )
            if self.C2 is None:
                C2 = jnp.eye(self.nx, dtype=dtype)
        return core, (B2, C2, D12, D21, D22)

    def explicit(self) -> ExplicitSystem:
        core, (B2, C2, D12, D21, D22) = self._core()
        by = jnp.zeros(self.ny, self.dtype) if self.by is None else self.by
        return ExplicitSystem(
            A=core.A,
            B1=core.B1,
            B2=B2,
            C1=self.C1,
            C2=C2,
            D12=D12,
            D21=D21,
            D22=D22,
            bx=self.bx,
            bv=self.bv,
            by=by,
            phi=self.phi.explicit(),
        )

    def certificate(self) -> Float[Array, "nx nx"]:
        core, _ = self._core()
        return congruence_metric(core.E, core.Pcal)

    def certificate_data(self) -> CertificateData:
        return CertificateData(self.explicit(), self.certificate())


class ContractingR2DN(R2DN):
    """An R2DN that is contracting with rate ``alpha_bar`` (the paper's main model).

    >>> import jax, jax.numpy as jnp
    >>> model = ContractingR2DN(2, 4, 3, 1, hidden=(8, 8), key=jax.random.key(0))
    >>> x_T, y = model.simulate(model.initial_state(), jnp.ones((10, 2)))
    >>> y.shape
    (10, 1)
    """

    def __init__(self, nu: int, nx: int, nv: int, ny: int, hidden: Sequence[int] = (), **kwargs):
        super().__init__(nu, nx, nv, ny, hidden, supply=None, **kwargs)


class LipschitzR2DN(R2DN):
    """A contracting R2DN with ``‖Δy‖ ≤ γ‖Δu‖`` over any horizon.

    ``feedthrough="zero"`` is the paper's (``D22 = 0``); ``"free"`` adds a trainable ``D22``.

    >>> import jax, jax.numpy as jnp
    >>> model = LipschitzR2DN(1, 4, 3, 1, hidden=(8,), gamma=2.0, key=jax.random.key(0))
    >>> model.supply.gamma
    2.0
    """

    def __init__(
        self,
        nu: int,
        nx: int,
        nv: int,
        ny: int,
        hidden: Sequence[int] = (),
        *,
        gamma: float,
        **kwargs,
    ):
        supply = SupplyRate.lipschitz(gamma, nu, ny)
        super().__init__(nu, nx, nv, ny, hidden, supply=supply, **kwargs)


class RobustR2DN(R2DN):
    """A contracting R2DN satisfying the incremental (Q, S, R) supply rate.

    ``Q`` (ny×ny) must be negative definite and ``R − S Q⁻¹ Sᵀ`` positive definite;
    ``S`` is nu×ny.
    """

    def __init__(
        self,
        nu: int,
        nx: int,
        nv: int,
        ny: int,
        hidden: Sequence[int] = (),
        *,
        Q,
        S,
        R,
        **kwargs,
    ):
        super().__init__(nu, nx, nv, ny, hidden, supply=SupplyRate(Q, S, R), **kwargs)
