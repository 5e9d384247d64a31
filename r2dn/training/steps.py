"""`train_step`: one jitted gradient step of any model on any loss.

`r2dn.training.fit` covers input/output records; experiments with their own losses (one-step
maps, closed loops) share this step rather than each writing the grad–update pair again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import optax
from jaxtyping import Array, Float, PyTree

Loss = Callable[..., tuple[Float[Array, ""], Any]]


@eqx.filter_jit
def train_step(
    loss: Loss,
    optimizer: optax.GradientTransformation,
    model: PyTree,
    opt_state: optax.OptState,
    *args: Any,
) -> tuple[PyTree, optax.OptState, Float[Array, ""], Any]:
    """One optimiser step on ``loss(model, *args) -> (value, aux)``.

    ``loss`` and ``optimizer`` are static (pass the same objects to reuse the compiled step).
    The loss value is also passed to the optimiser as ``value``, which transforms such as
    `optax.contrib.reduce_on_plateau` need and others ignore. Returns the updated model and
    optimiser state, the loss and its auxiliary output (e.g. a state to carry on).
    """
    (value, aux), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, *args)
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params, value=value)
    return eqx.apply_updates(model, updates), opt_state, value, aux
