"""Random initialisers for free parameters: a shared utility of every layer above it."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray


def lecun_normal(key: PRNGKeyArray, shape: tuple[int, ...], dtype) -> Array:
    """Normal entries with variance ``1/fan_in`` (``fan_in`` = last dimension).

    >>> import jax
    >>> lecun_normal(jax.random.key(0), (3, 4), "float32").shape
    (3, 4)
    """
    fan_in = max(shape[-1], 1)
    return jax.random.normal(key, shape, dtype=dtype) / jnp.sqrt(fan_in).astype(dtype)
