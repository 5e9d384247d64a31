"""R2DN and REN follow one set of rules for what they share (`r2dn.models.base.check_options`)."""

import jax
import numpy as np
import pytest

from r2dn import ContractingR2DN, ContractingREN, LipschitzR2DN, LipschitzREN, RobustR2DN, RobustREN
from r2dn.models.base import DEFAULT_EPS, default_feedthrough
from r2dn.registry import ModelSpec

KEY = jax.random.key(0)
SIZES = dict(nu=2, nx=3, nv=2, ny=3)
ROBUST = dict(Q=-np.eye(3), S=0.1 * np.ones((2, 3)), R=np.eye(2))
PAIRS = {
    "contracting": (ContractingR2DN, ContractingREN, {}),
    "lipschitz": (LipschitzR2DN, LipschitzREN, dict(gamma=2.0)),
    "robust": (RobustR2DN, RobustREN, ROBUST),
}
BAD = {
    "identity output with a free feedthrough": (
        "contracting",
        dict(identity_output=True, feedthrough="free"),
    ),
    "identity output with a free Lipschitz feedthrough": (
        "lipschitz",
        dict(identity_output=True, feedthrough="free"),
    ),
    "identity output with S != 0": ("robust", dict(identity_output=True)),
    "identity output with ny != nx": ("contracting", dict(identity_output=True, ny=2)),
    "unknown feedthrough": ("lipschitz", dict(feedthrough="some")),
    "eps <= 0": ("contracting", dict(eps=0.0)),
    "alpha_bar > 1": ("contracting", dict(alpha_bar=1.5)),
    "unknown init": ("robust", dict(init="zeros")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_r2dn_and_ren_give_the_same_error_for_the_same_bad_options(case):
    kind, options = BAD[case]
    r2dn, ren, rate = PAIRS[kind]
    if "ny" in options and rate:
        pytest.skip("the supply rate fixes ny")
    kwargs = SIZES | rate | options
    with pytest.raises(ValueError) as r2dn_error:
        r2dn(**kwargs, key=KEY)
    with pytest.raises(ValueError) as ren_error:
        ren(**kwargs, key=KEY)
    assert str(r2dn_error.value) == str(ren_error.value)


@pytest.mark.parametrize("kind", list(PAIRS))
def test_both_models_default_to_a_free_feedthrough(kind):
    r2dn, ren, rate = PAIRS[kind]
    a, b = r2dn(**SIZES, **rate, key=KEY), ren(**SIZES, **rate, key=KEY)
    r2dn_d22 = a.io.D22 if kind == "contracting" else a.io.N
    ren_d22 = b.feedthrough.D22 if kind == "contracting" else b.feedthrough.N
    assert r2dn_d22 is not None and ren_d22 is not None
    assert a.eps == b.eps == DEFAULT_EPS
    assert default_feedthrough(identity_output=False) == "free"


def test_an_identity_output_defaults_to_no_feedthrough_in_both():
    sizes = SIZES | dict(ny=3)
    a = LipschitzR2DN(**sizes, gamma=2.0, identity_output=True, key=KEY)
    b = LipschitzREN(**sizes, gamma=2.0, identity_output=True, key=KEY)
    assert a.io.N is None and b.feedthrough.N is None


def test_a_spec_names_its_feedthrough_and_reads_specs_of_release_0_1():
    new = ModelSpec("lipschitz-r2dn", SIZES | dict(gamma=2.0))
    assert new.kwargs["feedthrough"] == "free"
    assert ModelSpec.from_dict(new.to_dict()) == new
    # r2dn 0.1.0 wrote no feedthrough; an R2DN with a supply rate then had D22 = 0.
    old = {"kind": "lipschitz-r2dn", "kwargs": SIZES | dict(gamma=2.0)}
    assert ModelSpec.from_dict(old).kwargs["feedthrough"] == "zero"
    old_ren = {"kind": "lipschitz-ren", "kwargs": SIZES | dict(gamma=2.0)}
    assert ModelSpec.from_dict(old_ren).kwargs["feedthrough"] == "free"
