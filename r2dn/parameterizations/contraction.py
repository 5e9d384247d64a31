"""A trainable strict contraction (``‖N‖ < 1``) as an Equinox module."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.parameterizations._linalg import strict_contraction
from r2dn.parameterizations.margin import DEFAULT_MARGIN_RULE, MarginRule


class StrictContraction(eqx.Module):
    """Free matrices ``X, Y, Z`` mapped to an ``m × n`` matrix with spectral norm below one.

    By the default "relative" ``margin_rule`` the norm is at most ``1 − eps`` at every scale of
    ``X, Y, Z`` (`r2dn.parameterizations.margin`).

    >>> import jax, jax.numpy as jnp
    >>> N = StrictContraction(2, 5, key=jax.random.key(0))()
    >>> N.shape, bool(jnp.linalg.norm(N, 2) < 1)
    ((2, 5), True)
    """

    X: Float[Array, "k k"]
    Y: Float[Array, "k k"]
    Z: Float[Array, "l k"]
    eps: float = eqx.field(static=True)
    transpose: bool = eqx.field(static=True)
    margin_rule: MarginRule = eqx.field(static=True)

    def __init__(
        self,
        m: int,
        n: int,
        *,
        key: PRNGKeyArray,
        eps: float = 1e-6,
        margin_rule: MarginRule = DEFAULT_MARGIN_RULE,
        dtype=jnp.float32,
    ):
        # Built as tall (rows ≥ columns) and transposed when wide.
        self.transpose = m < n
        tall, small = max(m, n), min(m, n)
        kx, ky, kz = jax.random.split(key, 3)
        self.X = lecun_normal(kx, (small, small), dtype)
        self.Y = lecun_normal(ky, (small, small), dtype)
        self.Z = lecun_normal(kz, (tall - small, small), dtype)
        self.eps = eps
        self.margin_rule = margin_rule

    def __call__(self) -> Float[Array, "m n"]:
        N = strict_contraction(self.X, self.Y, self.Z, self.eps, self.margin_rule)
        return N.T if self.transpose else N
