"""R2DN models: certificates over random sizes and scales, behaviour, options and bad input."""

from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_supply, scale_parameters
from r2dn import R2DN, ContractingR2DN, LipschitzR2DN, RobustR2DN, SupplyRate
from r2dn.certificates import check_lmi, contraction_rate
from r2dn.models.lti import LTI_PARTS, AbstractLTI, DenseLTI

# Few distinct sizes keep XLA's per-shape compilation cache warm; every combination is still
# exercised, including nv = 1, nx = 1 and nu ≠ ny.
small = st.sampled_from([1, 2, 3, 5])
hidden = st.lists(st.sampled_from([1, 4, 7]), max_size=2).map(tuple)
VARIANTS = ("contracting", "lipschitz", "lipschitz-free", "robust", "robust-free")


def build(variant: str, nu, nx, nv, ny, hidden, *, seed: int, **kwargs) -> R2DN:
    key = jax.random.key(seed)
    kwargs.setdefault("dtype", jnp.float64)
    feedthrough = "free" if variant.endswith("-free") else "zero"
    if variant == "contracting":
        return ContractingR2DN(nu, nx, nv, ny, hidden, key=key, **kwargs)
    if variant.startswith("lipschitz"):
        gamma = 10 ** np.random.default_rng(seed).uniform(-1, 1)
        return LipschitzR2DN(
            nu, nx, nv, ny, hidden, gamma=gamma, feedthrough=feedthrough, key=key, **kwargs
        )
    supply = random_supply(np.random.default_rng(seed), nu, ny)
    return R2DN(nu, nx, nv, ny, hidden, supply=supply, feedthrough=feedthrough, key=key, **kwargs)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=10, deadline=None)
@given(
    sizes=st.tuples(small, small, small, small),
    hidden=hidden,
    log_scale=st.floats(-3, 3),
    log_contraction_scale=st.floats(-3, np.log10(3)),
    alpha_bar=st.sampled_from([1.0, 0.95, 0.6]),
    init=st.sampled_from(["random", "long_memory"]),
    seed=st.integers(0, 2**16),
)
def test_certificate_lmi_holds_for_random_parameters(
    variant, sizes, hidden, log_scale, log_contraction_scale, alpha_bar, init, seed
):
    model = build(variant, *sizes, hidden, seed=seed, alpha_bar=alpha_bar, init=init)
    model = scale_parameters(model, 10**log_scale, 10**log_contraction_scale)
    report = check_lmi(model)
    assert report.holds, report


@pytest.mark.parametrize("variant", VARIANTS)
def test_certificate_holds_at_paper_size(variant):
    model = build(variant, 2, 30, 20, 3, (24, 24), seed=0, init="long_memory")
    assert check_lmi(model).holds


def test_the_lmi_check_can_fail():
    # A model whose explicit matrices are perturbed is no longer certified by its P.
    model = build("lipschitz", 2, 4, 3, 2, (5,), seed=0)

    class Perturbed(eqx.Module):
        inner: R2DN
        supply = property(lambda self: self.inner.supply)
        alpha_bar = property(lambda self: self.inner.alpha_bar)

        def certificate_data(self):
            data = self.inner.certificate_data()
            sys = data.system
            return data._replace(system=eqx.tree_at(lambda s: s.A, sys, 3.0 * sys.A + jnp.eye(4)))

    assert check_lmi(model).holds
    assert not check_lmi(Perturbed(model)).holds


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("alpha_bar", [1.0, 0.8])
def test_trajectories_contract_at_rate_alpha_bar(variant, alpha_bar):
    model = build(variant, 2, 6, 4, 2, (8,), seed=3, alpha_bar=alpha_bar)
    model = scale_parameters(model, 5.0, 1.0)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x0_a = 10 * jax.random.normal(k1, (8, 6))
    x0_b = 10 * jax.random.normal(k2, (8, 6))
    u = 5 * jax.random.normal(k3, (8, 40, 2))
    assert contraction_rate(model, x0_a, x0_b, u) <= alpha_bar + 1e-9


def test_simulate_matches_repeated_steps_and_broadcasts_batches():
    model = build("robust-free", 2, 5, 3, 2, (4,), seed=1)
    u = jax.random.normal(jax.random.key(0), (3, 4, 10, 2))
    x0 = jax.random.normal(jax.random.key(1), (4, 5))  # broadcasts against (3, 4)
    x_T, y = model.simulate(x0, u)
    assert x_T.shape == (3, 4, 5) and y.shape == (3, 4, 10, 2)
    x = jnp.broadcast_to(x0, (3, 4, 5))
    for t in range(10):
        x, y_t = model.step(x, u[..., t, :])
        np.testing.assert_allclose(y[..., t, :], y_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_T, x, rtol=1e-12, atol=1e-12)


def test_works_under_jit_grad_and_vmap_in_float32():
    model = build("lipschitz", 2, 5, 3, 1, (6,), seed=0, dtype=jnp.float32, init="long_memory")
    u = jnp.ones((7, 2), dtype=jnp.float32)

    @eqx.filter_jit
    def loss(model, u):
        _, y = model.simulate(model.initial_state(), u)
        return jnp.mean(y**2)

    value, grads = eqx.filter_value_and_grad(loss)(model, u)
    assert value.dtype == jnp.float32
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf)) for leaf in leaves)
    batched = jax.vmap(lambda u: loss(model, u))(jnp.stack([u, 2 * u]))
    assert batched.shape == (2,)


@pytest.mark.parametrize("variant", ["contracting", "lipschitz", "robust"])
def test_long_memory_starts_slow_and_stable_with_gradients_everywhere(variant):
    alpha_bar = 0.98
    model = build(variant, 2, 6, 4, 2, (8,), seed=0, init="long_memory", alpha_bar=alpha_bar)
    eigs = np.abs(np.linalg.eigvals(np.asarray(model.explicit().A)))
    assert np.all(eigs <= alpha_bar) and np.all(eigs >= 0.94 * alpha_bar)

    u = jax.random.normal(jax.random.key(0), (3, 20, 2))
    y_target = jax.random.normal(jax.random.key(1), (3, 20, 2))

    def loss(model):
        return jnp.mean((model.simulate(model.initial_state(3), u)[1] - y_target) ** 2)

    grads = eqx.filter_grad(loss)(model)
    # No saddle: the input and output maps and the feedback loop all receive gradient.
    for name, grad in dict(B2=grads.B2, C1=grads.C1, B1=grads.B1, C2=grads.io.C2).items():
        assert float(jnp.abs(grad).max()) > 0, name


@pytest.mark.parametrize("variant", ["contracting", "lipschitz"])
def test_identity_output_returns_the_state(variant):
    model = build(variant, 2, 4, 3, 4, (5,), seed=0, identity_output=True)
    u = jax.random.normal(jax.random.key(0), (6, 2))
    x0 = jnp.arange(4.0)
    _, y = model.simulate(x0, u)
    x = x0
    for t in range(6):
        np.testing.assert_allclose(y[t], x, atol=1e-12)
        x, _ = model.step(x, u[t])
    assert check_lmi(model).holds


def test_float32_is_the_default():
    model = ContractingR2DN(1, 2, 2, 1, key=jax.random.key(0))
    assert model.dtype == jnp.float32
    _, y = model.simulate(model.initial_state(), jnp.ones((3, 1), jnp.float32))
    assert y.dtype == jnp.float32


def test_parameter_count_matches_the_paper_f16_model():
    model = ContractingR2DN(2, 75, 75, 3, (87, 87, 87), key=jax.random.key(0))
    count = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    assert abs(count - 97_500) / 97_500 < 0.02, count


KEY = jax.random.key(0)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ContractingR2DN(0, 2, 2, 1, key=KEY), "nu must be a positive integer"),
        (lambda: ContractingR2DN(1, 2.5, 2, 1, key=KEY), "nx must be a positive integer"),
        (lambda: LipschitzR2DN(1, 2, 2, 1, gamma=0.0, key=KEY), "gamma must be a positive"),
        (lambda: LipschitzR2DN(1, 2, 2, 1, gamma=-2, key=KEY), "gamma must be a positive"),
        (lambda: ContractingR2DN(1, 2, 2, 1, alpha_bar=0.0, key=KEY), r"alpha_bar .* \(0, 1\]"),
        (lambda: ContractingR2DN(1, 2, 2, 1, alpha_bar=1.5, key=KEY), r"alpha_bar .* \(0, 1\]"),
        (lambda: ContractingR2DN(1, 2, 2, 1, init="zeros", key=KEY), "Unknown init"),
        (lambda: ContractingR2DN(1, 2, 2, 1, activation="gelu", key=KEY), "Unknown activation"),
        (
            lambda: ContractingR2DN(1, 2, 2, 3, identity_output=True, key=KEY),
            "identity_output .* ny == nx",
        ),
        (
            lambda: LipschitzR2DN(1, 2, 2, 1, gamma=1, feedthrough="big", key=KEY),
            "feedthrough must be",
        ),
        (
            lambda: RobustR2DN(1, 2, 2, 1, Q=[[1.0]], S=[[0.0]], R=[[1.0]], key=KEY),
            "Q must be negative definite",
        ),
        (
            lambda: RobustR2DN(1, 2, 2, 1, Q=[[-1.0]], S=[[1.0]], R=[[-2.0]], key=KEY),
            r"R − S Q⁻¹ Sᵀ must be positive definite",
        ),
        (
            lambda: RobustR2DN(2, 2, 2, 1, Q=[[-1.0]], S=[[0.0, 0.0]], R=np.eye(2), key=KEY),
            "S must be nu×ny = 2×1",
        ),
        (
            lambda: RobustR2DN(2, 2, 2, 1, Q=-np.eye(2), S=np.zeros((2, 2)), R=np.eye(2), key=KEY),
            "supply rate is for nu=2, ny=2",
        ),
        (
            lambda: RobustR2DN(1, 2, 2, 1, Q=[[-1.0, 0], [1, -1]], S=[[0, 0]], R=[[1]], key=KEY),
            "Q must be symmetric",
        ),
        (
            lambda: R2DN(1, 2, 2, 1, supply="lipschitz", key=KEY),
            "supply must be a SupplyRate",
        ),
        (
            lambda: ContractingR2DN(1, 2, 2, 1, lti="banded", key=KEY),
            r"Unknown lti 'banded'; choose one of \['dense', 'dplr'\]",
        ),
        (
            lambda: R2DN(2, 2, 2, 2, supply=SupplyRate.passive(2), key=KEY),
            r"Q = 0 \(passivity\), which has no unit-gain form; use a REN",
        ),
    ],
)
def test_bad_construction_is_rejected_with_a_clear_message(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize(
    ("x0_shape", "u_shape", "match"),
    [
        ((3,), (10, 2), r"u of shape \(\.\.\., T, nu\) with nu=1"),
        ((3,), (10,), r"u of shape \(\.\.\., T, nu\)"),
        ((2,), (10, 1), r"state of shape \(\.\.\., nx\) with nx=3"),
        ((4, 3), (5, 10, 1), "do not broadcast"),
    ],
)
def test_bad_simulation_input_is_rejected(x0_shape, u_shape, match):
    model = ContractingR2DN(1, 3, 2, 1, key=KEY)
    with pytest.raises(ValueError, match=match):
        model.simulate(jnp.zeros(x0_shape), jnp.zeros(u_shape))


def test_supply_rate_is_static_data_not_a_parameter():
    model = LipschitzR2DN(1, 2, 2, 1, gamma=2.0, key=KEY)
    leaves = jax.tree.leaves(model)
    assert not any(isinstance(x, SupplyRate) for x in leaves)
    assert model.supply == SupplyRate.lipschitz(2.0, 1, 1)


@final
class CountingLTI(AbstractLTI):
    """A new LTI part as a user would add one: here the dense math, behind the interface."""

    dense: DenseLTI

    def __init__(self, nx, *, key, dtype):
        self.dense = DenseLTI(nx, key=key, dtype=dtype)

    def core(self, couplings, **margins):  # alpha_bar, eps, margin_rule
        return self.dense.core(couplings, **margins)

    def long_memory(self, couplings_at, *, key, **margins):
        dense, s = self.dense.long_memory(couplings_at, key=key, **margins)
        return eqx.tree_at(lambda m: m.dense, self, dense), s


@pytest.mark.parametrize("init", ["random", "long_memory"])
def test_a_new_lti_part_is_one_class_and_one_registration(monkeypatch, init):
    monkeypatch.setitem(LTI_PARTS, "counting", CountingLTI)
    model = LipschitzR2DN(2, 3, 2, 2, (4,), gamma=2.0, lti="counting", init=init, key=KEY)
    assert isinstance(model.lti, CountingLTI) and check_lmi(model).holds
    if init == "long_memory":  # the part's own start: A ≈ ᾱI
        assert np.all(np.abs(np.linalg.eigvals(np.asarray(model.explicit().A))) >= 0.9)
    x_T, y = model.simulate(model.initial_state(), jnp.ones((5, 2)))
    assert y.shape == (5, 2)
