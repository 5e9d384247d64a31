"""1-Lipschitz building blocks: Cayley, strict contractions, Sandwich layers and LBDNs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r2dn import LBDN, LipschitzLinear, SandwichLayer, StrictContraction
from r2dn.networks import ACTIVATIONS
from r2dn.parameterizations._linalg import cayley, strict_contraction

sizes = st.sampled_from([1, 2, 3, 5, 8])
log_scales = st.floats(-3, 3)


@settings(max_examples=25, deadline=None)
@given(p=sizes, q=sizes, log_scale=log_scales, seed=st.integers(0, 2**16))
def test_cayley_columns_are_orthonormal(p, q, log_scale, seed):
    rng = np.random.default_rng(seed)
    X, Yb = (10**log_scale * rng.normal(size=s) for s in ((q, q), (p, q)))
    At, B = cayley(jnp.asarray(X), jnp.asarray(Yb))
    stacked = np.vstack([np.asarray(At), np.asarray(B).T])  # [Aᵀ; Bᵀ], (q + p) × q
    np.testing.assert_allclose(stacked.T @ stacked, np.eye(q), atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(m=sizes, n=sizes, log_scale=st.floats(-3, 1), seed=st.integers(0, 2**16))
def test_strict_contraction_has_norm_below_one(m, n, log_scale, seed):
    model = StrictContraction(m, n, key=jax.random.key(seed), dtype=jnp.float64)
    model = jax.tree.map(lambda a: a * 10**log_scale, model)
    N = np.asarray(model())
    assert N.shape == (m, n)
    assert np.linalg.norm(N, 2) < 1


def test_strict_contraction_gradient_exists_at_zero():
    n = 3
    zero = jnp.zeros((n, n))

    def loss(X):
        return jnp.sum(strict_contraction(X, zero, jnp.zeros((2, n)), 1e-3) ** 2)

    grad = jax.grad(loss)(zero)
    assert np.all(np.isfinite(np.asarray(grad)))


def _adversarial_gain(f, n_in, key, steps=300):
    """Largest ‖f(a) − f(b)‖ / ‖a − b‖ found by gradient ascent over 64 pairs."""
    ka, kd = jax.random.split(key)
    scales = jnp.logspace(-2, 1, 64)[:, None]
    params = (scales * jax.random.normal(ka, (64, n_in)), jax.random.normal(kd, (64, n_in)))

    def gains(params):
        a, d = params
        return jnp.linalg.norm(f(a + d) - f(a), axis=-1) / jnp.linalg.norm(d, axis=-1)

    opt = optax.adam(1e-2)

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            g = jax.grad(lambda p: -jnp.sum(gains(p)))(params)
            updates, state = opt.update(g, state)
            return (optax.apply_updates(params, updates), state), jnp.max(gains(params))

        _, best = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return jnp.max(best)

    return float(run(params))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_lbdn_never_exceeds_gamma_under_adversarial_search(activation):
    gamma = 3.0
    net = LBDN(
        4, (8, 8), 3, gamma=gamma, activation=activation, key=jax.random.key(1), dtype=jnp.float64
    )
    net = jax.tree.map(lambda a: 3.0 * a if eqx.is_inexact_array(a) else a, net)
    gain = _adversarial_gain(net, 4, jax.random.key(2))
    assert gain <= gamma * (1 + 1e-9)
    a, b = 3 * jax.random.normal(jax.random.key(4), (2, 2000, 4), dtype=jnp.float64)
    random_pairs = jnp.linalg.norm(net(a) - net(b), axis=-1) / jnp.linalg.norm(a - b, axis=-1)
    assert gain >= float(random_pairs.max())  # the search improves on random sampling


def test_adversarial_search_attains_the_gain_of_a_linear_lbdn():
    # With the identity activation the network is affine, so its exact gain is ‖W‖.
    net = LBDN(
        3, (5,), 2, gamma=2.0, activation="identity", key=jax.random.key(0), dtype=jnp.float64
    )
    W = jax.jacfwd(net)(jnp.zeros(3, dtype=jnp.float64))  # constant: the network is affine
    exact = np.linalg.norm(np.asarray(W), 2)
    assert exact <= 2.0 + 1e-9
    assert _adversarial_gain(net, 3, jax.random.key(3)) == pytest.approx(exact, rel=1e-3)


def test_lipschitz_linear_has_norm_at_most_one():
    layer = LipschitzLinear(6, 3, key=jax.random.key(0))
    W, _ = layer.explicit()
    assert np.linalg.norm(np.asarray(W), 2) <= 1 + 1e-5


def test_sandwich_layer_is_one_lipschitz_on_random_pairs():
    layer = SandwichLayer(5, 7, "tanh", key=jax.random.key(0))
    a, b = jax.random.normal(jax.random.key(1), (2, 1000, 5)) * 5
    ratio = jnp.linalg.norm(layer(a) - layer(b), axis=-1) / jnp.linalg.norm(a - b, axis=-1)
    assert float(ratio.max()) <= 1 + 1e-5


def test_trainable_gamma_is_a_leaf_and_fixed_gamma_is_not():
    x = jnp.ones((3, 2))
    loss = lambda net: jnp.sum(net(x) ** 2)  # noqa: E731
    trainable = LBDN(2, (4,), 1, gamma=2.0, trainable_gamma=True, key=jax.random.key(0))
    fixed = LBDN(2, (4,), 1, gamma=2.0, key=jax.random.key(0))
    assert float(eqx.filter_grad(loss)(trainable).gain.log_value) != 0.0
    assert isinstance(fixed.gain.log_value, float)
    assert float(trainable.gamma) == pytest.approx(2.0) == float(fixed.gamma)


@pytest.mark.parametrize("gamma", [0.0, -1.0, float("nan"), float("inf")])
def test_lbdn_rejects_invalid_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        LBDN(2, (4,), 1, gamma=gamma, key=jax.random.key(0))


def test_unknown_activation_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="relu"):
        LBDN(2, (4,), 1, activation="gelu", key=jax.random.key(0))
