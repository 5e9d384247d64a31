"""The interface shared by every recurrent model (R2DN and REN), and the rules they share.

The rules are written once here: `check_options` validates what every model takes and decides
the feedthrough (``"free"`` unless ``identity_output``), `DEFAULT_EPS` is the margin of every
certificate, and the parts built per kind of supply rate (a REN's `r2dn.models.ren_supply`, an
R2DN's `r2dn.models.r2dn_io`) share `AbstractSupplyPart`, `choose_part` and the feedthrough
parameters `free_feedthrough` and `unit_gain_contraction`. Each model then adds only what is its
own (an R2DN needs ``Q ≺ 0``; a passive REN a free ``D22``), in the part that needs it.
"""

import abc
from collections.abc import Sequence
from typing import Literal, NamedTuple, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn import simulation
from r2dn.networks.activations import get_activation
from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.margin import MarginRule, check_margin_rule
from r2dn.parameterizations.supply import SupplyRate
from r2dn.simulation import ExplicitSystem

INITS = ("random", "long_memory")
FEEDTHROUGHS = ("zero", "free")

#: Margin ``ε`` in ``H = polar(X) + εI + …``: makes every certificate strict.
DEFAULT_EPS = 1e-3

Feedthrough = Literal["zero", "free"]


def check_sizes(**sizes: int) -> None:
    """Every size must be a positive integer."""
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int | jnp.integer) or n < 1:
            raise ValueError(f"{name} must be a positive integer; got {n!r}.")


def default_feedthrough(identity_output: bool) -> Feedthrough:
    """The feedthrough of every model unless chosen: "free" (a trainable ``D22``), "zero" for
    ``identity_output``."""
    return "zero" if identity_output else "free"


def check_options(
    *,
    sizes: dict[str, int],
    supply: SupplyRate | None,
    alpha_bar: float,
    init: str,
    feedthrough: str | None,
    identity_output: bool,
    activation: str,
    eps: float,
    margin_rule: str,
    dtype,
) -> Feedthrough:
    """Validate the arguments every recurrent model shares; return the feedthrough to build.

    One rule for every model: the feedthrough ``D22`` is ``"free"`` (trainable) unless
    ``identity_output`` (``y = x``), which needs ``ny == nx``, ``D22 = 0`` and, with a supply
    rate, ``S = 0``. Messages say what was wrong and how to fix it.

    >>> check_options(sizes=dict(nu=1, nx=2, nv=3, ny=2), supply=None, alpha_bar=1.0,
    ...               init="random", feedthrough=None, identity_output=True,
    ...               activation="relu", eps=DEFAULT_EPS, margin_rule="relative",
    ...               dtype="float32")
    'zero'
    """
    check_sizes(**sizes)
    if not (0 < alpha_bar <= 1):
        raise ValueError(f"alpha_bar (the contraction rate ᾱ) must lie in (0, 1]; got {alpha_bar}.")
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {INITS}.")
    if feedthrough not in (None, *FEEDTHROUGHS):
        raise ValueError(f"feedthrough must be 'zero' or 'free'; got {feedthrough!r}.")
    get_activation(activation)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps (the certificate margin) must be a positive number; got {eps}.")
    check_margin_rule(margin_rule)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating-point type; got {dtype}.")
    if jnp.dtype(dtype).itemsize > 4 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"dtype={jnp.dtype(dtype).name} needs 64-bit JAX, which is off (JAX would silently "
            "compute in float32); call jax.config.update('jax_enable_x64', True) first, or "
            "set JAX_ENABLE_X64=1, or use dtype=float32."
        )
    if supply is not None:
        if not isinstance(supply, SupplyRate):
            raise TypeError(f"supply must be a SupplyRate or None; got {type(supply).__name__}.")
        supply.check_sizes(sizes["nu"], sizes["ny"])
    if not identity_output:
        return feedthrough or default_feedthrough(identity_output)
    if sizes["ny"] != sizes["nx"]:
        raise ValueError(
            f"identity_output (y = x) needs ny == nx; got ny={sizes['ny']}, nx={sizes['nx']}."
        )
    if feedthrough == "free" or (supply is not None and np.any(supply.S)):
        raise ValueError(
            "identity_output needs feedthrough='zero' (the default with it) and, with a supply "
            "rate, S = 0: otherwise D22 ≠ 0 and y could not equal x."
        )
    return default_feedthrough(identity_output)


class AbstractSupplyPart(eqx.Module):
    """A part of a model built for one kind of supply rate (REN supply parts, R2DN io blocks).

    Its constructor validates the rate it is given; `accepts` says which rates it is for, and
    `choose_part` picks the first of a model's parts that accepts a rate.
    """

    supply: eqx.AbstractVar[SupplyRate | None]

    @classmethod
    @abc.abstractmethod
    def accepts(cls, supply: SupplyRate | None) -> bool:
        """Whether this part is built for ``supply``."""


Part = TypeVar("Part", bound=type[AbstractSupplyPart])


def choose_part(parts: Sequence[Part], supply: SupplyRate | None, model: str) -> Part:
    """The first of ``parts`` that accepts ``supply`` (the parts of ``model``, for the message)."""
    for part in parts:
        if part.accepts(supply):
            return part
    names = [part.__name__ for part in parts]
    raise ValueError(f"No {model} part ({', '.join(names)}) accepts the supply rate {supply!r}.")


def free_feedthrough(
    feedthrough: Feedthrough, ny: int, nu: int, dtype
) -> Float[Array, "ny nu"] | None:
    """A model without a supply rate: a trainable ``D22`` starting at zero, or ``None`` (zero).

    >>> free_feedthrough("zero", 2, 1, "float32") is None
    True
    """
    return jnp.zeros((ny, nu), dtype) if feedthrough == "free" else None


def unit_gain_contraction(
    feedthrough: Feedthrough,
    ny: int,
    nu: int,
    *,
    key: PRNGKeyArray,
    eps: float,
    margin_rule: MarginRule,
    dtype,
) -> StrictContraction | None:
    """A unit-gain rate: the strict contraction ``N`` of ``D22`` (or ``None``: ``N = 0``)."""
    if feedthrough != "free":
        return None
    return StrictContraction(ny, nu, key=key, eps=eps, margin_rule=margin_rule, dtype=dtype)


def zero_if_none(M: Float[Array, "m n"] | None, shape: tuple[int, int], dtype) -> Array:
    """A structurally zero matrix (stored as ``None``) as an array; any other as it is."""
    return jnp.zeros(shape, dtype) if M is None else M


class CertificateData(NamedTuple):
    """What `r2dn.certificates.check_lmi` checks: the explicit system and the metric ``P``.

    ``D11`` and ``multiplier`` (the diagonal Λ) describe an elementwise slope-restricted φ
    (a REN's equilibrium layer); both ``None`` mean a 1-Lipschitz φ (an R2DN's network).
    """

    system: ExplicitSystem
    P: Float[Array, "nx nx"]
    D11: Float[Array, "nv nv"] | None = None
    multiplier: Float[Array, " nv"] | None = None


class AbstractRecurrentModel(eqx.Module):
    """A model given by direct parameters, evaluated through its explicit form.

    Subclasses implement ``explicit()``, ``certificate()`` and ``certificate_data()``;
    evaluation is shared. For
    sequences use ``simulate``: it maps direct → explicit once and runs one ``lax.scan``.
    """

    supply: eqx.AbstractVar[SupplyRate | None]
    alpha_bar: eqx.AbstractVar[float]
    nu: eqx.AbstractVar[int]
    nx: eqx.AbstractVar[int]
    nv: eqx.AbstractVar[int]
    ny: eqx.AbstractVar[int]

    @abc.abstractmethod
    def explicit(self) -> ExplicitSystem:
        """The explicit matrices (and φ) the model is evaluated with."""

    @abc.abstractmethod
    def certificate(self) -> Float[Array, "nx nx"]:
        """The metric ``P ≻ 0`` of the model's dissipation inequality (design note, section 6)."""

    @abc.abstractmethod
    def certificate_data(self) -> CertificateData:
        """Everything `r2dn.certificates.check_lmi` needs to check the certificate."""

    def initial_state(self, *batch: int) -> Float[Array, "*batch nx"]:
        """A zero state with the given batch shape."""
        return jnp.zeros((*batch, self.nx), dtype=self.dtype)

    @property
    @abc.abstractmethod
    def dtype(self) -> jnp.dtype:
        """The floating-point type of the parameters."""

    def step(
        self, x: Float[Array, "... nx"], u: Float[Array, "... nu"]
    ) -> tuple[Float[Array, "... nx"], Float[Array, "... ny"]]:
        """One time step ``(x, u) ↦ (x⁺, y)``; for sequences prefer ``simulate``."""
        return simulation.step(self.explicit(), x, u)

    def simulate(
        self, x0: Float[Array, "... nx"], u: Float[Array, "... T nu"]
    ) -> tuple[Float[Array, "... nx"], Float[Array, "... T ny"]]:
        """Run from ``x0`` over inputs ``u``; returns ``(x_T, y)``, ``y`` of shape (..., T, ny)."""
        return simulation.simulate(self.explicit(), x0, u)
