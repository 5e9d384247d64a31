"""Tests of the prediction-error metrics."""

import json

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from r2dn.metrics import fit_percent, nrmse, rmse, summary

signals = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=8),
    elements=st.floats(-100, 100, allow_subnormal=False),
)


def varying(y: np.ndarray) -> bool:
    """Every channel has a non-negligible spread (so nrmse and fit_percent are defined)."""
    return bool((y.reshape(-1, y.shape[-1]).std(axis=0) > 1e-3).all())


@given(y=signals)
def test_perfect_prediction(y):
    assume(varying(y))
    np.testing.assert_array_equal(rmse(y, y), 0)
    np.testing.assert_array_equal(nrmse(y, y), 0)
    np.testing.assert_allclose(fit_percent(y, y), 100)
    assert rmse(y, y).shape == nrmse(y, y).shape == (y.shape[-1],)
    assert nrmse(y, y, per_channel=False).shape == ()


@given(y=signals, noise=st.integers(0, 2**32 - 1), scale=st.floats(1e-2, 1e2))
def test_scaling(y, noise, scale):
    assume(varying(y))
    y_hat = y + np.random.default_rng(noise).normal(size=y.shape)
    np.testing.assert_allclose(rmse(scale * y, scale * y_hat), scale * rmse(y, y_hat))
    np.testing.assert_allclose(nrmse(scale * y, scale * y_hat), nrmse(y, y_hat))
    np.testing.assert_allclose(fit_percent(scale * y, scale * y_hat), fit_percent(y, y_hat))


def test_known_values():
    y = np.array([[1.0, 2.0], [-1.0, 4.0], [1.0, 6.0], [-1.0, 8.0]])  # (T=4, ny=2)
    offset = y + np.array([0.5, -1.0])
    np.testing.assert_allclose(rmse(y, offset), [0.5, 1.0])
    np.testing.assert_allclose(nrmse(y, 0.9 * y), [0.1, 0.1])
    mse = (0.25 + 1) / 2  # over both channels
    np.testing.assert_allclose(rmse(y, offset, per_channel=False), np.sqrt(mse))
    np.testing.assert_allclose(nrmse(y, offset, per_channel=False), np.sqrt(mse / np.mean(y**2)))
    mean_predictor = np.broadcast_to(y.mean(axis=0), y.shape)
    np.testing.assert_allclose(fit_percent(y, mean_predictor), [0.0, 0.0], atol=1e-12)
    # channel 1 deviates by ±3, ±1 from its mean 5: ‖y - mean‖ = sqrt(20)
    np.testing.assert_allclose(fit_percent(y, offset)[1], 100 * (1 - 2 / np.sqrt(20)))


def test_washout_drops_the_first_steps():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2, 50, 3))
    y_hat = y + 0.1 * rng.normal(size=y.shape)
    spoiled = y_hat.copy()
    spoiled[:, :10] = 1e6
    for metric in (rmse, nrmse, fit_percent):
        np.testing.assert_allclose(metric(y, spoiled, washout=10), metric(y, y_hat, washout=10))
        np.testing.assert_allclose(metric(y, y_hat, washout=10), metric(y[:, 10:], y_hat[:, 10:]))


def test_leading_axes_are_pooled():
    rng = np.random.default_rng(1)
    y, y_hat = rng.normal(size=(2, 3, 20, 2)), rng.normal(size=(2, 3, 20, 2))
    for metric in (rmse, nrmse, fit_percent):
        np.testing.assert_allclose(metric(y, y_hat), metric(y.reshape(-1, 2), y_hat.reshape(-1, 2)))


@pytest.mark.parametrize(
    ("y_hat_shape", "washout", "message"),
    [
        ((10, 3), 0, r"same shape, got \(10, 2\) and \(10, 3\)"),
        ((10, 2), 10, r"washout must be in \[0, T\) = \[0, 10\) steps, got 10"),
        ((10, 2), -1, "got -1"),
    ],
)
def test_bad_input(y_hat_shape, washout, message):
    for metric in (rmse, nrmse, fit_percent):
        with pytest.raises(ValueError, match=message):
            metric(np.ones((10, 2)), np.ones(y_hat_shape), washout=washout)


def test_jax_arrays_and_jit_match_numpy():
    rng = np.random.default_rng(2)
    y, y_hat = rng.normal(size=(3, 40, 2)), rng.normal(size=(3, 40, 2))
    for metric in (rmse, nrmse, fit_percent):
        jitted = jax.jit(lambda a, b, metric=metric: metric(a, b, washout=5, per_channel=False))
        out = jitted(jnp.asarray(y, jnp.float32), jnp.asarray(y_hat, jnp.float32))
        assert isinstance(out, jax.Array)
        np.testing.assert_allclose(out, metric(y, y_hat, washout=5, per_channel=False), rtol=1e-5)


def test_summary_is_json_and_consistent():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(2, 30, 3))
    y_hat = y + 0.2 * rng.normal(size=y.shape)
    report = json.loads(json.dumps(summary(jnp.asarray(y), jnp.asarray(y_hat), washout=4)))
    assert report["washout"] == 4
    for name, metric in (("rmse", rmse), ("nrmse", nrmse), ("fit_percent", fit_percent)):
        expected = metric(y, y_hat, washout=4)
        np.testing.assert_allclose(report["per_channel"][name], expected, rtol=1e-5)
        overall = metric(y, y_hat, washout=4, per_channel=False)
        np.testing.assert_allclose(report["overall"][name], overall, rtol=1e-5)
