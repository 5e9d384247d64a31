"""Model-level certificate checks on trained models: adversarial searches never beat the bound."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import random_supply
from r2dn import R2DN, LipschitzR2DN
from r2dn.certificates import check_lmi, lipschitz_lower_bound, worst_supply


def train_towards_high_gain(model, steps: int = 40):
    """A few Adam steps fitting y = 20·(u delayed): the fit wants a gain far above any bound."""
    u = jax.random.normal(jax.random.key(0), (8, 32, model.nu))
    target = 20.0 * jnp.roll(u, 1, axis=-2)[..., : model.ny].sum(-1, keepdims=True)
    target = jnp.broadcast_to(target, (*u.shape[:-1], model.ny))
    opt = optax.adam(3e-2)

    def loss(model):
        _, y = model.simulate(model.initial_state(8), u)
        return jnp.mean((y - target) ** 2)

    @eqx.filter_jit
    def step(model, state):
        value, grads = eqx.filter_value_and_grad(loss)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), state, value

    state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    losses = []
    for _ in range(steps):
        model, state, value = step(model, state)
        losses.append(float(value))
    assert losses[-1] < losses[0]  # training really moved the model
    return model


@pytest.mark.parametrize("feedthrough", ["zero", "free"])
def test_adversarial_gain_stays_below_gamma_before_and_after_training(feedthrough):
    gamma = 1.5
    model = LipschitzR2DN(
        2,
        6,
        4,
        2,
        (8, 8),
        gamma=gamma,
        feedthrough=feedthrough,
        init="long_memory",
        dtype=jnp.float64,
        key=jax.random.key(0),
    )
    before = lipschitz_lower_bound(model, key=jax.random.key(1))
    trained = train_towards_high_gain(model)
    after = lipschitz_lower_bound(trained, key=jax.random.key(2))
    assert before <= gamma and after <= gamma
    assert after > before  # training pushed the gain towards the bound
    assert check_lmi(trained).holds


def test_adversarial_supply_search_never_finds_a_violation_before_or_after_training():
    supply = random_supply(np.random.default_rng(3), 2, 2)
    model = R2DN(
        2,
        6,
        4,
        2,
        (8,),
        supply=supply,
        feedthrough="free",
        dtype=jnp.float64,
        key=jax.random.key(0),
    )
    assert worst_supply(model, key=jax.random.key(1)) <= 0
    trained = train_towards_high_gain(model)
    assert worst_supply(trained, key=jax.random.key(2)) <= 0
    assert check_lmi(trained).holds


def test_a_float32_model_is_certified_from_its_parameters_in_float64():
    model = LipschitzR2DN(2, 8, 6, 1, (16,), gamma=2.0, key=jax.random.key(0))
    assert model.dtype == jnp.float32
    assert check_lmi(model).holds


def test_worst_supply_needs_a_supply_rate():
    from r2dn import ContractingR2DN

    model = ContractingR2DN(1, 2, 2, 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="supply rate"):
        worst_supply(model, key=jax.random.key(0))


def test_check_lmi_works_in_float64_even_when_x64_is_off():
    """The exact check casts to float64; without x64 that cast would silently give float32."""
    model = LipschitzR2DN(2, 4, 3, 2, (8,), gamma=2.0, key=jax.random.key(0))
    expected = check_lmi(model)
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_lmi(jax.tree.map(lambda a: a, model))
    assert report.holds and report.max_eigenvalue == pytest.approx(expected.max_eigenvalue)


def test_check_lmi_checks_the_matrices_as_run_too():
    """A float32 model's explicit matrices, cast to float64, are checked beside the exact ones."""
    model = LipschitzR2DN(2, 4, 3, 2, (8,), gamma=2.0, key=jax.random.key(1), dtype=jnp.float64)
    report64 = check_lmi(model)
    assert report64.max_eigenvalue_as_run == pytest.approx(report64.max_eigenvalue, rel=1e-9)
    model32 = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, model)
    report = check_lmi(model32)
    assert report.holds and report.max_eigenvalue_as_run < 0
    assert report.max_eigenvalue_as_run != report.max_eigenvalue  # float32 round-off is seen
