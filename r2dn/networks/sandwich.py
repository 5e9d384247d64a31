"""1-Lipschitz Sandwich layers and γ-Lipschitz deep networks (LBDN, Wang & Manchester 2023).

A Sandwich layer maps ``h`` to ``√2 AᵀΨ σ(√2 Ψ⁻¹B h + b)`` where ``[Aᵀ; Bᵀ]`` has orthonormal
columns (Cayley transform) and ``Ψ = diag(exp(d))``; it is 1-Lipschitz for any parameters and
any activation with slope in [0, 1]. Every module here has an ``explicit()`` form: the weight
matrices it is evaluated with, computed once and reused over a whole sequence.
"""

import abc
import math
from collections.abc import Iterable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.networks.activations import get_activation
from r2dn.networks.base import AbstractNonlinearity, DenseChain
from r2dn.parameterizations import cayley, frobenius

#: ``d`` is clipped to this range before ``Ψ = exp(d)`` so that ``Ψ`` and ``Ψ⁻¹`` stay finite.
LOG_PSI_RANGE = 8.0


class CayleyWeights(eqx.Module):
    """Free ``W = [X; Yb]`` with a polar scale, mapped to ``(Aᵀ, B)`` by the Cayley transform."""

    X: Float[Array, "q q"]
    Yb: Float[Array, "p q"]
    scale: Float[Array, ""]

    def __init__(self, in_size: int, out_size: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        W = lecun_normal(key, (out_size + in_size, out_size), dtype)
        self.X, self.Yb = W[:out_size], W[out_size:]
        self.scale = frobenius(W)

    def __call__(self) -> tuple[Float[Array, "q q"], Float[Array, "q p"]]:
        c = self.scale / frobenius(jnp.concatenate([self.X, self.Yb], axis=0))
        return cayley(c * self.X, c * self.Yb)


class DenseWeights(eqx.Module):
    """An explicit affine-activation-linear block ``h ↦ σ(h W_inᵀ + b) W_out`` (row vectors)."""

    W_in: Float[Array, "q p"]
    b: Float[Array, " q"]
    W_out: Float[Array, "q r"]


class SandwichLayer(eqx.Module):
    """A 1-Lipschitz layer ``h ↦ √2 AᵀΨ σ(√2 Ψ⁻¹B h + b)`` from ``in_size`` to ``out_size``.

    >>> import jax, jax.numpy as jnp
    >>> layer = SandwichLayer(3, 4, key=jax.random.key(0))
    >>> layer(jnp.ones(3)).shape
    (4,)
    """

    weights: CayleyWeights
    d: Float[Array, " q"]
    b: Float[Array, " q"]
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        activation: str = "relu",
        *,
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ):
        get_activation(activation)
        self.weights = CayleyWeights(in_size, out_size, key=key, dtype=dtype)
        self.d = jnp.zeros(out_size, dtype=dtype)
        self.b = jnp.zeros(out_size, dtype=dtype)
        self.activation = activation

    def explicit(self) -> DenseWeights:
        At, B = self.weights()
        log_psi = jnp.clip(self.d, -LOG_PSI_RANGE, LOG_PSI_RANGE)
        sqrt2 = jnp.sqrt(2.0).astype(At.dtype)
        W_in = sqrt2 * jnp.exp(-log_psi)[:, None] * B
        W_out = sqrt2 * jnp.exp(log_psi)[:, None] * At.T
        return DenseWeights(W_in, self.b, W_out)

    def __call__(self, h: Float[Array, "... p"]) -> Float[Array, "... q"]:
        return apply_dense(self.explicit(), self.activation, h)


class LipschitzLinear(eqx.Module):
    """A linear layer ``h ↦ B h + b`` with ``‖B‖ ≤ 1`` (the output layer of an LBDN)."""

    weights: CayleyWeights
    b: Float[Array, " q"]

    def __init__(self, in_size: int, out_size: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        self.weights = CayleyWeights(in_size, out_size, key=key, dtype=dtype)
        self.b = jnp.zeros(out_size, dtype=dtype)

    def explicit(self) -> tuple[Float[Array, "q p"], Float[Array, " q"]]:
        return self.weights()[1], self.b

    def __call__(self, h: Float[Array, "... p"]) -> Float[Array, "... q"]:
        W, b = self.explicit()
        return h @ W.T + b


def apply_dense(layer: DenseWeights, activation: str, h: Float[Array, "... p"]) -> Array:
    """Evaluate an explicit Sandwich block on row vectors."""
    return get_activation(activation)(h @ layer.W_in.T + layer.b) @ layer.W_out


class ExplicitLBDN(AbstractNonlinearity):
    """An LBDN as the plain network it evaluates (row vectors, ``L`` hidden layers):

        h ↦ σ(⋯σ(h W₀ + b₀) W₁ + b₁ ⋯) W_L + b_L.

    Between two activations a Sandwich layer's output matrix ``√2AᵀΨ`` meets the next layer's
    input matrix ``√2Ψ⁻¹B`` with nothing in between, so `LBDN.explicit` multiplies them out
    once: one matmul per layer at evaluation. ``γ`` is folded into ``W₀`` and ``W_L``.
    """

    weights: tuple[Float[Array, "p q"], ...]
    biases: tuple[Float[Array, " q"], ...]
    activation: str = eqx.field(static=True)

    def __call__(self, h: Float[Array, "... n"]) -> Float[Array, "... m"]:
        sigma = get_activation(self.activation)
        for W, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = sigma(h @ W + b)
        return h @ self.weights[-1] + self.biases[-1]

    def dense_chain(self) -> DenseChain:
        return DenseChain(self.weights, self.biases, self.activation)


class AbstractGain(eqx.Module):
    """The Lipschitz bound γ of an `LBDN`: `FixedGain` or `TrainableGain`."""

    @abc.abstractmethod
    def log_gamma(self, dtype) -> Float[Array, ""]:
        """``log γ`` as an array of ``dtype``."""


class FixedGain(AbstractGain):
    """A fixed γ, kept as a Python float: not an array, so never trained (and constructible
    under ``jit`` and ``vmap``)."""

    log_value: float

    def log_gamma(self, dtype) -> Float[Array, ""]:
        return jnp.asarray(self.log_value, dtype=dtype)


class TrainableGain(AbstractGain):
    """A trainable γ: ``log γ`` is a parameter."""

    log_value: Float[Array, ""]

    def log_gamma(self, dtype) -> Float[Array, ""]:
        return self.log_value.astype(dtype)


class LBDN(eqx.Module):
    """A γ-Lipschitz deep network: Sandwich layers, then a linear 1-Lipschitz output layer.

    The input and output are scaled by ``√γ``. With ``trainable_gamma=True``, ``log γ`` is a
    trainable parameter (`TrainableGain`); otherwise γ is fixed (`FixedGain`).

    >>> import jax, jax.numpy as jnp
    >>> net = LBDN(2, (16, 16), 1, gamma=3.0, key=jax.random.key(0))
    >>> net(jnp.ones((5, 2))).shape
    (5, 1)
    >>> round(float(net.gamma), 6)
    3.0
    """

    layers: tuple[SandwichLayer, ...]
    output: LipschitzLinear
    gain: AbstractGain

    def __init__(
        self,
        in_size: int,
        hidden: Sequence[int],
        out_size: int,
        *,
        gamma: float = 1.0,
        trainable_gamma: bool = False,
        activation: str = "relu",
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ):
        get_activation(activation)
        gamma = float(gamma)
        if not (gamma > 0 and math.isfinite(gamma)):
            raise ValueError(f"The Lipschitz bound gamma must be a positive number; got {gamma}.")
        if isinstance(hidden, str) or not isinstance(hidden, Iterable):
            raise TypeError(
                f"hidden must be a sequence of layer widths, e.g. hidden=({hidden},); "
                f"got {hidden!r} of type {type(hidden).__name__}."
            )
        sizes = [in_size, *hidden]
        if any(int(n) != n or n < 1 for n in [*sizes, out_size]):
            raise ValueError(
                f"Layer sizes must be positive integers; got in={in_size}, hidden={tuple(hidden)}, "
                f"out={out_size}."
            )
        keys = jax.random.split(key, len(sizes))
        self.layers = tuple(
            SandwichLayer(n_in, n_out, activation, key=k, dtype=dtype)
            for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys[:-1], strict=True)
        )
        self.output = LipschitzLinear(sizes[-1], out_size, key=keys[-1], dtype=dtype)
        log_gamma = math.log(gamma)
        self.gain = (
            TrainableGain(jnp.asarray(log_gamma, dtype=dtype))
            if trainable_gamma
            else FixedGain(log_gamma)
        )

    @property
    def gamma(self) -> Float[Array, ""]:
        return jnp.exp(self.gain.log_gamma(self.output.b.dtype))

    @property
    def activation(self) -> str:
        return self.layers[0].activation if self.layers else "identity"

    def explicit(self) -> ExplicitLBDN:
        W, b = self.output.explicit()
        sqrt_gamma = jnp.exp(0.5 * self.gain.log_gamma(W.dtype))
        dense = [layer.explicit() for layer in self.layers]
        # Matrix k maps activation k to pre-activation k + 1: the output matrix of one layer
        # times the input matrix of the next. The first and the last matrix carry √γ each.
        ins = [d.W_in for d in dense] + [W]
        weights = [ins[0].T] + [d.W_out @ W_in.T for d, W_in in zip(dense, ins[1:], strict=True)]
        weights[0] = sqrt_gamma * weights[0]
        weights[-1] = sqrt_gamma * weights[-1]
        biases = tuple(d.b for d in dense) + (b,)
        return ExplicitLBDN(tuple(weights), biases, self.activation)

    def __call__(self, h: Float[Array, "... n"]) -> Float[Array, "... m"]:
        return self.explicit()(h)
