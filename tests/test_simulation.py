"""`simulate`'s fused R2DN path against plain autodiff through the unfused network.

The reference evaluates φ Sandwich layer by Sandwich layer (two matmuls per layer, as the
design note writes it) inside the generic scan, and is differentiated by JAX. The fused path
multiplies φ's matrices out, folds ``C1``, ``B1`` and ``D21`` into them and has its own
derivative rule, so values, reverse- and forward-mode derivatives are all compared.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from r2dn import ContractingR2DN, ExplicitSystem, LipschitzR2DN, simulate, simulation, step
from r2dn.networks.sandwich import LBDN, DenseWeights, apply_dense

TOL = {jnp.float32: 1e-5, jnp.float64: 1e-11}


class UnfusedLBDN(eqx.Module):
    """φ as the design note writes it: each Sandwich layer's two matrices, then the output."""

    layers: tuple[DenseWeights, ...]
    W: Array
    b: Array
    sqrt_gamma: Array
    activation: str = eqx.field(static=True)

    def __init__(self, net: LBDN):
        self.layers = tuple(layer.explicit() for layer in net.layers)
        self.W, self.b = net.output.explicit()
        self.sqrt_gamma = jnp.sqrt(net.gamma)
        self.activation = net.activation

    def __call__(self, h):
        h = self.sqrt_gamma * h
        for layer in self.layers:
            h = apply_dense(layer, self.activation, h)
        return h @ (self.sqrt_gamma * self.W).T + self.b


def reference(model) -> ExplicitSystem:
    """The model's explicit system with φ unfused: `simulate` takes its generic path."""
    return eqx.tree_at(lambda s: s.phi, model.explicit(), UnfusedLBDN(model.phi))


def random_values(build, seed: int = 0):
    """``build()``'s model with every parameter drawn at random (no compilation needed).

    Any value of the direct parameters is a valid model, and random biases and Ψ (which
    start at zero) exercise every term.
    """
    rng = np.random.default_rng(seed)

    def draw(leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        return jnp.asarray(0.5 * rng.standard_normal(leaf.shape), leaf.dtype)

    return jax.tree.map(draw, eqx.filter_eval_shape(build))


KEY = jax.random.key(0)
BUILDERS = {
    "contracting": lambda dtype: ContractingR2DN(2, 3, 4, 2, (5, 6), key=KEY, dtype=dtype),
    "lipschitz_tanh": lambda dtype: LipschitzR2DN(
        2, 3, 4, 2, (5,), gamma=2.5, activation="tanh", key=KEY, dtype=dtype
    ),
    "deep_leaky": lambda dtype: ContractingR2DN(
        1, 4, 3, 1, (4, 4, 4), alpha_bar=0.9, activation="leaky_relu", key=KEY, dtype=dtype
    ),
}


def make_model(kind: str, dtype, seed: int = 0):
    return random_values(lambda: BUILDERS[kind](dtype), seed)


@pytest.mark.parametrize("hidden", [(), (5,), (4, 6, 3)])
def test_explicit_lbdn_is_the_layer_by_layer_network(hidden):
    net = random_values(lambda: LBDN(3, hidden, 2, gamma=2.5, activation="tanh", key=KEY))
    h = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3)), jnp.float32)
    fused = eqx.filter_jit(lambda net, h: net.explicit()(h))(net, h)
    assert_close(fused, eqx.filter_jit(lambda net, h: UnfusedLBDN(net)(h))(net, h), 1e-6)


def assert_close(a, b, tol):
    """``‖a − b‖∞ ≤ tol · ‖b‖∞`` over whole pytrees (one scale, so exact zeros don't matter)."""
    a, _ = ravel_pytree(a)
    b, _ = ravel_pytree(b)
    scale = float(jnp.max(jnp.abs(b)))
    assert scale > 0
    err = float(jnp.max(jnp.abs(a - b)))
    assert err <= tol * scale, f"max error {err:.3g} > {tol:g} × {scale:.3g}"


def loss(params, static, x0, u, target, to_system):
    """A sequence loss, and the simulation it was computed from."""
    model = eqx.combine(params, static)
    x_T, y = simulate(to_system(model), x0, u)
    return jnp.mean((y - target) ** 2) + jnp.mean(x_T**2), (x_T, y)


#: The simulation, the loss, and its gradients with respect to parameters, ``x0`` and ``u``.
value_and_grads = eqx.filter_jit(jax.value_and_grad(loss, argnums=(0, 2, 3), has_aux=True))


def inputs(model, batch, T=7, seed: int = 1):
    """Random initial states, inputs and targets with leading ``batch`` dims."""
    rng = np.random.default_rng(seed)
    shapes = ((*batch, model.nx), (*batch, T, model.nu), (*batch, T, model.ny))
    return tuple(jnp.asarray(rng.standard_normal(shape), model.dtype) for shape in shapes)


def explicit(model):
    return model.explicit()


explicit_system = eqx.filter_jit(explicit)


@pytest.mark.parametrize(
    ("kind", "dtype", "batch"),
    [
        ("contracting", jnp.float32, (2, 3)),
        ("contracting", jnp.float64, (2, 3)),
        ("lipschitz_tanh", jnp.float32, (3,)),
        ("lipschitz_tanh", jnp.float64, ()),
        ("deep_leaky", jnp.float32, (2,)),
    ],
)
def test_values_and_gradients_match_autodiff(kind, dtype, batch):
    with jax.enable_x64(dtype == jnp.float64):
        model = make_model(kind, dtype)
        x0, u, target = inputs(model, batch)
        params, static = eqx.partition(model, eqx.is_inexact_array)
        assert_close(
            value_and_grads(params, static, x0, u, target, explicit),
            value_and_grads(params, static, x0, u, target, reference),
            TOL[dtype],
        )


def test_blocks_with_a_remainder(monkeypatch):
    """The derivative rule's blocks of steps: 11 steps of 2 rows in blocks of 3 steps and 2."""
    monkeypatch.setattr(simulation, "BLOCK_ROWS", 6)
    model = make_model("contracting", jnp.float32)
    x0, u, target = inputs(model, (2,), T=11)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    assert_close(
        value_and_grads(params, static, x0, u, target, explicit),
        value_and_grads(params, static, x0, u, target, reference),
        TOL[jnp.float32],
    )


def test_per_example_gradients_under_vmap():
    model = make_model("contracting", jnp.float32)
    x0, u, target = inputs(model, (4,))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @eqx.filter_jit
    def per_example(to_system):
        grad = jax.grad(lambda *args: loss(*args)[0])
        return jax.vmap(grad, in_axes=(None, None, 0, 0, 0, None))(
            params, static, x0, u, target, to_system
        )

    fast, slow = per_example(explicit), per_example(reference)
    assert_close(fast, slow, TOL[jnp.float32])
    # Four examples, four different gradients: vmap did not collapse the batch.
    assert not np.allclose(fast.lti.X[0], fast.lti.X[1])


def test_vmap_over_models():
    stack = lambda *leaves: jnp.stack(leaves) if eqx.is_array(leaves[0]) else leaves[0]  # noqa: E731
    models = jax.tree.map(
        stack, *[make_model("contracting", jnp.float32, seed) for seed in range(3)]
    )
    x0, u, _ = inputs(make_model("contracting", jnp.float32), (2,))

    @eqx.filter_jit
    def run_all(to_system):
        return eqx.filter_vmap(lambda m: simulate(to_system(m), x0, u))(models)

    assert_close(run_all(explicit), run_all(reference), TOL[jnp.float32])


def test_forward_mode_matches_autodiff():
    with jax.enable_x64(True):
        model = make_model("lipschitz_tanh", jnp.float64)
        x0, u, _ = inputs(model, (2,))
        params, static = eqx.partition(model, eqx.is_inexact_array)
        tangent = jax.tree.map(jnp.ones_like, params)

        @eqx.filter_jit
        def jvp(to_system):
            f = lambda p: simulate(to_system(eqx.combine(p, static)), x0, u)  # noqa: E731
            return jax.jvp(f, (params,), (tangent,))

        assert_close(jvp(explicit), jvp(reference), TOL[jnp.float64])


def test_batch_dims_broadcast():
    model = make_model("contracting", jnp.float32)
    sys = explicit_system(model)
    x0 = jax.random.normal(jax.random.key(2), (model.nx,))
    _, u, _ = inputs(model, (2, 3))
    run = eqx.filter_jit(simulate)
    x_T, y = run(sys, x0, u)
    assert x_T.shape == (2, 3, model.nx) and y.shape == (2, 3, 7, model.ny)
    x_T_row, y_row = run(sys, x0, u[1, 2])
    np.testing.assert_allclose(y[1, 2], y_row, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x_T[1, 2], x_T_row, rtol=1e-5, atol=1e-6)


jitted_step = eqx.filter_jit(step)


def stepwise(sys, x0, u):
    """A Python loop of `step`: the definition `simulate` must agree with."""
    x, ys = x0, []
    for t in range(u.shape[-2]):
        x, y_t = jitted_step(sys, x, u[..., t, :])
        ys.append(y_t)
    return x, jnp.stack(ys, axis=-2)


def test_simulate_agrees_with_step():
    model = make_model("deep_leaky", jnp.float32)
    sys = explicit_system(model)
    x0, u, _ = inputs(model, (3,))
    assert_close(eqx.filter_jit(simulate)(sys, x0, u), stepwise(sys, x0, u), TOL[jnp.float32])


def test_any_phi_takes_the_generic_path():
    """A φ that is not an LBDN (a REN's equilibrium layer, say) runs through `step`'s equations."""
    model = make_model("contracting", jnp.float32)
    sys = eqx.tree_at(lambda s: s.phi, explicit_system(model), jnp.tanh)
    x0, u, _ = inputs(model, (2,))
    assert_close(eqx.filter_jit(simulate)(sys, x0, u), stepwise(sys, x0, u), TOL[jnp.float32])
    fused = str(jax.make_jaxpr(lambda x0, u: simulate(explicit_system(model), x0, u))(x0, u))
    generic = str(jax.make_jaxpr(lambda x0, u: simulate(sys, x0, u))(x0, u))
    assert "custom_jvp_call" in fused and "custom_jvp_call" not in generic


def test_no_recompilation_when_parameters_change():
    model = make_model("contracting", jnp.float32)
    x0, u, target = inputs(model, (2,))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    grad = jax.jit(jax.grad(lambda p: loss(p, static, x0, u, target, explicit)[0]))
    params = jax.tree.map(lambda p, dp: p - 0.1 * dp, params, grad(params))
    grad(params)
    assert grad._cache_size() == 1


def test_bad_inputs_are_clear_errors():
    """No time steps, complex numbers and text are named errors, not ZeroDivisionError,
    silent complex outputs or NumPy's raw type errors; lists are taken as arrays."""
    model = ContractingR2DN(1, 2, 2, 1, hidden=(3,), key=jax.random.key(0))
    x0 = model.initial_state()
    assert model.simulate(x0, [[0.5], [1.0]])[1].shape == (2, 1)
    with pytest.raises(ValueError, match="no time steps"):
        model.simulate(x0, jnp.zeros((0, 1)))
    with pytest.raises(TypeError, match="real numbers"):
        model.simulate(x0, jnp.ones((3, 1), dtype=jnp.complex64))
    with pytest.raises(TypeError, match="real numbers"):
        model.step(x0, np.array(["1.0"]))
