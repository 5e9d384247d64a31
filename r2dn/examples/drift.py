"""A Duffing oscillator whose stiffness drifts: the system of the online-adaptation study.

A Silverbox-type oscillator (a mass on a damped spring that hardens with its deflection),

    ÿ + c ẏ + k(t) y + k₃ y³ = u,

with ``c = DAMPING``, ``k₃ = CUBIC`` and the stiffness ``k(t)`` held at ``STIFFNESS`` for the
first ``drift_start`` of the record, then ramped linearly to ``ratio · STIFFNESS`` at its last
sample (`stiffness_schedule`). It is sampled every ``SAMPLE_TIME`` seconds: the input is held
over each sample and the motion integrated by ``SUBSTEPS`` classical Runge–Kutta steps, with the
stiffness of that sample. The output ``y[t]`` is the position at the start of sample ``t``
(before ``u[t]`` acts), so the system is strictly proper. The input is a random-phase multisine
(`input_signal`), and `record` draws a whole record from one PRNG key.

At ``k = 1`` the linear part resonates at 1 rad/s (≈ 21 samples per period) with damping ratio
0.1; at ``k = 2`` at 1.41 rad/s. The default input's band (to 0.2 of the Nyquist frequency,
2.1 rad/s) covers both resonances; at its default level (root mean square 0.25) the cubic
force is about a quarter of the linear one (root mean squares), a mild nonlinearity like the
Silverbox benchmark's.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn.models.base import check_sizes

DAMPING = 0.2
STIFFNESS = 1.0
CUBIC = 0.5
SAMPLE_TIME = 0.3
SUBSTEPS = 4


class DriftRecord(NamedTuple):
    """One record: input, output and the stiffness in force at each sample, each ``(T,)``."""

    u: Float[Array, " T"]
    y: Float[Array, " T"]
    stiffness: Float[Array, " T"]


def stiffness_schedule(
    steps: int, *, ratio: float = 2.0, drift_start: float = 0.25
) -> Float[Array, " T"]:
    """``k`` at each of ``steps`` samples: ``STIFFNESS`` until ``drift_start · steps``, then a
    linear ramp reaching ``ratio · STIFFNESS`` at the last sample.

    >>> k = stiffness_schedule(5, ratio=2.0, drift_start=0.2)
    >>> [round(float(v), 2) for v in k]
    [1.0, 1.0, 1.33, 1.67, 2.0]
    """
    _check_drift(steps, ratio, drift_start)
    t = jnp.arange(steps)
    start = int(np.floor(drift_start * steps))
    span = max(steps - 1 - start, 1)
    fraction = jnp.clip((t - start) / span, 0.0, 1.0)
    return STIFFNESS * (1.0 + (ratio - 1.0) * fraction)


def input_signal(
    key: PRNGKeyArray, steps: int, *, rms: float = 0.25, bandwidth: float = 0.2
) -> Float[Array, " T"]:
    """A random-phase multisine of period ``steps``: every frequency from the first harmonic up
    to ``bandwidth`` × the Nyquist frequency with equal amplitude, scaled to root mean square
    ``rms``.

    >>> import jax, numpy as np
    >>> u = input_signal(jax.random.key(0), 1_000, rms=0.5)
    >>> u.shape, round(float(np.sqrt(np.mean(np.asarray(u) ** 2))), 6)
    ((1000,), 0.5)
    """
    check_sizes(steps=steps)
    if not (np.isfinite(rms) and rms > 0):
        raise ValueError(f"rms (the input's root mean square) must be positive; got {rms}.")
    if not 0 < bandwidth <= 1:
        raise ValueError(
            f"bandwidth is a fraction of the Nyquist frequency, in (0, 1]; got {bandwidth}."
        )
    if steps < 2:
        raise ValueError(f"a multisine needs at least 2 samples; got steps={steps}.")
    harmonics = steps // 2
    excited = max(1, int(bandwidth * harmonics))
    phases = jax.random.uniform(key, (excited,), maxval=2 * jnp.pi)
    spectrum = (
        jnp.zeros(harmonics + 1, jnp.result_type(phases, 1j))
        .at[1 : excited + 1]
        .set(jnp.exp(1j * phases))
    )
    u = jnp.fft.irfft(spectrum, n=steps)
    return rms * u / jnp.sqrt(jnp.mean(u**2))


def duffing(u: Float[Array, " T"], stiffness: Float[Array, " T"]) -> Float[Array, " T"]:
    """The oscillator's position at each sample, from rest, under input ``u`` and stiffness
    ``stiffness`` (both ``(T,)``, the latter positive).

    >>> import jax.numpy as jnp
    >>> y = duffing(jnp.ones(200), jnp.ones(200))  # a unit step: settles where y + 0.5y³ = 1
    >>> float(y[0]), round(float(y[-1]), 2)
    (0.0, 0.77)
    """
    u, stiffness = jnp.asarray(u), jnp.asarray(stiffness, jnp.result_type(u))
    if u.ndim != 1 or u.shape != stiffness.shape:
        raise ValueError(
            f"u and stiffness must be 1-D of one length (one value per sample); got shapes "
            f"{u.shape} and {stiffness.shape}."
        )
    return _integrate(u, stiffness)


def _field(s: Float[Array, "2"], u_t, k_t) -> Float[Array, "2"]:
    """``d(y, ẏ)/dt`` under input ``u_t`` and stiffness ``k_t``."""
    y, v = s
    return jnp.stack([v, u_t - DAMPING * v - k_t * y - CUBIC * y**3])


def _sample(s: Float[Array, "2"], inputs) -> tuple[Float[Array, "2"], Float[Array, ""]]:
    """One sample: ``SUBSTEPS`` classical Runge–Kutta steps, input and stiffness held."""
    u_t, k_t = inputs
    h, y_t = SAMPLE_TIME / SUBSTEPS, s[0]
    for _ in range(SUBSTEPS):
        a = _field(s, u_t, k_t)
        b = _field(s + h / 2 * a, u_t, k_t)
        c = _field(s + h / 2 * b, u_t, k_t)
        d = _field(s + h * c, u_t, k_t)
        s = s + h / 6 * (a + 2 * b + 2 * c + d)
    return s, y_t


@jax.jit
def _integrate(u: Float[Array, " T"], stiffness: Float[Array, " T"]) -> Float[Array, " T"]:
    return jax.lax.scan(_sample, jnp.zeros(2, u.dtype), (u, stiffness))[1]


def record(
    key: PRNGKeyArray,
    steps: int,
    *,
    ratio: float = 2.0,
    drift_start: float = 0.25,
    rms: float = 0.25,
) -> DriftRecord:
    """A record of ``steps`` samples: `input_signal` from ``key`` through the oscillator with
    `stiffness_schedule` (``ratio``, ``drift_start``).

    >>> import jax
    >>> data = record(jax.random.key(0), 2_000, ratio=2.0, drift_start=0.5)
    >>> data.u.shape, data.y.shape, float(data.stiffness[0]), float(data.stiffness[-1])
    ((2000,), (2000,), 1.0, 2.0)
    """
    stiffness = stiffness_schedule(steps, ratio=ratio, drift_start=drift_start)
    u = input_signal(key, steps, rms=rms)
    return DriftRecord(u, duffing(u, stiffness), stiffness)


def _check_drift(steps: int, ratio: float, drift_start: float) -> None:
    check_sizes(steps=steps)
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(
            f"ratio (final stiffness ÷ initial stiffness) must be positive; got {ratio}."
        )
    if not 0 <= drift_start < 1:
        raise ValueError(
            f"drift_start is the fraction of the record before the drift begins, in [0, 1); "
            f"got {drift_start}."
        )
