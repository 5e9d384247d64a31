"""Random initialisers for free parameters."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray


def lecun_normal(key: PRNGKeyArray, shape: tuple[int, ...], dtype) -> Array:
    """Normal entries with variance ``1/fan_in`` (``fan_in`` = last dimension)."""
    fan_in = max(shape[-1], 1)
    return jax.random.normal(key, shape, dtype=dtype) / jnp.sqrt(fan_in).astype(dtype)
