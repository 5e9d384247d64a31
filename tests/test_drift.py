"""The drifting Duffing oscillator of the online-adaptation study (`r2dn.examples.drift`).

References are computed here independently: the oscillator integrated in float64 numpy with
a step ten times finer, and the small-oscillation frequency of a damped linear spring.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r2dn.examples import drift

STEPS = 400  # one length for most tests, so the oscillator's scan is compiled once


def reference_duffing(u: np.ndarray, k: np.ndarray, substeps: int) -> np.ndarray:
    """The oscillator by explicit RK4 in numpy, ``substeps`` steps per sample."""
    h, s, out = drift.SAMPLE_TIME / substeps, np.zeros(2), []

    def f(s, u_t, k_t):
        return np.array([s[1], u_t - drift.DAMPING * s[1] - k_t * s[0] - drift.CUBIC * s[0] ** 3])

    for u_t, k_t in zip(u, k, strict=True):
        out.append(s[0])
        for _ in range(substeps):
            a = f(s, u_t, k_t)
            b = f(s + h / 2 * a, u_t, k_t)
            c = f(s + h / 2 * b, u_t, k_t)
            s = s + h / 6 * (a + 2 * b + 2 * c + f(s + h * c, u_t, k_t))
    return np.array(out)


def test_the_oscillator_matches_a_finer_independent_integration():
    data = drift.record(jax.random.key(3), STEPS, ratio=2.0, drift_start=0.3)
    u, k = np.asarray(data.u, np.float64), np.asarray(data.stiffness, np.float64)
    expected = reference_duffing(u, k, substeps=10 * drift.SUBSTEPS)
    np.testing.assert_allclose(np.asarray(drift.duffing(data.u, data.stiffness)), expected,
                               atol=1e-4 * np.abs(expected).max())  # fmt: skip


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_small_oscillations_ring_at_the_stiffnesss_damped_frequency(k):
    steps = STEPS
    u = jnp.zeros(steps).at[0].set(1e-3)  # an impulse small enough for the linear regime
    y = np.asarray(drift.duffing(u, jnp.full(steps, k)))[1:]
    crossings = np.flatnonzero(np.sign(y[1:]) != np.sign(y[:-1]))
    period = 2 * np.mean(np.diff(crossings)) * drift.SAMPLE_TIME
    expected = 2 * math.pi / math.sqrt(k - (drift.DAMPING / 2) ** 2)
    assert period == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("ratio", "drift_start"), [(2.0, 0.25), (0.5, 0.0), (3.0, 0.9)])
def test_the_stiffness_is_constant_then_ramps_to_ratio(ratio, drift_start):
    steps = 1_000
    k = np.asarray(drift.stiffness_schedule(steps, ratio=ratio, drift_start=drift_start))
    start = int(drift_start * steps)
    np.testing.assert_allclose(k[: start + 1], drift.STIFFNESS)
    assert k[-1] == pytest.approx(ratio * drift.STIFFNESS)
    steps_of_ramp = np.diff(k[start:])
    np.testing.assert_allclose(steps_of_ramp, steps_of_ramp[0], rtol=1e-4)  # linear
    assert np.sign(steps_of_ramp[0]) == np.sign(ratio - 1)


def test_the_drift_changes_the_output_only_after_it_starts():
    steps, start = STEPS, 0.5
    data = drift.record(jax.random.key(0), steps, ratio=2.0, drift_start=start)
    constant = drift.duffing(data.u, jnp.full(steps, drift.STIFFNESS))
    split = int(start * steps)
    np.testing.assert_array_equal(
        np.asarray(data.y[: split + 2]), np.asarray(constant[: split + 2])
    )
    late = slice(steps - 100, steps)
    gap = np.sqrt(np.mean((np.asarray(data.y - constant)[late]) ** 2))
    assert gap > 0.5 * np.std(np.asarray(constant)[late])  # a 2× stiffer spring moves differently


def test_records_are_deterministic_per_key_and_differ_between_keys():
    a, b = (drift.record(jax.random.key(7), STEPS) for _ in range(2))
    c = drift.record(jax.random.key(8), STEPS)
    for field in ("u", "y", "stiffness"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.allclose(a.u, c.u) and not np.allclose(a.y, c.y)


@pytest.mark.parametrize(("steps", "rms", "bandwidth"), [(STEPS, 0.5, 0.2), (257, 2.0, 1.0)])
def test_the_input_has_its_rms_and_no_power_outside_its_band(steps, rms, bandwidth):
    u = np.asarray(drift.input_signal(jax.random.key(1), steps, rms=rms, bandwidth=bandwidth))
    assert np.sqrt(np.mean(u**2)) == pytest.approx(rms, rel=1e-5)
    power = np.abs(np.fft.rfft(u)) ** 2
    excited = max(1, int(bandwidth * (steps // 2)))
    assert power[excited + 1 :].sum() <= 1e-8 * power.sum() and power[0] < 1e-8 * power.sum()
    assert np.all(power[1 : excited + 1] > 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: drift.stiffness_schedule(100, ratio=0.0), "ratio"),
        (lambda: drift.stiffness_schedule(100, ratio=float("nan")), "ratio"),
        (lambda: drift.stiffness_schedule(100, drift_start=1.0), "drift_start"),
        (lambda: drift.stiffness_schedule(0), "steps"),
        (lambda: drift.input_signal(jax.random.key(0), 100, rms=-1.0), "rms"),
        (lambda: drift.input_signal(jax.random.key(0), 100, bandwidth=0.0), "bandwidth"),
        (lambda: drift.input_signal(jax.random.key(0), 1), "at least 2"),
        (lambda: drift.duffing(jnp.zeros(5), jnp.ones(4)), "one length"),
        (lambda: drift.duffing(jnp.zeros((5, 1)), jnp.ones((5, 1))), "1-D"),
        (lambda: drift.record(jax.random.key(0), 100, drift_start=-0.1), "drift_start"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
