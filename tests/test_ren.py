"""The REN family: certificates (section 6 with D11 and Λ), the equilibrium layer and its
implicit gradients, the model-level guarantees, and the errors bad input raises.

Models get ``dtype=jnp.float64`` explicitly so that margins of order ``ε`` are resolved.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import random_supply, scale_parameters
from r2dn.certificates import (
    check_lmi,
    contraction_rate,
    dissipation_matrix,
    lipschitz_lower_bound,
    state_trajectory,
    worst_supply,
)
from r2dn.models.ren import REN, ContractingREN, LipschitzREN, PassiveREN, RobustREN
from r2dn.networks import get_activation
from r2dn.networks.equilibrium import EquilibriumLayer, forward_substitution, solve_equilibrium
from r2dn.parameterizations import SupplyRate
from r2dn.simulation import simulate

F64 = jnp.float64
VARIANTS = ("contracting", "lipschitz", "robust", "passive", "strictly_passive")


def make(variant: str, nu: int, nx: int, nv: int, ny: int, *, seed: int = 0, **kwargs) -> REN:
    key = jax.random.key(seed)
    kwargs.setdefault("dtype", F64)
    if variant == "contracting":
        return ContractingREN(nu, nx, nv, ny, key=key, **kwargs)
    if variant == "lipschitz":
        return LipschitzREN(nu, nx, nv, ny, gamma=0.5 + seed % 5, key=key, **kwargs)
    if variant == "robust":
        rate = random_supply(np.random.default_rng(seed), nu, ny)
        return RobustREN(nu, nx, nv, ny, Q=rate.Q, S=rate.S, R=rate.R, key=key, **kwargs)
    rho = 0.0 if variant == "passive" else 0.4  # passive models have ny = nu
    return PassiveREN(nu, nx, nv, nu, nu_index=0.3, rho_index=rho, key=key, **kwargs)


# --- Certificates -------------------------------------------------------------------------


@settings(max_examples=13, deadline=None)
@example(  # the smallest sizes, nu ≠ ny, a fast rate
    variant="robust",
    nu=3,
    nx=1,
    nv=1,
    ny=2,
    alpha_bar=0.5,
    init="long_memory",
    feedthrough="free",
    seed=1,
)
@example(
    variant="passive",
    nu=1,
    nx=1,
    nv=1,
    ny=1,
    alpha_bar=0.9,
    init="random",
    feedthrough="free",
    seed=2,
)
@given(
    variant=st.sampled_from(VARIANTS),
    nu=st.sampled_from([1, 3]),
    nx=st.sampled_from([1, 4]),
    nv=st.sampled_from([1, 5]),
    ny=st.sampled_from([1, 2]),
    alpha_bar=st.sampled_from([1.0, 0.9, 0.5]),
    init=st.sampled_from(["random", "long_memory"]),
    feedthrough=st.sampled_from(["free", "zero"]),
    seed=st.integers(0, 2**16),
)
def test_lmi_holds_for_every_parameter_value(
    variant, nu, nx, nv, ny, alpha_bar, init, feedthrough, seed
):
    if variant == "passive":
        feedthrough = "free"  # a Q = 0 rate needs its free D22
    model = make(
        variant, nu, nx, nv, ny, seed=seed, alpha_bar=alpha_bar, init=init, feedthrough=feedthrough
    )
    # One compilation serves every scale. Strict contractions are scaled by at most 3: their
    # margin shrinks as O(1/s²); with every array also times 100, scaling N's free matrices by
    # 100 leaves a largest eigenvalue of about −1e-11 in a matrix of norm ~1e4, i.e. round-off.
    for s in (1e-2, 0.2, 1.0, 7.0, 1e2):
        report = check_lmi(scale_parameters(model, s, min(s, 3.0)))
        assert report.holds, (s, report)


def test_lmi_check_needs_the_models_d11_and_multiplier():
    model = make("lipschitz", 2, 3, 5, 2, alpha_bar=0.9, seed=1)
    data = model.certificate_data()
    lam, D11 = np.asarray(data.multiplier), np.asarray(data.D11)
    assert lam.shape == (5,) and np.all(lam > 0)
    assert np.array_equal(lam, np.asarray(model.multiplier()))
    assert np.allclose(np.triu(D11), 0) and np.abs(D11).max() > 0.1

    def max_eig(**changes):
        sys, P = model.explicit(), model.certificate()
        extra = {"D11": D11, "multiplier": lam, **changes}
        M = dissipation_matrix(sys, P, alpha_bar=0.9, supply=model.supply, **extra)
        return np.linalg.eigvalsh(M).max()

    assert max_eig() < 0
    # The check is not vacuous: without D11, or with a unit multiplier, it is refuted.
    assert max_eig(D11=np.zeros_like(D11)) > 0
    assert max_eig(multiplier=np.ones_like(lam)) > 0
    # Likewise a faster rate than claimed, for a model whose A starts at ≈ 0.9·I.
    slow = make("lipschitz", 2, 3, 5, 2, alpha_bar=0.9, init="long_memory")
    sys, P, D11, lam = slow.certificate_data()
    M = dissipation_matrix(sys, P, alpha_bar=0.5, supply=slow.supply, D11=D11, multiplier=lam)
    assert np.linalg.eigvalsh(M).max() > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_contraction_rate_is_at_most_alpha_bar(variant):
    model = make(variant, 2, 4, 6, 2, alpha_bar=0.7, activation="tanh", seed=3)
    key_a, key_b, key_u = jax.random.split(jax.random.key(1), 3)
    x_a, x_b = jax.random.normal(key_a, (8, 4), F64), jax.random.normal(key_b, (8, 4), F64)
    u = 3.0 * jax.random.normal(key_u, (8, 40, 2), F64)
    assert contraction_rate(model, x_a, x_b, u) <= 0.7 + 1e-9


def test_adversarial_gain_stays_below_gamma_also_after_training():
    gamma = 1.5
    model = LipschitzREN(
        2, 3, 6, 2, gamma=gamma, activation="relu", dtype=F64, key=jax.random.key(0)
    )
    key_a, key_d = jax.random.split(jax.random.key(1))
    u_a = jax.random.normal(key_a, (8, 16, 2), F64)
    u_b = u_a + 0.1 * jax.random.normal(key_d, (8, 16, 2), F64)

    @eqx.filter_jit
    def gain(model):
        sys = model.explicit()
        x0 = model.initial_state(8)
        dy = simulate(sys, x0, u_a)[1] - simulate(sys, x0, u_b)[1]
        return jnp.sqrt(jnp.sum(dy**2) / jnp.sum((u_a - u_b) ** 2))

    opt = optax.adam(0.05)

    @eqx.filter_jit
    def train_step(model, state):
        grads = eqx.filter_grad(lambda m: -gain(m))(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), state

    trained, state = model, opt.init(eqx.filter(model, eqx.is_inexact_array))
    for _ in range(30):
        trained, state = train_step(trained, state)
    assert gain(trained) > 1.5 * gain(model)  # training did push the gain up
    for m in (model, trained):
        bound = lipschitz_lower_bound(m, horizon=12, batch=8, steps=40, key=jax.random.key(2))
        assert bound <= gamma
        assert check_lmi(m).holds


@pytest.mark.parametrize(("nu_index", "rho_index"), [(0.0, 0.0), (0.3, 0.0), (0.2, 0.8)])
def test_passivity_inequality_on_random_pairs(nu_index, rho_index):
    model = PassiveREN(
        2, 3, 5, 2, nu_index=nu_index, rho_index=rho_index, dtype=F64, key=jax.random.key(4)
    )
    k1, k2 = jax.random.split(jax.random.key(5))
    amplitude = jnp.logspace(-2, 1, 16, dtype=F64)[:, None, None]
    u_a = amplitude * jax.random.normal(k1, (16, 30, 2), F64)
    u_b = u_a + jnp.flip(amplitude, 0) * jax.random.normal(k2, (16, 30, 2), F64)
    sys = model.explicit()
    x0 = model.initial_state(16)
    dy = simulate(sys, x0, u_b)[1] - simulate(sys, x0, u_a)[1]
    du = u_b - u_a
    supply = jnp.sum(dy * du - nu_index * du**2 - rho_index * dy**2, axis=(-1, -2))
    assert jnp.all(supply >= -1e-10 * jnp.sum(du**2, axis=(-1, -2)))
    # The model's supply rate (Q = −ρI, S = ½I, R = −νI) is exactly this inequality.
    assert jnp.allclose(jnp.sum(model.supply(dy, du), axis=-1), supply)


def test_passivity_search_finds_no_violation():
    model = PassiveREN(2, 3, 5, 2, nu_index=0.3, dtype=F64, key=jax.random.key(4))
    assert worst_supply(model, horizon=12, batch=8, steps=40, key=jax.random.key(6)) <= 1e-10


# --- The equilibrium layer ----------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(
    nv=st.integers(1, 40),
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "softplus", "leaky_relu", "elu"]),
    scale=st.floats(0.0, 2.0),
    seed=st.integers(0, 2**16),
)
def test_equilibrium_satisfies_its_equation(nv, activation, scale, seed):
    rng = np.random.default_rng(seed)
    D11 = jnp.asarray(scale * rng.normal(size=(nv, nv)) / np.sqrt(nv))
    b = jnp.asarray(3.0 * rng.normal(size=(2, 3, nv)))
    layer = EquilibriumLayer(D11, activation)
    w = layer(b)
    residual = w - get_activation(activation)(w @ layer.D11.T + b)
    assert w.shape == b.shape and w.dtype == F64
    assert jnp.max(jnp.abs(residual)) <= 1e-10 * (1 + jnp.max(jnp.abs(w)))
    assert jnp.array_equal(layer.D11, jnp.tril(D11, -1))


def _problem(nv: int, seed: int):
    rng = np.random.default_rng(seed)
    D11 = jnp.asarray(np.tril(rng.normal(size=(nv, nv)) / np.sqrt(nv), -1))
    b, weights = jnp.asarray(rng.normal(size=(4, nv))), jnp.asarray(rng.normal(size=(4, nv)))
    return D11, b, weights


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "elu"])
def test_implicit_gradient_matches_finite_differences(activation):
    D11, b, weights = _problem(6, seed=1)

    def f(D11, b):
        return jnp.sum(weights * jnp.sin(solve_equilibrium(activation, D11, b)))

    grad_D11, grad_b = jax.grad(f, argnums=(0, 1))(D11, b)
    rng = np.random.default_rng(2)
    dD, db = (
        jnp.asarray(np.tril(rng.normal(size=D11.shape), -1)),
        jnp.asarray(rng.normal(size=b.shape)),
    )
    h = 1e-6
    fd = (f(D11 + h * dD, b + h * db) - f(D11 - h * dD, b - h * db)) / (2 * h)
    analytic = jnp.sum(grad_D11 * dD) + jnp.sum(grad_b * db)
    assert jnp.abs(fd - analytic) <= 1e-7 * (1 + jnp.abs(fd))


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
def test_implicit_gradient_matches_differentiating_the_loop(activation):
    D11, b, weights = _problem(9, seed=3)

    def loss(solve):
        return lambda D11, b: jnp.sum(weights * solve(activation, D11, b) ** 2)

    implicit = jax.jit(jax.grad(loss(solve_equilibrium), argnums=(0, 1)))(D11, b)
    unrolled = jax.grad(loss(forward_substitution), argnums=(0, 1))(D11, b)
    for a, b_ in zip(implicit, unrolled, strict=True):
        assert jnp.allclose(a, b_, rtol=1e-10, atol=1e-12)


class LoopLayer(eqx.Module):
    """The equilibrium layer without the implicit gradient: autodiff runs through the loop."""

    D11: jax.Array
    activation: str = eqx.field(static=True)

    def __call__(self, b):
        return forward_substitution(self.activation, self.D11, b)


def test_model_gradients_through_simulate_match_the_loop():
    model = make("lipschitz", 2, 3, 6, 2, activation="tanh")  # D11, B1, C1 all nonzero
    u = jax.random.normal(jax.random.key(7), (5, 12, 2), F64)

    def loss(model, plain):
        sys = model.explicit()
        if plain:
            sys = eqx.tree_at(lambda s: s.phi, sys, LoopLayer(sys.phi.D11, sys.phi.activation))
        x_T, y = simulate(sys, model.initial_state(5), u)
        return jnp.sum(y**2) + jnp.sum(x_T**2)

    implicit = eqx.filter_jit(eqx.filter_grad(loss))(model, False)
    unrolled = eqx.filter_jit(eqx.filter_grad(loss))(model, True)
    for a, b in zip(jax.tree.leaves(implicit), jax.tree.leaves(unrolled), strict=True):
        assert jnp.allclose(a, b, rtol=1e-8, atol=1e-10)


def test_equilibrium_layer_under_vmap():
    D11, b, weights = _problem(5, seed=4)
    layer = EquilibriumLayer(D11, "tanh")
    assert jnp.allclose(jax.vmap(layer)(b), layer(b), rtol=1e-14, atol=1e-14)

    def loss(layer, b, weights):
        return jnp.sum(weights * layer(b))

    per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(layer, b, weights)
    total = jax.grad(loss)(layer, b, weights)
    assert jnp.allclose(jnp.sum(per_example.D11, axis=0), total.D11, rtol=1e-12, atol=1e-14)


# --- Construction options -----------------------------------------------------------------


def test_long_memory_starts_slow_and_keeps_io_couplings():
    for variant in ("contracting", "lipschitz", "passive"):
        model = make(variant, 2, 5, 4, 2, alpha_bar=0.95, init="long_memory")
        sys = model.explicit()
        eig = np.abs(np.linalg.eigvals(np.asarray(sys.A)))
        assert np.all(eig <= 0.95) and np.all(eig >= 0.95 * 0.94), eig
        assert np.abs(np.asarray(sys.B2)).max() > 0 and np.abs(np.asarray(sys.C2)).max() > 0
        assert np.allclose(np.asarray(sys.B1), 0) and np.allclose(np.asarray(sys.C1), 0)


@pytest.mark.parametrize("variant", ["contracting", "lipschitz"])
def test_identity_output_returns_the_state(variant):
    model = make(variant, 2, 3, 4, 3, identity_output=True)
    u = jax.random.normal(jax.random.key(8), (2, 10, 2), F64)
    x0 = jnp.ones((2, 3), F64)
    _, y = model.simulate(x0, u)
    xs = state_trajectory(model.explicit(), x0, u)
    assert jnp.allclose(y, xs[..., :-1, :], atol=1e-12)
    assert check_lmi(model).holds


def test_float32_default_and_float64():
    model32 = ContractingREN(2, 3, 4, 1, key=jax.random.key(0))
    model64 = ContractingREN(2, 3, 4, 1, dtype=F64, key=jax.random.key(0))
    assert model32.dtype == jnp.float32 and model64.dtype == F64
    u = jnp.ones((7, 2), jnp.float32)
    assert model32.simulate(model32.initial_state(), u)[1].dtype == jnp.float32
    assert model64.simulate(model64.initial_state(), u.astype(F64))[1].dtype == F64
    assert check_lmi(model32).holds


def test_parameter_count_of_the_f16_ren():
    model = jax.eval_shape(lambda: ContractingREN(2, 75, 150, 3, key=jax.random.key(0)))
    count = sum(a.size for a in jax.tree.leaves(model) if jnp.issubdtype(a.dtype, jnp.floating))
    # X (300²) + Y (75²) + B̃2, D̃12, C2, D21, D22, biases and p; the paper reports ≈97.0k.
    assert count == 300**2 + 75**2 + 75 * 2 + 150 * 2 + 3 * 75 + 3 * 150 + 3 * 2 + 75 + 150 + 3 + 1


# --- Bad input ----------------------------------------------------------------------------

KEY = jax.random.key(0)
BAD_INPUT = {
    "zero size": (lambda: ContractingREN(2, 0, 3, 1, key=KEY), ValueError, "nx"),
    "float size": (lambda: ContractingREN(2, 3, 2.5, 1, key=KEY), ValueError, "nv"),
    "gamma <= 0": (lambda: LipschitzREN(1, 2, 3, 1, gamma=0.0, key=KEY), ValueError, "gamma"),
    "Q not negative": (
        lambda: RobustREN(1, 2, 3, 1, Q=[[1.0]], S=[[0.0]], R=[[1.0]], key=KEY),
        ValueError,
        "negative definite",
    ),
    "R hat not positive": (
        lambda: RobustREN(1, 2, 3, 1, Q=[[-1.0]], S=[[0.0]], R=[[-1.0]], key=KEY),
        ValueError,
        "R − S Q⁻¹ Sᵀ",
    ),
    "QSR wrong size": (
        lambda: RobustREN(1, 2, 3, 1, Q=[[-1.0]], S=np.zeros((2, 1)), R=[[1.0]], key=KEY),
        ValueError,
        "S must be nu×ny",
    ),
    "Q = 0, S singular": (
        lambda: RobustREN(2, 2, 3, 2, Q=np.zeros((2, 2)), S=np.ones((2, 2)), R=np.eye(2), key=KEY),
        ValueError,
        "invertible",
    ),
    "rho nu >= 1/4": (
        lambda: PassiveREN(1, 2, 3, 1, nu_index=0.5, rho_index=0.5, key=KEY),
        ValueError,
        "rho_index·nu_index < 1/4",
    ),
    "negative passivity index": (
        lambda: PassiveREN(1, 2, 3, 1, nu_index=-0.1, key=KEY),
        ValueError,
        "nu_index",
    ),
    "passive nu != ny": (lambda: PassiveREN(2, 2, 3, 1, key=KEY), ValueError, "nu=2, ny=1"),
    "passive without D22": (
        lambda: PassiveREN(1, 2, 3, 1, feedthrough="zero", key=KEY),
        ValueError,
        "feedthrough='free'",
    ),
    "alpha_bar > 1": (lambda: ContractingREN(1, 2, 3, 1, alpha_bar=1.5, key=KEY), ValueError, "ᾱ"),
    "alpha_bar = 0": (lambda: ContractingREN(1, 2, 3, 1, alpha_bar=0.0, key=KEY), ValueError, "ᾱ"),
    "unknown activation": (
        lambda: ContractingREN(1, 2, 3, 1, activation="gelu", key=KEY),
        ValueError,
        "activation",
    ),
    "unknown init": (lambda: ContractingREN(1, 2, 3, 1, init="zeros", key=KEY), ValueError, "init"),
    "unknown feedthrough": (
        lambda: ContractingREN(1, 2, 3, 1, feedthrough="some", key=KEY),
        ValueError,
        "feedthrough",
    ),
    "identity output ny != nx": (
        lambda: ContractingREN(1, 2, 3, 1, identity_output=True, key=KEY),
        ValueError,
        "ny == nx",
    ),
    "identity output with S != 0": (
        lambda: RobustREN(
            2, 2, 3, 2, Q=-np.eye(2), S=0.1 * np.eye(2), R=np.eye(2), identity_output=True, key=KEY
        ),
        ValueError,
        "S = 0",
    ),
    "eps <= 0": (lambda: ContractingREN(1, 2, 3, 1, eps=0.0, key=KEY), ValueError, "eps"),
    "integer dtype": (
        lambda: ContractingREN(1, 2, 3, 1, dtype=jnp.int32, key=KEY),
        TypeError,
        "dtype",
    ),
    "supply not a SupplyRate": (
        lambda: REN(1, 2, 3, 1, supply=(-1.0, 0.0, 1.0), key=KEY),
        TypeError,
        "SupplyRate",
    ),
    "supply of other size": (
        lambda: REN(2, 2, 3, 1, supply=SupplyRate.lipschitz(1.0, 1, 1), key=KEY),
        ValueError,
        "nu=2",
    ),
    "wrong input size": (
        lambda: ContractingREN(2, 2, 3, 1, key=KEY).simulate(jnp.zeros(2), jnp.ones((5, 3))),
        ValueError,
        "nu=2",
    ),
    "non-square D11": (lambda: EquilibriumLayer(jnp.ones((2, 3))), ValueError, "square"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_raises_a_clear_error(case):
    build, error, message = BAD_INPUT[case]
    with pytest.raises(error, match=message):
        build()


def test_r2dn_rejects_a_passivity_rate_without_unit_gain():
    from r2dn.models import RobustR2DN

    with pytest.raises(ValueError, match="Q = 0"):
        RobustR2DN(2, 2, 3, 2, Q=np.zeros((2, 2)), S=np.eye(2), R=np.eye(2), key=KEY)
