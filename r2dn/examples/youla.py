"""The Youla-parameterised feedback loop of the paper's control experiment (experiments note, §3).

The plant is the stable, lightly damped ``T(z) = 0.3 / (z² − 1.6 cos(0.2π) z + 0.64)`` (poles
``0.8·e^{±0.2πi}``). A learned recurrent model ``Q`` closes the loop

    [z; ỹ] = [[T, T], [−T, 0]] [w; ũ],   ũ = clip(Q(ỹ), ±U_MAX),

where ``w`` is a disturbance and ``z`` the performance output. ``ỹ = −T w`` does not depend on
``ũ``, so any stable ``Q`` keeps the loop stable (the Youla parameterisation of all stabilising
controllers of a stable plant); with a contracting ``Q`` the loop forgets its initial state.

The realisation is minimal: ``T w`` is computed once and feeds both ``z`` and ``ỹ``, so the loop's
plant state is two copies of ``T``'s state, one driven by ``w`` and one by ``ũ``.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn import simulation
from r2dn.models.base import AbstractRecurrentModel, check_sizes

#: Actuator limit: the policy's output is clipped to ``[−U_MAX, U_MAX]``.
U_MAX = 5.0
#: Weight of ``ũ²`` in the cost.
CONTROL_WEIGHT = 1e-4

_GAIN, _RADIUS, _ANGLE = 0.3, 0.8, 0.2 * math.pi


class LinearPlant(NamedTuple):
    """A discrete-time single-input single-output system ``x⁺ = A x + B u``, ``y = C x``."""

    A: Float[Array, "2 2"]
    B: Float[Array, "2 1"]
    C: Float[Array, "1 2"]


class LoopState(NamedTuple):
    """State of the closed loop: ``T``'s state under ``w`` and under ``ũ``, and the policy's."""

    disturbance_path: Float[Array, "... 2"]
    control_path: Float[Array, "... 2"]
    policy: Float[Array, "... nx"]


def plant(dtype=jnp.float32) -> LinearPlant:
    """``T(z)`` in controllable canonical form (state = the last two values of its input filter).

    >>> import numpy as np
    >>> T = plant()
    >>> np.round(np.abs(np.linalg.eigvals(np.asarray(T.A, float))), 6).tolist()
    [0.8, 0.8]
    """
    a1, a2 = 2 * _RADIUS * math.cos(_ANGLE), _RADIUS**2
    return LinearPlant(
        A=jnp.array([[a1, -a2], [1.0, 0.0]], dtype=dtype),
        B=jnp.array([[1.0], [0.0]], dtype=dtype),
        C=jnp.array([[0.0, _GAIN]], dtype=dtype),
    )


def _check_policy(policy: AbstractRecurrentModel) -> None:
    if (policy.nu, policy.ny) != (1, 1):
        raise ValueError(
            f"The Youla parameter Q maps ỹ (1 channel) to ũ (1 channel): it needs nu = ny = 1; "
            f"got nu={policy.nu}, ny={policy.ny}."
        )


def initial_loop_state(policy: AbstractRecurrentModel, *batch: int) -> LoopState:
    """Zero plant and policy states with the given batch shape."""
    _check_policy(policy)
    zeros = jnp.zeros((*batch, 2), dtype=policy.dtype)
    return LoopState(zeros, zeros, policy.initial_state(*batch))


def closed_loop(
    policy: AbstractRecurrentModel,
    w: Float[Array, "*batch T 1"],
    state: LoopState | None = None,
) -> tuple[LoopState, Float[Array, "*batch T 1"], Float[Array, "*batch T 1"]]:
    """Run the loop over disturbances ``w`` from ``state`` (zero if ``None``) in one ``lax.scan``.

    Returns the final state (to carry into the next segment) and the sequences ``z`` and the
    clipped ``ũ``. The policy is mapped to its explicit form once, outside the scan. The loop
    runs in the promoted floating type of the policy, ``w`` and ``state``.

    >>> import jax, r2dn
    >>> Q = r2dn.ContractingR2DN(1, 4, 8, 1, (16,), activation="tanh", key=jax.random.key(0))
    >>> w = disturbances(jax.random.key(1), 3, 120)
    >>> state, z, u = closed_loop(Q, w)
    >>> z.shape, u.shape, state.policy.shape, float(abs(u).max()) <= U_MAX
    ((3, 120, 1), (3, 120, 1), (3, 4), True)
    >>> state, z, u = closed_loop(Q, w, state)  # continue from where the last segment ended
    """
    _check_policy(policy)
    if w.ndim < 2 or w.shape[-1] != 1:
        raise ValueError(f"Expected disturbances w of shape (..., T, 1); got shape {w.shape}.")
    batch = w.shape[:-2]
    if state is None:
        state = initial_loop_state(policy, *batch)
    dtype = jnp.result_type(policy.dtype, w, *state)
    state = LoopState(*(jnp.broadcast_to(s, (*batch, s.shape[-1])).astype(dtype) for s in state))
    T = plant(dtype)
    Q = policy.explicit()

    def body(s: LoopState, w_t: Array) -> tuple[LoopState, tuple[Array, Array]]:
        Tw, Tu = s.disturbance_path @ T.C.T, s.control_path @ T.C.T
        policy_next, u = simulation.step(Q, s.policy, -Tw)
        u = jnp.clip(u, -U_MAX, U_MAX)
        next_state = LoopState(
            s.disturbance_path @ T.A.T + w_t @ T.B.T,
            s.control_path @ T.A.T + u @ T.B.T,
            policy_next,
        )
        return next_state, (Tw + Tu, u)

    w = jnp.moveaxis(w.astype(dtype), -2, 0)
    final, (z, u) = jax.lax.scan(body, state, w)
    return final, jnp.moveaxis(z, 0, -2), jnp.moveaxis(u, 0, -2)


def cost(z: Float[Array, "*batch T 1"], u: Float[Array, "*batch T 1"]) -> Float[Array, ""]:
    """The paper's cost: ``mean |z| + CONTROL_WEIGHT·mean ũ²`` over batch and time."""
    return jnp.mean(jnp.abs(z)) + CONTROL_WEIGHT * jnp.mean(u**2)


def disturbances(
    key: PRNGKeyArray, batch: int, T: int, hold: int = 50, amplitude: float = 10.0
) -> Float[Array, "batch T 1"]:
    """Piecewise-constant disturbances: a level ``~ U[−amplitude, amplitude]`` per ``hold`` steps.

    >>> import jax
    >>> w = disturbances(jax.random.key(0), 2, 120, hold=50)
    >>> w.shape, bool((w[:, :50] == w[:, :1]).all()), bool((w[:, 50] != w[:, 49]).all())
    ((2, 120, 1), True, True)
    """
    check_sizes(batch=batch, T=T, hold=hold)
    levels = jax.random.uniform(key, (batch, -(-T // hold), 1), minval=-amplitude, maxval=amplitude)
    return jnp.repeat(levels, hold, axis=1)[:, :T]
