"""R2DN and REN follow one set of rules for what they share (`r2dn.models.base`), and are built
of parts the same way: abstract or final, variants as functions, no field typed by another."""

import dataclasses
import inspect
import types
import typing
from typing import Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r2dn import (
    R2DN,
    REN,
    ContractingR2DN,
    ContractingREN,
    LipschitzR2DN,
    LipschitzREN,
    RobustR2DN,
    RobustREN,
    SupplyRate,
)
from r2dn.models import base, lti, r2dn_io, ren, ren_supply
from r2dn.models import r2dn as r2dn_model
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
    "unknown activation": ("lipschitz", dict(activation="gelu")),
    "a rate for other sizes": ("robust", dict(nu=3)),
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


def test_a_spec_of_an_r2dn_names_its_lti_part():
    new = ModelSpec("contracting-r2dn", SIZES)
    assert new.kwargs["lti"] == "dense" and ModelSpec.from_dict(new.to_dict()) == new
    assert isinstance(new.skeleton().lti, lti.DenseLTI)
    # Specs written before the LTI part could be chosen have the dense one.
    old = {"kind": "lipschitz-r2dn", "kwargs": SIZES | dict(gamma=2.0)}
    assert ModelSpec.from_dict(old).kwargs["lti"] == "dense"
    assert "lti" not in ModelSpec("lipschitz-ren", SIZES | dict(gamma=2.0)).kwargs


MODULES = (base, lti, r2dn_io, r2dn_model, ren, ren_supply)
CLASSES = {
    cls
    for module in MODULES
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if issubclass(cls, eqx.Module) and cls.__module__ == module.__name__
}


def test_there_are_parts_to_check():
    names = {cls.__name__ for cls in CLASSES}
    assert {"R2DN", "REN", "DenseLTI", "ContractingIO", "UnitGainIO", "UnitGainSupply"} <= names
    assert {"AbstractLTI", "AbstractR2DNIO", "AbstractRENSupply", "AbstractSupplyPart"} <= names


@pytest.mark.parametrize("cls", sorted(CLASSES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_model_class_and_part_is_abstract_or_final(cls):
    if cls.__name__.startswith("Abstract"):
        assert inspect.isabstract(cls) and not getattr(cls, "__final__", False)
    else:
        assert getattr(cls, "__final__", False) and not inspect.isabstract(cls)
    # A class derives only from abstract ones: no variant subclasses a concrete class.
    for parent in cls.__mro__[1:]:
        if parent in CLASSES:
            assert inspect.isabstract(parent), f"{cls.__name__} subclasses {parent.__name__}"


@pytest.mark.parametrize("cls", sorted(CLASSES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_no_field_has_a_type_that_depends_on_another(cls):
    """A field has one type, or is optional (``None`` = structurally absent): no ``A | B``."""
    if inspect.isabstract(cls):
        return
    for field in dataclasses.fields(cls):
        kinds = [t for t in typing.get_args(field.type) if t is not type(None)]
        union = isinstance(field.type, types.UnionType) or typing.get_origin(field.type) is Union
        assert not union or len(kinds) == 1, f"{cls.__name__}.{field.name}: {field.type}"


@pytest.mark.parametrize(
    ("variant", "model", "rate"),
    [
        (ContractingR2DN, R2DN, {}),
        (LipschitzR2DN, R2DN, dict(gamma=2.0)),
        (RobustR2DN, R2DN, ROBUST),
        (ContractingREN, REN, {}),
        (LipschitzREN, REN, dict(gamma=2.0)),
        (RobustREN, REN, ROBUST),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_named_variants_are_functions_that_return_the_final_model(variant, model, rate):
    assert inspect.isfunction(variant)
    assert typing.get_type_hints(variant)["return"] is model
    assert type(variant(**SIZES, **rate, key=KEY)) is model


def test_r2dn_and_ren_choose_their_supply_parts_by_one_rule():
    lipschitz = SupplyRate.lipschitz(2.0, 2, 3)
    assert r2dn_io.io_part(None) is r2dn_io.ContractingIO
    assert r2dn_io.io_part(lipschitz) is r2dn_io.UnitGainIO
    assert ren_supply.supply_part(None) is ren_supply.ContractingSupply
    assert ren_supply.supply_part(lipschitz) is ren_supply.UnitGainSupply
    # Each part validates the rate it is given, whoever builds it.
    part_args = dict(key=KEY, eps=DEFAULT_EPS, margin_rule="relative", dtype=jnp.float64)
    with pytest.raises(ValueError, match="without a supply rate"):
        r2dn_io.ContractingIO(lipschitz, "free", False, 2, 3, 2, 3, **part_args)
    with pytest.raises(ValueError, match="without a supply rate"):
        ren_supply.ContractingSupply(lipschitz, "free", 2, 3, **part_args)
    passive = SupplyRate.passive(2)
    with pytest.raises(ValueError, match="no unit-gain form") as r2dn_error:
        r2dn_io.UnitGainIO(passive, "free", False, 2, 3, 2, 2, **part_args)
    with pytest.raises(ValueError, match="no unit-gain form") as ren_error:
        ren_supply.UnitGainSupply(passive, "free", 2, 2, **part_args)
    assert str(r2dn_error.value) == str(ren_error.value)
