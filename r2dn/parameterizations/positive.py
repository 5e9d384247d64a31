"""A trainable positive-real matrix (symmetric part ``≥ εI``) as an Equinox module."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.initializers import lecun_normal
from r2dn.parameterizations._linalg import positive_real
from r2dn.parameterizations.margin import DEFAULT_MARGIN_RULE, MarginRule


class PositiveReal(eqx.Module):
    """Free ``X, Y`` mapped to ``M = XᵀX + Y − Yᵀ + mI``, whose symmetric part is ``≥ mI ⪰ εI``.

    ``m`` grows with ``X, Y`` by the default "relative" ``margin_rule`` (`positive_real`).

    The free feedthrough of a ``Q = 0`` (passivity) REN: ``D22 = S⁻¹(M − R/2)``.

    >>> import jax, numpy as np
    >>> M = PositiveReal(3, key=jax.random.key(0), eps=1e-3)()
    >>> bool(np.linalg.eigvalsh(np.asarray(M + M.T)).min() > 0)
    True
    """

    X: Float[Array, "n n"]
    Y: Float[Array, "n n"]
    eps: float = eqx.field(static=True)
    margin_rule: MarginRule = eqx.field(static=True)

    def __init__(
        self,
        n: int,
        *,
        key: PRNGKeyArray,
        eps: float,
        margin_rule: MarginRule = DEFAULT_MARGIN_RULE,
        dtype=jnp.float32,
    ):
        kx, ky = jax.random.split(key)
        self.X = lecun_normal(kx, (n, n), dtype)
        self.Y = lecun_normal(ky, (n, n), dtype)
        self.eps = eps
        self.margin_rule = margin_rule

    def __call__(self) -> Float[Array, "n n"]:
        return positive_real(self.X, self.Y, self.eps, self.margin_rule)
