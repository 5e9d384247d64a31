"""Compile once (timed apart), then time the compiled calls in interleaved repeats.

The calls being compared take turns, round after round, so that they see the same load on a
shared machine; the median over rounds is reported, and the minimum as a load-free estimate.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Compiled:
    call: Callable[[], Any]
    compile_s: float
    temp_bytes: int


def compile_call(fn: Callable, *args) -> Compiled:
    """``jit(fn)`` traced, lowered and compiled for ``args``; the call runs the executable."""
    start = time.perf_counter()
    executable = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    temp_bytes = executable.memory_analysis().temp_size_in_bytes
    return Compiled(lambda: executable(*args), compile_s, temp_bytes)


def race(
    calls: dict[str, Callable[[], Any]], *, budget_s: float, min_rounds: int = 5
) -> dict[str, dict[str, float]]:
    """Seconds per call (median, min) for each of ``calls``, timed in turns after a warm-up."""
    for call in calls.values():
        jax.block_until_ready(call())
    start = time.perf_counter()
    for call in calls.values():
        jax.block_until_ready(call())
    rounds = max(min_rounds, int(budget_s / (time.perf_counter() - start)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    return {
        name: {"median_s": statistics.median(ts), "min_s": min(ts), "rounds": rounds}
        for name, ts in times.items()
    }


def sequence_functions(model: eqx.Module):
    """``(params, forward, gradient)`` for a model with ``simulate(x0, u) -> (x_T, y)``.

    ``forward(params, x0, u)`` simulates; ``gradient(params, x0, u, target)`` is the value and
    gradient of the sequence MSE with respect to the (direct) parameters.
    """
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def forward(params, x0, u):
        return eqx.combine(params, static).simulate(x0, u)

    def loss(params, x0, u, target):
        return jnp.mean((forward(params, x0, u)[1] - target) ** 2)

    return params, forward, jax.value_and_grad(loss)


def recompiles_on_new_values(model: eqx.Module, x0, u, target) -> bool:
    """Whether the jitted gradient compiles again when only the parameter values change."""
    params, _, gradient = sequence_functions(model)
    jitted = jax.jit(gradient)
    _, grads = jitted(params, x0, u, target)
    jitted(jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), x0, u, target)
    return jitted._cache_size() != 1
