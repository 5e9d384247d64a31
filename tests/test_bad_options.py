"""Bad model options are clear errors that say the fix (issue 16, item 10)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r2dn import LipschitzR2DN, LipschitzREN, SupplyRate

SIZES = dict(nu=2, nx=3, nv=2, ny=2)


def test_an_int_for_hidden_names_the_sequence_it_should_be():
    with pytest.raises(TypeError, match=r"hidden=\(8,\)"):
        LipschitzR2DN(**SIZES, hidden=8, gamma=2.0, key=jax.random.key(0))


@pytest.mark.parametrize("gamma", [1e30, 1e-30])
def test_an_extreme_lipschitz_bound_is_rejected(gamma):
    with pytest.raises(ValueError, match="between 1e-08 and 1e"):
        LipschitzREN(**SIZES, gamma=gamma, key=jax.random.key(0))


def test_a_vanishing_q_is_rejected():
    with pytest.raises(ValueError, match="magnitude 1e-300"):
        SupplyRate(-1e-300 * np.eye(2), np.zeros((2, 2)), np.eye(2))


def test_eps_reaches_the_strict_contractions_of_the_r2dn():
    model = LipschitzR2DN(**SIZES, gamma=2.0, feedthrough="free", eps=0.01, key=jax.random.key(0))
    assert {model.io.D12.eps, model.io.D21.eps, model.io.N.eps} == {0.01}


def test_float64_without_x64_is_a_clear_error():
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        LipschitzREN(**SIZES, gamma=2.0, dtype=jnp.float64, key=jax.random.key(0))
