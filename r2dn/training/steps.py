"""The pure training step and the scan of steps every training loop in r2dn is built from.

`step` is one gradient step: the gradient of a loss, ``optimizer.update(..., value=loss)``
(so `optax.contrib.reduce_on_plateau` and other transforms that read the loss work), and the
update applied. `train_steps` runs one `step` per slice of a stack of batches in one
`lax.scan`, carrying a state (e.g. a recurrent state across time segments) from step to step.
`train_step` is `step` jitted for callers that step one batch at a time. The host-side loop
over epochs lives in `r2dn.training.engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, PyTree

#: ``loss(model, *args) -> (value, aux)``; for `train_steps`, ``loss(model, carry, batch,
#: *data) -> (value, next_carry)``. Pass the same (or an equal, hashable) object each time
#: so that compiled steps are reused.
Loss = Callable[..., tuple[Float[Array, ""], Any]]


def step(
    loss: Loss,
    optimizer: optax.GradientTransformation,
    model: PyTree,
    opt_state: optax.OptState,
    *args: Any,
) -> tuple[PyTree, optax.OptState, Float[Array, ""], Any, Bool[Array, ""]]:
    """One optimiser step on ``loss(model, *args) -> (value, aux)``; pure, not jitted.

    Any Optax optimiser works: plain ones are wrapped in `optax.with_extra_args_support`
    (which keeps their state as it is) so that all are told the loss as ``value``. Returns
    the updated model and optimiser state, the loss, its auxiliary output and whether the loss
    and every gradient are finite (the caller decides what a non-finite step means).

    >>> import jax.numpy as jnp, optax
    >>> loss = lambda w, x: (jnp.sum((w - x) ** 2), None)
    >>> opt = optax.sgd(0.25)
    >>> w, state, value, _, finite = step(loss, opt, jnp.zeros(2), opt.init(jnp.zeros(2)), 1.0)
    >>> w.tolist(), float(value), bool(finite)
    ([0.5, 0.5], 2.0, True)
    """
    (value, aux), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, *args)
    finite = jnp.isfinite(value)
    for g in jax.tree.leaves(grads):
        finite &= jnp.all(jnp.isfinite(g))
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optax.with_extra_args_support(optimizer).update(
        grads, opt_state, params, value=value
    )
    return eqx.apply_updates(model, updates), opt_state, value, aux, finite


@eqx.filter_jit
def train_step(
    loss: Loss,
    optimizer: optax.GradientTransformation,
    model: PyTree,
    opt_state: optax.OptState,
    *args: Any,
) -> tuple[PyTree, optax.OptState, Float[Array, ""], Any]:
    """`step`, jitted: returns the updated model and optimiser state, the loss and its aux.

    ``loss`` and ``optimizer`` are static (pass the same objects to reuse the compiled step).
    """
    model, opt_state, value, aux, _ = step(loss, optimizer, model, opt_state, *args)
    return model, opt_state, value, aux


@eqx.filter_jit
def train_steps(
    loss: Loss,
    optimizer: optax.GradientTransformation,
    model: PyTree,
    opt_state: optax.OptState,
    carry: PyTree,
    batches: PyTree,
    *data: Any,
) -> tuple[PyTree, optax.OptState, PyTree, Float[Array, " K"], Bool[Array, " K"]]:
    """One `step` per batch ``batches[k]`` (leading axis ``K``), in one `lax.scan`.

    Step ``k`` minimises ``loss(model, carry, batches[k], *data) -> (value, next_carry)``;
    ``next_carry`` (no gradient flows through it) is the ``carry`` of step ``k + 1``. ``data``
    is passed unchanged to every step (e.g. whole records that batches index into). Returns the
    model, optimiser state and final carry, and per step the loss and whether it and the
    gradient were finite.

    >>> import jax.numpy as jnp, optax
    >>> loss = lambda w, c, x: (jnp.sum((w - x) ** 2), c + 1)
    >>> opt = optax.sgd(0.25)
    >>> w, _, c, values, finite = train_steps(
    ...     loss, opt, jnp.zeros(1), opt.init(jnp.zeros(1)), 0, jnp.ones((3, 1)))
    >>> w.tolist(), int(c), values.tolist(), finite.tolist()
    ([0.875], 3, [1.0, 0.25, 0.0625], [True, True, True])
    """
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def body(state, batch):
        params, opt_state, carry = state
        model, opt_state, value, carry, finite = step(
            loss, optimizer, eqx.combine(params, static), opt_state, carry, batch, *data
        )
        carry = jax.lax.stop_gradient(carry)
        return (eqx.filter(model, eqx.is_inexact_array), opt_state, carry), (value, finite)

    (params, opt_state, carry), (values, finite) = jax.lax.scan(
        body, (params, opt_state, carry), batches
    )
    return eqx.combine(params, static), opt_state, carry, values, finite
