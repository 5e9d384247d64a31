"""The interface shared by every recurrent model (R2DN and REN)."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from r2dn import simulation
from r2dn.networks.activations import get_activation
from r2dn.parameterizations.supply import SupplyRate
from r2dn.simulation import ExplicitSystem

INITS = ("random", "long_memory")


def check_sizes(**sizes: int) -> None:
    """Every size must be a positive integer."""
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int | jnp.integer) or n < 1:
            raise ValueError(f"{name} must be a positive integer; got {n!r}.")


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
    dtype,
) -> None:
    """Validate the arguments every recurrent model shares, with messages that say the fix."""
    check_sizes(**sizes)
    if not (0 < alpha_bar <= 1):
        raise ValueError(f"alpha_bar (the contraction rate ᾱ) must lie in (0, 1]; got {alpha_bar}.")
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {INITS}.")
    if feedthrough not in (None, "zero", "free"):
        raise ValueError(f"feedthrough must be 'zero' or 'free'; got {feedthrough!r}.")
    get_activation(activation)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps (the certificate margin) must be a positive number; got {eps}.")
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
    if identity_output and sizes["ny"] != sizes["nx"]:
        raise ValueError(
            f"identity_output (y = x) needs ny == nx; got ny={sizes['ny']}, nx={sizes['nx']}."
        )


class AbstractRecurrentModel(eqx.Module):
    """A model given by direct parameters, evaluated through its explicit form.

    Subclasses implement ``explicit()`` and ``certificate()``; evaluation is shared. For
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
