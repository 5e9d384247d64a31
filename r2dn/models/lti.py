"""The LTI part of an R2DN: the free parameters of ``H``'s own term, and the solve for ``A``.

Section 4(b) of the design note builds, over the blocks ``(x, x⁺)``,

    H = (the LTI part's term) + εI + K L⁻¹ Kᵀ,   E = ½(H11 + 𝒫/ᾱ² + Y − Yᵀ),
    A = E⁻¹F,   B1 = E⁻¹B̃1,   B2 = E⁻¹B̃2,   P = Eᵀ𝒫⁻¹E.

The couplings ``K L⁻¹ Kᵀ`` belong to the rest of the model (``B̃1, C1`` and the input/output
block's ``B̃2, Ĉ2, G``), which hands them over as `Couplings`; the LTI part owns the rest (for
`DenseLTI`, today's ``X, p, Y``) and returns its `LTICore`: the explicit ``A, B1, B2`` for
simulation and the metric ``P`` on demand for a certificate check. How it stores ``H``, ``E``
and ``𝒫`` is its own business, so a structured part (diagonal plus low rank, design note
``structured.md``) never forms an nx × nx matrix while training.

Two parts: `DenseLTI` (the paper's) and `DPLRLTI` (diagonal plus low rank of rank ``r``,
O(nx·k²) per sequence, O(nx·k) per step). A new LTI part is one final subclass of `AbstractLTI`
and one entry in `LTI_PARTS` (docs/architecture.md walks through it).
"""

import abc
import inspect
from collections.abc import Callable
from typing import NamedTuple, Protocol, Self, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.parameterizations import frobenius
from r2dn.parameterizations.core import Core, Feedthrough, coupling_gram, unit_gain_core
from r2dn.parameterizations.dplr import (
    DiagonalPlusLowRank,
    DPLRCore,
    DPLRFree,
    LowRank,
    dplr_core,
    long_memory_free,
    random_free,
)
from r2dn.parameterizations.init import gram_factor, long_memory_target
from r2dn.parameterizations.margin import MarginRule


class Couplings(NamedTuple):
    """What the rest of an R2DN couples into ``H``, in unit-gain coordinates.

    ``B1, B2`` are the implicit ``B̃1, B̃2``. ``io = (Ĉ2, feedthrough)`` when a supply rate bounds
    the model: then ``B̃2`` and ``Ĉ2`` enter ``K`` and the feedthrough's ``G`` enters ``L``;
    ``io = None`` when the model is contracting only: only ``B̃1`` and ``C1`` enter ``H``.
    """

    B1: Float[Array, "nx nv"]
    B2: Float[Array, "nx nu"]
    C1: Float[Array, "nv nx"]
    io: tuple[Float[Array, "ny nx"], Feedthrough] | None

    def gram(self) -> Float[Array, "2nx 2nx"]:
        """``K L⁻¹ Kᵀ`` as a dense matrix (for dense parts and for initialisation)."""
        if self.io is None:
            return coupling_gram(self.B1, self.C1, None)
        C2, ft = self.io
        B = jnp.concatenate([self.B1, self.B2], axis=1)
        return coupling_gram(B, jnp.concatenate([self.C1, C2], axis=0), ft.G)


class LTICore(Protocol):
    """What an LTI part computes from ``H``: the explicit state equation and its certificate.

    ``x⁺ = A x + B1 w + B2 u`` (``B2`` in unit-gain coordinates): ``A`` is dense or, for a
    structured part, a `DiagonalPlusLowRank` with ``B1`` a `LowRank` on its ``U`` (simulation
    takes both). ``metric()`` is the certificate ``P = Eᵀ𝒫⁻¹E`` as a dense matrix (for checks
    only). `r2dn.parameterizations.core.Core` and `r2dn.parameterizations.dplr.DPLRCore` are two.
    """

    @property
    def A(self) -> Float[Array, "nx nx"] | DiagonalPlusLowRank: ...

    @property
    def B1(self) -> Float[Array, "nx nv"] | LowRank: ...

    @property
    def B2(self) -> Float[Array, "nx nu"]: ...

    def metric(self) -> Float[Array, "nx nx"]: ...


class AbstractLTI(eqx.Module):
    """An R2DN's LTI part: its term of ``H`` and the maps from ``H`` to ``A`` and ``P``.

    Every final part is built as ``Part(nx, key=key, dtype=dtype)`` (random parameters; a part
    with low-rank factors also takes ``rank``, see `build_lti`) and
    implements the two methods below. Every value of its parameters must give ``H ≻ 0`` for any
    `Couplings`, so that the model stays certified.
    """

    @abc.abstractmethod
    def core(
        self, couplings: Couplings, *, alpha_bar: float, eps: float, margin_rule: MarginRule
    ) -> LTICore:
        """``A = E⁻¹F, B1 = E⁻¹B̃1, B2 = E⁻¹B̃2`` and the metric ``P = Eᵀ𝒫⁻¹E ≻ 0``."""

    @abc.abstractmethod
    def long_memory(
        self,
        couplings_at: Callable[[float], Couplings],
        *,
        alpha_bar: float,
        eps: float,
        margin_rule: MarginRule,
        key: PRNGKeyArray,
    ) -> tuple[Self, float]:
        """Section 7: a copy whose ``A`` starts near ``ᾱI`` (slow, stable modes), and the scale.

        ``couplings_at(s)`` are the model's couplings with those free to shrink (``B̃2, Ĉ2``)
        scaled by ``s`` (``B̃1 = C1 = 0``); return the largest workable ``s``, which the model
        then applies to them.
        """


@final
class DenseLTI(AbstractLTI):
    """The paper's dense part (section 4): ``H = polar(X) + εI + K L⁻¹ Kᵀ`` with free ``X, p, Y``.

    ``polar(X) = p² XᵀX / ‖X‖²_F``. Cost: cubic in ``nx`` once per sequence.

    >>> import jax, jax.numpy as jnp
    >>> lti = DenseLTI(3, key=jax.random.key(0), dtype=jnp.float32)
    >>> zero = jnp.zeros((3, 2))
    >>> couplings = Couplings(B1=zero, B2=jnp.ones((3, 1)), C1=zero.T, io=None)
    >>> lti.core(couplings, alpha_bar=0.9, eps=1e-3, margin_rule="relative").A.shape
    (3, 3)
    """

    X: Float[Array, "2nx 2nx"]
    p: Float[Array, ""]
    Y: Float[Array, "nx nx"]

    def __init__(self, nx: int, *, key: PRNGKeyArray, dtype):
        kX, kY = jax.random.split(key)
        self.X = lecun_normal(kX, (2 * nx, 2 * nx), dtype)
        self.p = frobenius(self.X)
        self.Y = lecun_normal(kY, (nx, nx), dtype)

    def core(self, c: Couplings, *, alpha_bar: float, eps: float, margin_rule: MarginRule) -> Core:
        return unit_gain_core(
            self.X,
            self.p,
            self.Y,
            c.B1,
            c.B2,
            c.C1,
            alpha_bar=alpha_bar,
            eps=eps,
            margin_rule=margin_rule,
            io=c.io,
        )

    def long_memory(
        self,
        couplings_at: Callable[[float], Couplings],
        *,
        alpha_bar: float,
        eps: float,
        margin_rule: MarginRule,
        key: PRNGKeyArray,
    ) -> tuple["DenseLTI", float]:
        """``Y = I`` and ``X`` factoring the long-memory ``H`` minus the scaled couplings."""
        nx, dtype = self.Y.shape[0], self.Y.dtype
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
        target = long_memory_target(nx, alpha_bar, rng)

        def other_terms(s: float) -> np.ndarray:
            return np.asarray(couplings_at(s).gram(), dtype=np.float64)

        X, s = gram_factor(target, other_terms, eps, margin_rule)
        X = jnp.asarray(X, dtype=dtype)
        lti = eqx.tree_at(
            lambda m: (m.X, m.p, m.Y), self, (X, frobenius(X), jnp.eye(nx, dtype=dtype))
        )
        return lti, s


#: Scale of ``B̃2, Ĉ2`` at a DPLR long-memory start with a supply rate: they add low-rank terms
#: to ``E`` and ``F``, so ``A ≈ λ_A`` needs them small (``B̃1 = C1 = 0`` there already).
DPLR_LONG_MEMORY_IO_SCALE = 1e-3


@final
class DPLRLTI(AbstractLTI):
    """Diagonal plus low rank (design note ``structured.md``): ``X = [[D₁, D₂], [U₁, U₂]]``.

    The free parameters are a `r2dn.parameterizations.dplr.DPLRFree` of rank ``rank`` (``U₁, U₂``
    and the skew part ``Y_aᵀY_b`` of ``Y``); every value certifies, as for `DenseLTI`. ``A``
    comes back as a `DiagonalPlusLowRank` of rank ``k = 2r + 2r + (nv + ny) + (nv + nu)``
    (``2r + 2r + 2nv`` when contracting only), and nothing nx × nx is formed but the metric.

    The certificate margin follows the model's ``margin_rule`` as for `DenseLTI` (computed from
    thin factors), which keeps float32 models from either start certified as they run (the
    absolute rule's ``ε`` was lost in float32 from ``nx ≈ 64`` on the random start, whose
    ``d₁, d₂ ~ N(0, 1)`` leave ``E`` ill-conditioned).

    >>> import jax, jax.numpy as jnp
    >>> lti = DPLRLTI(6, rank=2, key=jax.random.key(0), dtype=jnp.float32)
    >>> zero = jnp.zeros((6, 3))
    >>> couplings = Couplings(B1=zero, B2=jnp.ones((6, 1)), C1=zero.T, io=None)
    >>> A = lti.core(couplings, alpha_bar=0.9, eps=1e-3, margin_rule="relative").A
    >>> type(A).__name__, A.rank
    ('DiagonalPlusLowRank', 14)
    """

    free: DPLRFree

    def __init__(self, nx: int, *, rank: int, key: PRNGKeyArray, dtype):
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or rank < 1:
            raise ValueError(
                f"rank must be an integer ≥ 1 (the rank of the DPLR part's low-rank factors); "
                f"got {rank!r}."
            )
        self.free = random_free(key, nx, int(rank), dtype=dtype)

    def core(
        self, c: Couplings, *, alpha_bar: float, eps: float, margin_rule: MarginRule
    ) -> DPLRCore:
        return dplr_core(
            self.free,
            c.B1,
            c.B2,
            c.C1,
            alpha_bar=alpha_bar,
            eps=eps,
            margin_rule=margin_rule,
            io=c.io,
        )

    def long_memory(
        self,
        couplings_at: Callable[[float], Couplings],
        *,
        alpha_bar: float,
        eps: float,
        margin_rule: MarginRule,
        key: PRNGKeyArray,
    ) -> tuple["DPLRLTI", float]:
        """`r2dn.parameterizations.dplr.long_memory_free`; with a supply rate ``B̃2, Ĉ2`` start
        scaled by `DPLR_LONG_MEMORY_IO_SCALE` (contracting only, they do not enter ``H``)."""
        (nx,), rank, rank_Y = self.free.d1.shape, self.free.U1.shape[0], self.free.Ya.shape[0]
        free = long_memory_free(
            key, nx, rank, alpha_bar=alpha_bar, eps=eps, rank_Y=rank_Y, dtype=self.free.d1.dtype
        )
        scale = 1.0 if couplings_at(1.0).io is None else DPLR_LONG_MEMORY_IO_SCALE
        return eqx.tree_at(lambda m: m.free, self, free), scale


#: The LTI parts an R2DN is built with, by the name its ``lti`` argument takes.
LTI_PARTS: dict[str, type[AbstractLTI]] = {"dense": DenseLTI, "dplr": DPLRLTI}


def lti_part(name: str) -> type[AbstractLTI]:
    """The part of `LTI_PARTS` called ``name``.

    >>> lti_part("dense").__name__
    'DenseLTI'
    """
    if not isinstance(name, str) or name not in LTI_PARTS:
        raise ValueError(f"Unknown lti {name!r}; choose one of {sorted(LTI_PARTS)}.")
    return LTI_PARTS[name]


def build_lti(name: str, nx: int, *, rank: int | None, key: PRNGKeyArray, dtype) -> AbstractLTI:
    """The part called ``name`` with random parameters; ``rank`` goes to the parts that take it.

    >>> import jax, jax.numpy as jnp
    >>> key, f32 = jax.random.key(0), jnp.float32
    >>> build_lti("dplr", 4, rank=1, key=key, dtype=f32).free.U1.shape
    (1, 4)
    >>> build_lti("dense", 4, rank=1, key=key, dtype=f32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: rank applies to lti='dplr' only; lti='dense' has no low-rank factors: leave ...
    """
    kind = lti_part(name)
    if _takes_rank(kind):
        if rank is None:
            raise ValueError(
                f"lti={name!r} needs rank=k, the rank of its low-rank factors (an integer ≥ 1, "
                f"e.g. rank=4; r2dn fit: --rank 4)."
            )
        return kind(nx, rank=rank, key=key, dtype=dtype)
    if rank is not None:
        takers = [n for n, k in LTI_PARTS.items() if _takes_rank(k)]
        raise ValueError(
            f"rank applies to lti={' or '.join(map(repr, takers))} only; lti={name!r} has no "
            "low-rank factors: leave rank out."
        )
    return kind(nx, key=key, dtype=dtype)


def _takes_rank(kind: type[AbstractLTI]) -> bool:
    return "rank" in inspect.signature(kind.__init__).parameters
