"""Tests of the experiments' simulators and closed loops (`r2dn.examples`).

Reference values are computed here independently, in float64 numpy: a matrix form of the PDE
scheme, the plant's impulse response from its difference equation, the target from `math`.
"""

import math

import equinox as eqx
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import r2dn
from r2dn.examples import pde, scaling, youla

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


# ---------------------------------------------------------------- Youla feedback loop

A1, A2 = 1.6 * math.cos(0.2 * math.pi), 0.64
run_loop = eqx.filter_jit(youla.closed_loop)
simulate = eqx.filter_jit(lambda model, x0, u: model.simulate(x0, u))


def impulse_response(n: int) -> np.ndarray:
    """h_t of T(z) = 0.3 / (z² − a1 z + a2), from h_t = a1 h_{t−1} − a2 h_{t−2} + 0.3 δ_{t−2}."""
    h = np.zeros(n)
    for t in range(2, n):
        h[t] = A1 * h[t - 1] - A2 * h[t - 2] + 0.3 * (t == 2)
    return h


def convolve(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(h * x)_t over the time axis of x (batch, T, 1), from zero initial state."""
    T = x.shape[1]
    return np.stack([np.convolve(h, xb[:, 0])[:T] for xb in x])[..., None]


def random_parameters(model, key, scale: float):
    """``model`` with every free array replaced by ``scale``·N(0, 1) entries."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [
        scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)
    ]
    return eqx.combine(jax.tree.unflatten(tree, leaves), static)


def policy(key, scale: float | None = None, alpha_bar: float = 1.0):
    model = r2dn.ContractingR2DN(
        1, 4, 8, 1, (16, 16), alpha_bar=alpha_bar, activation="tanh", key=key
    )
    return model if scale is None else random_parameters(model, jax.random.fold_in(key, 1), scale)


def test_plant_is_the_papers_stable_transfer_function():
    A, B, C = (np.asarray(m, np.float64) for m in youla.plant())
    poles = np.linalg.eigvals(A)
    expected = np.roots([1, -A1, A2])
    np.testing.assert_allclose(np.sort_complex(poles), np.sort_complex(expected), rtol=1e-6)
    assert np.all(np.abs(poles) < 1)
    for z in (1.0, -1.0, np.exp(0.7j), 0.5 + 2j):
        response = (C @ np.linalg.solve(z * np.eye(2) - A, B))[0, 0]
        np.testing.assert_allclose(response, 0.3 / (z**2 - A1 * z + A2), rtol=1e-5)


@pytest.mark.parametrize("scale", [None, 1.0])  # unsaturated, then saturated half the time
def test_loop_is_the_transfer_matrix_with_a_clipped_policy(scale):
    key = jax.random.key(7)
    Q = policy(key, scale)
    w = youla.disturbances(jax.random.fold_in(key, 2), 3, 150, hold=20)
    q0 = jax.random.normal(jax.random.fold_in(key, 3), (3, Q.nx))
    zeros = jnp.zeros((3, 2))
    _, z, u = run_loop(Q, w, youla.LoopState(zeros, zeros, q0))
    h, w, u = impulse_response(150), np.asarray(w, np.float64), np.asarray(u, np.float64)
    np.testing.assert_allclose(z, convolve(h, w + u), atol=1e-4)  # z = T w + T ũ
    _, q_out = simulate(Q, q0, jnp.asarray(-convolve(h, w), Q.dtype))  # ỹ = −T w
    np.testing.assert_allclose(u, np.clip(q_out, -youla.U_MAX, youla.U_MAX), atol=1e-4)
    assert np.abs(u).max() <= youla.U_MAX and np.ptp(u) > 0
    expected_cost = np.mean(np.abs(np.asarray(z))) + 1e-4 * np.mean(u**2)
    np.testing.assert_allclose(youla.cost(z, u), expected_cost, rtol=1e-5)


@pytest.mark.parametrize(("seed", "scale"), [(0, 10.0), (1, 30.0), (2, 100.0)])
def test_loop_with_any_contracting_policy_is_bounded_and_contracting(seed, scale):
    key = jax.random.key(seed)
    # ᾱ = 0.9 so that the certified rate is visible within the horizon; with ᾱ = 1 the rate is
    # only the ε margin, which large parameters push arbitrarily close to 1.
    Q = policy(key, scale, alpha_bar=0.9)
    w = youla.disturbances(jax.random.fold_in(key, 2), 8, 400)
    keys = jax.random.split(jax.random.fold_in(key, 3), 3)
    start = youla.initial_loop_state(Q, 8)
    state_a = start._replace(policy=scale * jax.random.normal(keys[0], start.policy.shape))
    state_b = youla.LoopState(
        *(scale * jax.random.normal(k, s.shape) for k, s in zip(keys, start, strict=True))
    )
    end_a, z_a, u_a = run_loop(Q, w, state_a)
    end_b, z_b, u_b = run_loop(Q, w, state_b)
    # From a zero plant state, |z| ≤ ‖T‖_ℓ1 (max |w| + U_MAX), whatever the policy's state.
    bound = np.abs(impulse_response(1000)).sum() * (float(jnp.abs(w).max()) + youla.U_MAX)
    assert float(jnp.abs(z_a).max()) <= bound * (1 + 1e-5)
    assert float(jnp.abs(u_a).max()) <= youla.U_MAX
    # Different initial states: the loop forgets them.
    assert float(jnp.abs(z_a - z_b)[:, 0].max()) > 1
    assert float(jnp.abs(z_a - z_b)[:, -50:].max()) < 1e-4
    assert float(jnp.abs(u_a - u_b)[:, -50:].max()) < 1e-4
    for a, b in zip(end_a, end_b, strict=True):
        assert float(jnp.abs(a - b).max()) < 1e-4 * (1 + float(jnp.abs(a).max()))


def test_cost_is_differentiable_in_the_policy_parameters():
    Q = policy(jax.random.key(11))
    w = youla.disturbances(jax.random.key(12), 4, 100, hold=25)

    def loss(Q):
        _, z, u = youla.closed_loop(Q, w)
        return youla.cost(z, u)

    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(loss))(Q)
    leaves = jax.tree.leaves(grads)
    assert np.isfinite(float(value)) and all(bool(jnp.isfinite(g).all()) for g in leaves)
    assert all(float(jnp.abs(g).max()) > 0 for g in leaves)  # it reaches every parameter
    # The slope along the gradient matches a central difference (|z| has kinks: small steps).
    norm = math.sqrt(sum(float(jnp.sum(g**2)) for g in leaves))
    shifted = [
        eqx.apply_updates(Q, jax.tree.map(lambda g, e=e: e * g / norm, grads))
        for e in (1e-5, -1e-5)
    ]
    loss = eqx.filter_jit(loss)
    slope = (float(loss(shifted[0])) - float(loss(shifted[1]))) / 2e-5
    np.testing.assert_allclose(slope, norm, rtol=5e-3)


def test_disturbances_are_held_uniform_levels():
    w = np.asarray(youla.disturbances(jax.random.key(0), 64, 230, hold=50, amplitude=10.0))
    assert w.shape == (64, 230, 1)
    levels = w[:, ::50, 0]
    assert levels.shape == (64, 5)
    np.testing.assert_array_equal(w[..., 0], np.repeat(levels, 50, axis=1)[:, :230])
    assert np.abs(levels).max() <= 10 and levels.min() < -9 and levels.max() > 9
    assert abs(levels.mean()) < 1.5 and len(np.unique(levels)) == levels.size


def test_youla_bad_input():
    with pytest.raises(ValueError, match="needs nu = ny = 1; got nu=2, ny=1"):
        youla.closed_loop(
            r2dn.ContractingR2DN(2, 4, 8, 1, (16, 16), key=jax.random.key(0)), jnp.ones((5, 1))
        )
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, 1\); got shape \(5,\)"):
        youla.closed_loop(policy(jax.random.key(0)), jnp.ones(5))
    with pytest.raises(ValueError, match="hold must be a positive integer"):
        youla.disturbances(jax.random.key(0), 2, 10, hold=0)


# ---------------------------------------------------------------- scalability target


def reference_target(x: float, u: float) -> float:
    s = x + u
    return (
        0.2 * math.sin(x)
        + 0.05 * math.cos(2 * s)
        + 0.05 * math.sin(3 * s)
        + 0.075 * math.sin(4 * s) * math.atan(0.1 * s * s)
        + 0.05 * x
        + u
    )


def test_target_matches_hand_computed_values():
    points = [(0.0, 0.0), (1.0, 0.5), (-30.0, 1.0), (12.3, -0.7), (29.9, -1.0)]
    x, u = (jnp.array(v, jnp.float32) for v in zip(*points, strict=True))
    expected = [reference_target(*p) for p in points]
    np.testing.assert_allclose(scaling.target(x, u), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reference_target(0.0, 0.0), 0.05)  # only cos 2s survives


def test_training_samples_and_validation_grid():
    data = scaling.sample(jax.random.key(0), 4096)
    assert all(a.shape == (4096, 1) for a in data)
    assert -30 <= data.x.min() < -29 and 29 < data.x.max() <= 30
    assert -1 <= data.u.min() < -0.99 and 0.99 < data.u.max() <= 1
    np.testing.assert_array_equal(data.x_next, scaling.target(data.x, data.u))
    grid = scaling.validation_grid()
    assert all(a.shape == (2048, 1) for a in grid)
    np.testing.assert_allclose(np.diff(grid.x[:, 0]), 60 / 2047, rtol=1e-4)
    np.testing.assert_array_equal(grid.u, 1)
    np.testing.assert_array_equal(grid.x_next, scaling.target(grid.x, grid.u))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        scaling.sample(jax.random.key(0), 0)
