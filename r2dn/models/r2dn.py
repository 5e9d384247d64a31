"""Robust Recurrent Deep Networks (R2DN): an LTI system in feedback with a 1-Lipschitz network.

One final class, `R2DN`, composed of three parts with one job each:

- the LTI part (`r2dn.models.lti`; ``lti="dense"``: the polar construction of section 4;
  ``lti="dplr", rank=k``: diagonal plus low rank, linear in ``nx``), which
  turns the couplings ``B̃1, B̃2, C1`` (held by the model) and the input/output block's couplings
  into the explicit ``A, B1, B2`` and the certificate's metric ``P``;
- the input/output block of its kind of supply rate (`r2dn.models.r2dn_io`: none, or (Q, S, R)
  with ``Q ≺ 0``, γ-Lipschitz among them): ``C2, D12, D21, D22`` and their terms of ``H``;
- the network φ, a 1-Lipschitz `LBDN`.

`ContractingR2DN`, `LipschitzR2DN` and `RobustR2DN` are functions that choose the parts.
"""

from collections.abc import Sequence
from typing import Literal, final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.models.base import (
    DEFAULT_EPS,
    AbstractRecurrentModel,
    CertificateData,
    Feedthrough,
    check_options,
)
from r2dn.models.lti import AbstractLTI, Couplings, LTICore, build_lti, lti_part
from r2dn.models.r2dn_io import AbstractR2DNIO, io_part
from r2dn.networks.sandwich import LBDN
from r2dn.parameterizations.dplr import DiagonalPlusLowRank
from r2dn.parameterizations.margin import DEFAULT_MARGIN_RULE, MarginRule
from r2dn.parameterizations.supply import SupplyRate
from r2dn.simulation import ExplicitSystem

#: The LTI part of every R2DN unless chosen (a key of `r2dn.models.lti.LTI_PARTS`).
DEFAULT_LTI = "dense"


@final
class R2DN(AbstractRecurrentModel):
    """An R2DN with any supply rate (``None`` = contracting only).

        x⁺ = A x + B1 w + B2 u + bx,   w = φ(C1 x + D12 u + bv),   y = C2 x + D21 w + D22 u + by

    φ is a 1-Lipschitz LBDN from ``nv`` through ``hidden`` to ``nv``. Every value of the
    parameters gives a model that is contracting with rate ``alpha_bar`` and satisfies
    ``supply``. Prefer the named variants `ContractingR2DN`, `LipschitzR2DN`, `RobustR2DN`.
    Its parts: ``lti`` (`r2dn.models.lti.AbstractLTI`), the couplings ``B1, B2, C1`` (the
    implicit ``B̃1, B̃2, C1`` of section 4), ``io`` (`r2dn.models.r2dn_io.AbstractR2DNIO`: its
    ``C2, D12, D21, D22``), the biases and ``phi``.

    Options (the rules shared with REN are `r2dn.models.base.check_options`): ``lti`` (the LTI
    part: "dense", the paper's, or "dplr", diagonal plus low rank, which needs ``rank``, the rank
    of its low-rank factors), ``feedthrough`` ("zero": the paper's unit-gain ``D̂22 = 0``;
    "free": a trainable ``D̂22``; the default, as for every model, is "free", or "zero" with
    ``identity_output``), ``init`` ("random" or "long_memory": ``A ≈ ᾱI`` at the start),
    ``identity_output`` (``y = x``; needs ``ny = nx``, and for a supply rate ``S = 0`` and no
    feedthrough), ``activation`` of φ, ``eps`` (the margin ``ε > 0`` that makes the certificate
    strict), ``dtype``.

    >>> import jax, jax.numpy as jnp
    >>> supply = SupplyRate.lipschitz(2.0, 2, 1)
    >>> model = R2DN(2, 4, 3, 1, (8,), supply=supply, lti="dense", key=jax.random.key(0))
    >>> type(model.lti).__name__, type(model.io).__name__
    ('DenseLTI', 'UnitGainIO')
    """

    lti: AbstractLTI
    B1: Float[Array, "nx nv"]
    B2: Float[Array, "nx nu"]
    C1: Float[Array, "nv nx"]
    io: AbstractR2DNIO
    bx: Float[Array, " nx"]
    bv: Float[Array, " nv"]
    by: Float[Array, " ny"] | None  # None: identity output
    phi: LBDN
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
        lti: str = DEFAULT_LTI,
        rank: int | None = None,
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
        lti_part(lti)  # an unknown name fails before any work
        self.alpha_bar, self.eps = float(alpha_bar), float(eps)
        self.margin_rule = margin_rule
        self.nu, self.nx, self.nv, self.ny = nu, nx, nv, ny

        k_phi, k_lti, k_io, k_B1, k_B2, k_C1, k_init = jax.random.split(key, 7)
        self.phi = LBDN(nv, hidden, nv, activation=activation, key=k_phi, dtype=dtype)
        part = build_lti(lti, nx, rank=rank, key=k_lti, dtype=dtype)
        io = io_part(supply)(
            supply,
            feedthrough,
            identity_output,
            nu,
            nx,
            nv,
            ny,
            key=k_io,
            eps=eps,
            margin_rule=margin_rule,
            dtype=dtype,
        )
        B1, B2, C1 = (
            lecun_normal(k, shape, dtype)
            for k, shape in ((k_B1, (nx, nv)), (k_B2, (nx, nu)), (k_C1, (nv, nx)))
        )
        if init == "long_memory":  # section 7: B̃1 = C1 = 0, and A ≈ ᾱI from the LTI part
            B1, C1 = jnp.zeros_like(B1), jnp.zeros_like(C1)

            def couplings_at(s: float) -> Couplings:
                return Couplings(B1, s * B2, C1, io.scaled(s).coupling(dtype))

            part, s = part.long_memory(
                couplings_at, alpha_bar=alpha_bar, eps=eps, margin_rule=margin_rule, key=k_init
            )
            B2, io = s * B2, io.scaled(s)
        self.lti, self.io = part, io
        self.B1, self.B2, self.C1 = B1, B2, C1
        self.bx, self.bv = jnp.zeros(nx, dtype), jnp.zeros(nv, dtype)
        self.by = None if identity_output else jnp.zeros(ny, dtype)

    @property
    def dtype(self) -> jnp.dtype:
        return self.B1.dtype

    @property
    def supply(self) -> SupplyRate | None:
        return self.io.supply

    def _margins(self) -> dict:
        """What the LTI part needs besides the couplings: the rate and the certificate margin."""
        return dict(alpha_bar=self.alpha_bar, eps=self.eps, margin_rule=self.margin_rule)

    def _couplings(self) -> Couplings:
        return Couplings(self.B1, self.B2, self.C1, self.io.coupling(self.dtype))

    def _core(self) -> LTICore:
        return self.lti.core(self._couplings(), **self._margins())

    def explicit(self) -> ExplicitSystem:
        return self._explicit(self._core())

    def _explicit(self, core: LTICore) -> ExplicitSystem:
        out = self.io.outputs(core.B2, self.dtype)
        by = jnp.zeros(self.ny, self.dtype) if self.by is None else self.by
        return ExplicitSystem(
            A=core.A,
            B1=core.B1,
            B2=out.B2,
            C1=self.C1,
            C2=out.C2,
            D12=out.D12,
            D21=out.D21,
            D22=out.D22,
            bx=self.bx,
            bv=self.bv,
            by=by,
            phi=self.phi.explicit(),
        )

    def certificate(self) -> Float[Array, "nx nx"]:
        return self._core().metric()

    def certificate_data(self) -> CertificateData:
        """The explicit system with ``A``, ``B1`` dense (the checks and the export take arrays)."""
        core = self._core()
        system = self._explicit(core)
        if isinstance(system.A, DiagonalPlusLowRank):
            dense = (system.A.dense(), system.B1.dense())
            system = eqx.tree_at(lambda s: (s.A, s.B1), system, dense)
        return CertificateData(system, core.metric())


def ContractingR2DN(
    nu: int, nx: int, nv: int, ny: int, hidden: Sequence[int] = (), **kwargs
) -> R2DN:
    """An R2DN that is contracting with rate ``alpha_bar`` (the paper's main model).

    >>> import jax, jax.numpy as jnp
    >>> model = ContractingR2DN(2, 4, 3, 1, hidden=(8, 8), key=jax.random.key(0))
    >>> x_T, y = model.simulate(model.initial_state(), jnp.ones((10, 2)))
    >>> y.shape
    (10, 1)
    """
    return R2DN(nu, nx, nv, ny, hidden, supply=None, **kwargs)


def LipschitzR2DN(
    nu: int, nx: int, nv: int, ny: int, hidden: Sequence[int] = (), *, gamma: float, **kwargs
) -> R2DN:
    """A contracting R2DN with ``‖Δy‖ ≤ γ‖Δu‖`` over any horizon.

    ``feedthrough="zero"`` is the paper's (``D22 = 0``); ``"free"`` (the default) adds a
    trainable ``D22``.

    >>> import jax, jax.numpy as jnp
    >>> model = LipschitzR2DN(1, 4, 3, 1, hidden=(8,), gamma=2.0, key=jax.random.key(0))
    >>> model.supply.gamma
    2.0
    """
    return R2DN(nu, nx, nv, ny, hidden, supply=SupplyRate.lipschitz(gamma, nu, ny), **kwargs)


def RobustR2DN(
    nu: int, nx: int, nv: int, ny: int, hidden: Sequence[int] = (), *, Q, S, R, **kwargs
) -> R2DN:
    """A contracting R2DN satisfying the incremental (Q, S, R) supply rate.

    ``Q`` (ny×ny) must be negative definite and ``R − S Q⁻¹ Sᵀ`` positive definite;
    ``S`` is nu×ny.

    >>> import jax, numpy as np
    >>> model = RobustR2DN(2, 3, 4, 2, Q=-np.eye(2), S=0.1 * np.ones((2, 2)), R=np.eye(2),
    ...                    key=jax.random.key(0))
    >>> from r2dn.certificates import check_lmi
    >>> check_lmi(model).holds
    True
    """
    return R2DN(nu, nx, nv, ny, hidden, supply=SupplyRate(Q, S, R), **kwargs)
