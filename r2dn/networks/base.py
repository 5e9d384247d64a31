"""The interface of a nonlinearity φ in explicit form, as `r2dn.simulation` evaluates it."""

import abc
from typing import NamedTuple

import equinox as eqx
from jaxtyping import Array, Float


class DenseChain(NamedTuple):
    """A plain dense network ``h ↦ σ(⋯σ(h W₀ + b₀)⋯) W_L + b_L`` (row vectors)."""

    weights: tuple[Float[Array, "p q"], ...]
    biases: tuple[Float[Array, " q"], ...]
    activation: str


class AbstractNonlinearity(eqx.Module):
    """φ in explicit form: the map ``v ↦ w`` a recurrent model evaluates at every step.

    `dense_chain` tells `r2dn.simulation.simulate` whether φ is a plain dense network, whose
    matrices it can fuse with the state recurrence; by default it is not (any other φ runs in a
    plain scan).
    """

    @abc.abstractmethod
    def __call__(self, v: Float[Array, "... nv"]) -> Float[Array, "... nv"]:
        """Evaluate φ."""

    def dense_chain(self) -> DenseChain | None:
        """φ as a dense network, or ``None`` if it is not one."""
        return None
