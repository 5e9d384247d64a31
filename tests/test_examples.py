"""Tests of the experiments' simulators and closed loops (`r2dn.examples`).

Reference values are computed here independently, in float64 numpy: a matrix form of the PDE
scheme.
"""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r2dn.examples import pde

# ---------------------------------------------------------------- reaction–diffusion PDE

STEPS = 30
unit_floats = st.floats(0, 1, width=32)
profiles = hnp.arrays(np.float32, pde.N_NODES, elements=unit_floats)
boundaries = hnp.arrays(np.float32, STEPS, elements=unit_floats)
rollout = jax.jit(pde.pde_rollout)


def reference_step(xi: np.ndarray, b: float) -> np.ndarray:
    """The scheme in matrix form: Dirichlet Laplacian on the interior plus boundary terms."""
    n = pde.N_NODES - 2
    lam = pde.DT / pde.DZ**2
    M = np.eye(n) + lam * (np.eye(n, k=1) - 2 * np.eye(n) + np.eye(n, k=-1))
    edge = np.zeros(n)
    edge[[0, -1]] = lam * b
    inner = np.asarray(xi, np.float64)[1:-1]
    for _ in range(4):
        inner = M @ inner + edge + pde.DT * 0.5 * inner * (1 - inner) * (inner - 0.5)
    return np.concatenate([[b], inner, [b]])


def test_grid_and_step_size_are_the_papers_and_stable():
    assert pde.N_NODES == 51 and pde.SUBSTEPS == 4
    np.testing.assert_allclose([pde.DZ, pde.DT], [0.2, 0.004])
    assert pde.DT <= pde.DZ**2 / 2
    # Linearised at ξ ≡ 0 (reaction slope −¼), the interior evolves by (I + DT·(Δ − ¼))⁴, whose
    # eigenvalues are known in closed form: they must lie in (0, 1).
    jac = jax.jacfwd(lambda inner: pde.pde_step(jnp.pad(inner, 1), 0.0)[1:-1])
    J = np.asarray(jac(jnp.zeros(pde.N_NODES - 2, jnp.float32)), np.float64)
    k = np.arange(1, pde.N_NODES - 1)
    laplacian = -4 / pde.DZ**2 * np.sin(k * np.pi / (2 * (pde.N_NODES - 1))) ** 2
    expected = (1 + pde.DT * (laplacian - 0.25)) ** pde.SUBSTEPS
    np.testing.assert_allclose(np.linalg.eigvalsh((J + J.T) / 2), np.sort(expected), rtol=1e-5)
    assert expected.min() > 0 and expected.max() < 1


@pytest.mark.parametrize("seed", range(3))
def test_step_matches_reference(seed):
    rng = np.random.default_rng(seed)
    xi, b = rng.uniform(size=pde.N_NODES), rng.uniform()
    np.testing.assert_allclose(pde.pde_step(jnp.asarray(xi), b), reference_step(xi, b), atol=1e-6)


@settings(deadline=None, max_examples=40)
@given(xi0=profiles, b=boundaries)
def test_profile_stays_in_unit_interval(xi0, b):
    xi = np.asarray(rollout(jnp.asarray(xi0), jnp.asarray(b)))
    assert xi.min() >= -1e-6 and xi.max() <= 1 + 1e-6


@settings(deadline=None, max_examples=20)
@given(lower=profiles, gap=profiles, b=boundaries, b_gap=boundaries)
def test_ordered_profiles_stay_ordered(lower, gap, b, b_gap):
    """The monotone scheme keeps a comparison principle, the reason it stays in [0, 1]."""
    upper, b_upper = np.maximum(lower, np.minimum(lower + gap, 1)), np.maximum(b, b_gap)
    xi_low = rollout(jnp.asarray(lower), jnp.asarray(b))
    xi_high = rollout(jnp.asarray(upper), jnp.asarray(b_upper))
    assert float(jnp.min(xi_high - xi_low)) >= -1e-6


@pytest.mark.parametrize("b", [0.0, 0.2, 0.8, 1.0])
def test_constant_boundary_converges_to_the_steady_state(b):
    # b = ½ is left out: there the PDE is bistable and the limit depends on the initial profile.
    xi0 = jax.random.uniform(jax.random.key(0), (4, pde.N_NODES))
    xi = np.asarray(rollout(xi0, jnp.full((4, 4000), b, xi0.dtype))[:, -1], np.float64)
    assert np.ptp(xi, axis=0).max() < 1e-4  # the same limit from every initial profile
    inner = xi[:, 1:-1]
    residual = (xi[:, :-2] - 2 * inner + xi[:, 2:]) / pde.DZ**2 + pde.reaction(inner)
    assert np.abs(residual).max() < 1e-4  # ξ_zz + ½ξ(1 − ξ)(ξ − ½) = 0
    np.testing.assert_allclose(xi, xi[:, ::-1], atol=1e-5)  # symmetric about L/2
    if b in (0.0, 1.0):  # near 1, float32 Euler increments round away below ~1e-5
        np.testing.assert_allclose(xi, b, atol=1e-4)


def test_simulate_pde_records_and_measurements():
    T = 2000
    traj = pde.simulate_pde(T, jax.random.key(3), 0.3, 0.5)
    xi, b, y = (np.asarray(a) for a in traj)
    assert xi.shape == (T + 1, 51) and b.shape == (T + 1,) and y.shape == (T, 2)
    np.testing.assert_allclose(xi[0], 0.3, rtol=1e-6)
    assert b[0] == 0.5 and b.min() >= 0 and b.max() <= 1 and xi.min() >= 0 and xi.max() <= 1
    np.testing.assert_array_equal(y[:, 0], b[:-1])
    np.testing.assert_array_equal(y[:, 1], xi[:-1, pde.SENSOR_NODE])
    np.testing.assert_array_equal(xi[1:, 0], b[:-1])  # b_t is held over the sample t → t+1
    np.testing.assert_array_equal(xi[1:, -1], b[:-1])
    steps = np.diff(b)[(b[1:] > 0) & (b[1:] < 1)]  # unclipped steps are the raw increments
    assert len(steps) > 500 and abs(steps.std() / pde.BOUNDARY_NOISE - 1) < 0.1


def test_observer_data_are_one_step_pairs_of_the_pde():
    data = pde.observer_dataset(300, jax.random.key(4))
    assert data.xi.shape == data.xi_next.shape == (300, 51) and data.y.shape == (300, 2)
    np.testing.assert_array_equal(data.xi[0], 0)
    assert data.y[0, 0] == 0
    np.testing.assert_array_equal(data.xi[1:], data.xi_next[:-1])
    np.testing.assert_allclose(pde.pde_step(data.xi, data.y[:, 0]), data.xi_next, atol=1e-6)
    np.testing.assert_array_equal(data.y[:, 1], data.xi[:, pde.SENSOR_NODE])
    test = pde.observer_test_trajectory(pde.TEST_STEPS, jax.random.key(5))
    assert test.xi.shape == (2001, 51) and test.y.shape == (2000, 2)
    np.testing.assert_array_equal(test.xi[0], 1)
    assert test.b[0] == 0.5


def test_pde_bad_input():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 51\); got shape \(50,\)"):
        pde.pde_step(jnp.zeros(50), 0.0)
    with pytest.raises(ValueError, match=r"boundary values of shape \(\.\.\., T\); got shape \(\)"):
        pde.pde_rollout(jnp.zeros(51), jnp.zeros(()))
    with pytest.raises(ValueError, match="51 node values; got shape"):
        pde.simulate_pde(10, jax.random.key(0), jnp.zeros(3), 0.0)
    with pytest.raises(ValueError, match=r"b0 must lie in \[0, 1\]; got 1.5"):
        pde.simulate_pde(10, jax.random.key(0), 0.0, 1.5)
    with pytest.raises(ValueError, match="T must be a positive integer"):
        pde.simulate_pde(0, jax.random.key(0), 0.0, 0.0)
