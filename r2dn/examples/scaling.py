"""The one-step map of the paper's scalability experiment (experiments note, section 4).

A model with ``nx = nu = ny = 1`` (identity output) learns ``x⁺ = f(x, u)`` from one-step pairs;
its accuracy on a validation set measures its expressivity. With ``s = x + u``,

    f(x, u) = 0.2 sin x + 0.05 cos 2s + 0.05 sin 3s + 0.075 sin 4s · atan(0.1 s²) + 0.05 x + u.

Training samples draw ``x ~ U[−30, 30]`` and ``u ~ U[−1, 1]``; validation is a uniform grid of
``x`` over the same range at ``u = 1``. (The note's formula and ranges are followed; the authors'
code differs: ``0.2 sin(x + u)`` and ``u ~ U[−10, 10]``, with 2,048 random ``x`` to validate.)
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.models.base import check_sizes

X_RANGE = 30.0
U_RANGE = 1.0
VALIDATION_POINTS = 2_048
VALIDATION_INPUT = 1.0


class OneStepData(NamedTuple):
    """Pairs ``(x, u) ↦ x_next = f(x, u)``, each of shape ``(n, 1)``."""

    x: Float[Array, "n 1"]
    u: Float[Array, "n 1"]
    x_next: Float[Array, "n 1"]


def target(x: Float[Array, "..."], u: Float[Array, "..."]) -> Float[Array, "..."]:
    """``f(x, u)``, elementwise.

    >>> import jax.numpy as jnp, numpy as np
    >>> np.round(np.asarray(target(jnp.zeros(2), jnp.array([0.0, 1.0])), float), 4).tolist()
    [0.05, 0.9806]
    """
    s = x + u
    return (
        0.2 * jnp.sin(x)
        + 0.05 * jnp.cos(2 * s)
        + 0.05 * jnp.sin(3 * s)
        + 0.075 * jnp.sin(4 * s) * jnp.arctan(0.1 * s**2)
        + 0.05 * x
        + u
    )


def sample(key: PRNGKeyArray, n: int) -> OneStepData:
    """``n`` training pairs with ``x ~ U[−30, 30]`` and ``u ~ U[−1, 1]``.

    >>> import jax
    >>> data = sample(jax.random.key(0), 512)
    >>> data.x.shape, data.u.shape, data.x_next.shape
    ((512, 1), (512, 1), (512, 1))
    """
    check_sizes(n=n)
    kx, ku = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 1), minval=-X_RANGE, maxval=X_RANGE)
    u = jax.random.uniform(ku, (n, 1), minval=-U_RANGE, maxval=U_RANGE)
    return OneStepData(x, u, target(x, u))


def validation_grid(n: int = VALIDATION_POINTS) -> OneStepData:
    """``n`` evenly spaced ``x`` from −30 to 30, all at ``u = 1``.

    >>> grid = validation_grid()
    >>> grid.x.shape, float(grid.x[0, 0]), float(grid.x[-1, 0]), float(grid.u.min())
    ((2048, 1), -30.0, 30.0, 1.0)
    """
    check_sizes(n=n)
    x = jnp.linspace(-X_RANGE, X_RANGE, n)[:, None]
    u = jnp.full_like(x, VALIDATION_INPUT)
    return OneStepData(x, u, target(x, u))
