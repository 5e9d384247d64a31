"""Float32 models are certified as they run: every kind, sizes 1…8, parameter scales 1e-2…1e2.

`check_lmi` checks the explicit matrices a float32 model simulates with (cast to float64)
beside the exact construction; the margin rule (`r2dn.parameterizations.margin`) must keep
the inequality strict by more than float32 round-off at every scale. Each (kind, sizes) is
built once and its parameters redrawn (as the random initialisation draws them) and scaled, so
that few shapes are compiled however many models are checked.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_supply, scale_parameters
from r2dn import R2DN, SupplyRate
from r2dn.certificates import check_lmi
from r2dn.models.ren import REN
from r2dn.parameterizations import frobenius

#: (nu, nx, nv, ny): every size from 1 to 8 appears, with nu ≠ ny and nx ≠ nv.
SIZES = [(2, 4, 3, 3), (1, 8, 2, 5), (5, 1, 8, 2), (3, 6, 1, 1), (8, 2, 5, 7)]


def _gamma(rng: np.random.Generator) -> float:
    return float(10 ** rng.uniform(-1, 1))


def _lipschitz(rng, nu, ny):
    return SupplyRate.lipschitz(_gamma(rng), nu, ny)


#: kind → (supply rate from rng and sizes, or None; model class; feedthrough).
KINDS: dict[str, tuple[Callable | None, type, str]] = {
    "r2dn-contracting": (None, R2DN, "free"),
    "r2dn-lipschitz-zero": (_lipschitz, R2DN, "zero"),
    "r2dn-lipschitz-free": (_lipschitz, R2DN, "free"),
    "r2dn-qsr-zero": (random_supply, R2DN, "zero"),
    "r2dn-qsr-free": (random_supply, R2DN, "free"),
    "ren-contracting": (None, REN, "free"),
    "ren-lipschitz": (_lipschitz, REN, "free"),
    "ren-qsr": (random_supply, REN, "free"),
    "ren-passive": (lambda rng, nu, ny: SupplyRate.passive(nu, rng.uniform(0, 1)), REN, "free"),
    "ren-strictly-passive": (
        lambda rng, nu, ny: SupplyRate.passive(nu, rng.uniform(0, 0.5), rng.uniform(0.1, 0.4)),
        REN,
        "free",
    ),
}


def builder(kind: str, sizes, rng: np.random.Generator) -> Callable:
    """``init ↦`` a float32 model of ``kind``; a random rate (γ in 0.1…10) and ᾱ < 1, the same
    for both inits (they are static: one compilation serves both)."""
    make_supply, cls, feedthrough = KINDS[kind]
    nu, nx, nv, ny = sizes
    if "passive" in kind:
        ny = nu  # a passivity rate needs as many outputs as inputs
    supply = None if make_supply is None else make_supply(rng, nu, ny)
    alpha_bar = float(rng.uniform(0.2, 0.999))
    key = jax.random.key(int(rng.integers(2**31)))
    return lambda init: cls(
        nu,
        nx,
        nv,
        ny,
        supply=supply,
        alpha_bar=alpha_bar,
        feedthrough=feedthrough,
        init=init,
        dtype=jnp.float32,
        key=key,
    )


def redraw(model, rng: np.random.Generator, scale: float):
    """The model with every parameter drawn afresh as the random initialisation draws it
    (LeCun normal, ``p = ‖X‖_F``), then multiplied by ``scale`` (strict contractions too)."""

    def draw(a):
        if not eqx.is_inexact_array(a):
            return a
        fan_in = a.shape[-1] if a.ndim else 1
        return jnp.asarray(rng.normal(size=a.shape) / np.sqrt(fan_in), a.dtype)

    model = jax.tree.map(draw, model)
    polar = lambda m: m.lti if isinstance(m, R2DN) else m  # noqa: E731  (who holds X and p)
    model = eqx.tree_at(lambda m: polar(m).p, model, frobenius(polar(model).X))
    return scale_parameters(model, scale, scale)


def worst_as_run(kind: str, sizes, seed: int, draws: int) -> tuple[float, int]:
    """Check ``draws`` random float32 models of one kind and sizes (scales log-uniform in
    1e-2…1e2) and the long-memory initialisation at three scales; assert each holds.

    Returns the largest eigenvalue seen of the as-run dissipation matrices and the count.
    """
    rng = np.random.default_rng(seed)
    build = builder(kind, sizes, rng)
    base = build("random")
    models = [(redraw(base, rng, 10 ** rng.uniform(-2, 2)), "random") for _ in range(draws)]
    long_memory = build("long_memory")
    models += [(scale_parameters(long_memory, s, s), "long_memory") for s in (1e-2, 1.0, 1e2)]
    worst = -np.inf
    for model, init in models:
        report = check_lmi(model)
        assert report.holds, (kind, sizes, init, report)
        worst = max(worst, report.max_eigenvalue_as_run)
    return worst, len(models)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_models_of_every_kind_pass_the_as_run_check(kind):
    """A few hundred models in all (30 per kind); the slow test below checks thousands."""
    index = list(KINDS).index(kind)
    worst_as_run(kind, SIZES[index % len(SIZES)], seed=index, draws=27)


@pytest.mark.slow
def test_thousands_of_float32_models_pass_the_as_run_check():
    """Every kind at every size, 63 models each: 3150 models."""
    count, worst = 0, -np.inf
    for i, kind in enumerate(KINDS):
        for j, sizes in enumerate(SIZES):
            w, n = worst_as_run(kind, sizes, seed=1000 + 10 * i + j, draws=60)
            count, worst = count + n, max(worst, w)
    print(f"{count} float32 models certified as run; largest eigenvalue {worst:.3g}")
    assert count >= 3000


def test_files_without_a_margin_rule_are_rebuilt_with_the_absolute_rule(tmp_path):
    """The rule changes the numbers, so a spec records it; older specs name none."""
    from r2dn.registry import ModelSpec

    kwargs = dict(nu=2, nx=3, nv=2, ny=2, gamma=3.0, feedthrough="free")
    assert ModelSpec("lipschitz-r2dn", kwargs).kwargs["margin_rule"] == "relative"
    old = ModelSpec.from_dict({"kind": "lipschitz-r2dn", "kwargs": kwargs})
    assert old.kwargs["margin_rule"] == "absolute"
    assert ModelSpec.from_dict(old.to_dict()) == old
    relative = ModelSpec("lipschitz-r2dn", kwargs).build(jax.random.key(0))
    absolute = old.build(jax.random.key(0))  # the same parameters (random init), other rule
    leaves = zip(jax.tree.leaves(relative), jax.tree.leaves(absolute), strict=True)
    assert all(np.array_equal(a, b) for a, b in leaves)
    assert not np.allclose(relative.explicit().A, absolute.explicit().A, rtol=1e-6, atol=0)


def test_a_legacy_file_loads_with_the_absolute_rule():
    from pathlib import Path

    from r2dn.io import load_model

    trained = load_model(Path(__file__).parent / "data" / "lipschitz-ren.r2dn")
    assert trained.model.margin_rule == "absolute"
    assert trained.model.feedthrough.N.margin_rule == "absolute"


@pytest.mark.parametrize("scale", [1e-2, 1.0, 1e3])
def test_strict_contractions_keep_a_margin_at_every_scale(scale):
    from r2dn.parameterizations import StrictContraction

    eps = 1e-3
    N = scale_parameters(StrictContraction(3, 5, key=jax.random.key(1), eps=eps), scale, scale)
    assert np.linalg.norm(np.asarray(N(), dtype=np.float64), 2) <= 1 - eps * 0.999
