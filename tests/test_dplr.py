"""The diagonal-plus-low-rank (DPLR) core: it is the dense section-4 core of the densified free
matrices, its certificate holds, and simulating its structured ``A`` equals the dense one."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_supply
from r2dn import ExplicitSystem, SupplyRate, simulate, step
from r2dn.certificates import dissipation_matrix
from r2dn.networks.sandwich import LBDN
from r2dn.parameterizations.contraction import StrictContraction
from r2dn.parameterizations.core import (
    to_user_coordinates,
    unit_gain_core,
    unit_gain_feedthrough,
)
from r2dn.parameterizations.dplr import (
    DiagonalPlusLowRank,
    DPLRFree,
    LowRank,
    dense_free,
    dplr_core,
    long_memory_free,
    random_free,
)

EPS = 1e-3
RULE = "relative"  # the default margin rule: the DPLR core must size it as the dense one
KINDS = ("contracting", "lipschitz", "lipschitz-free", "robust-free")


class Problem(eqx.Module):
    """Free parameters of one random DPLR core, and what maps it to a user-coordinate model."""

    free: DPLRFree
    B1: jax.Array
    B2: jax.Array
    C1: jax.Array
    C2: jax.Array
    D12: StrictContraction | jax.Array
    D21: StrictContraction | jax.Array
    N: StrictContraction | None
    supply: SupplyRate | None = eqx.field(static=True)
    alpha_bar: float = eqx.field(static=True)

    def io(self):
        if self.supply is None:
            return None
        N = None if self.N is None else self.N()
        return self.C2, unit_gain_feedthrough(self.D12(), self.D21(), N, eps=EPS, margin_rule=RULE)

    def core(self):
        return dplr_core(
            self.free,
            self.B1,
            self.B2,
            self.C1,
            alpha_bar=self.alpha_bar,
            eps=EPS,
            margin_rule=RULE,
            io=self.io(),
        )

    def system(self, A_dense: bool = False, phi=None) -> ExplicitSystem:
        """The explicit model; ``A`` materialised if ``A_dense``."""
        core = self.core()
        io = self.io()
        if io is None:
            B2, C2, D12, D21 = core.B2, self.C2, self.D12, self.D21
            D22 = jnp.zeros((C2.shape[0], B2.shape[1]))
        else:
            B2, D12, C2, D21, D22 = to_user_coordinates(
                self.supply.factors(jnp.float64), core.B2, *io
            )
        nx, nv = self.B1.shape
        zeros = lambda n: jnp.zeros(n)  # noqa: E731
        return ExplicitSystem(
            A=core.A.dense() if A_dense else core.A,
            B1=core.B1.dense() if A_dense else core.B1,
            B2=B2,
            C1=self.C1,
            C2=C2,
            D12=D12,
            D21=D21,
            D22=D22,
            bx=zeros(nx),
            bv=zeros(nv),
            by=zeros(C2.shape[0]),
            phi=phi or jnp.tanh,
        )


def problem(
    seed: int,
    nx: int,
    rank: int,
    rank_Y: int,
    nv: int,
    nu: int,
    ny: int,
    kind: str,
    alpha_bar: float,
    scale: float = 1.0,
    contraction_scale: float = 1.0,
) -> Problem:
    """A random problem; free matrices times ``scale``, contraction parameters times their own."""
    keys = iter(jax.random.split(jax.random.key(seed), 8))
    rng = np.random.default_rng(seed)
    normal = lambda *shape: scale * jax.random.normal(next(keys), shape) / np.sqrt(shape[-1])  # noqa: E731
    free = jax.tree.map(lambda a: scale * a, random_free(next(keys), nx, rank, rank_Y=rank_Y))

    def contraction(m, n):
        c = StrictContraction(m, n, key=next(keys), eps=EPS, dtype=jnp.float64)
        return jax.tree.map(lambda a: contraction_scale * a, c)

    B1, B2, C1, C2 = normal(nx, nv), normal(nx, nu), normal(nv, nx), normal(ny, nx)
    if kind == "contracting":
        return Problem(free, B1, B2, C1, C2, normal(nv, nu), normal(ny, nv), None, None, alpha_bar)
    supply = (
        SupplyRate.lipschitz(10 ** rng.uniform(-1, 1), nu, ny)
        if kind.startswith("lipschitz")
        else random_supply(rng, nu, ny)
    )
    N = contraction(ny, nu) if kind.endswith("-free") else None
    D12, D21 = contraction(nv, nu), contraction(ny, nv)
    return Problem(free, B1, B2, C1, C2, D12, D21, N, supply, alpha_bar)


def relative_error(a, b) -> float:
    return float(jnp.linalg.norm(a - b) / jnp.maximum(jnp.linalg.norm(b), 1e-300))


# Few distinct sizes keep XLA's per-shape compilation cache warm (as in test_r2dn.py).
RANKS = st.sampled_from([1, 4, 16])


@functools.partial(jax.jit, static_argnames="alpha_bar")
def both_cores(free, B1, B2, C1, io, X, Y, alpha_bar):
    """The structured core and the dense core of the densified free matrices."""
    common = dict(alpha_bar=alpha_bar, eps=EPS, margin_rule=RULE, io=io)
    return dplr_core(free, B1, B2, C1, **common), unit_gain_core(X, free.p, Y, B1, B2, C1, **common)


@settings(max_examples=10, deadline=None)
@given(
    nx=st.sampled_from([1, 2, 7, 64]),
    ranks=st.tuples(RANKS, RANKS),
    sizes=st.tuples(st.sampled_from([1, 4]), st.sampled_from([1, 3]), st.sampled_from([1, 3])),
    kind=st.sampled_from(KINDS),
    alpha_bar=st.sampled_from([1.0, 0.9, 0.5]),
    log_scale=st.floats(-2, 2),
    seed=st.integers(0, 2**16),
)
def test_the_structured_core_is_the_dense_core_of_the_densified_parameters(
    nx, ranks, sizes, kind, alpha_bar, log_scale, seed
):
    prob = problem(seed, nx, *ranks, *sizes, kind, alpha_bar, scale=10**log_scale)
    X, Y = dense_free(prob.free, y=jax.random.normal(jax.random.key(seed), (nx,)))
    assert X.shape == (nx + ranks[0], 2 * nx)
    core, dense = both_cores(prob.free, prob.B1, prob.B2, prob.C1, prob.io(), X, Y, alpha_bar)
    for name in ("A", "E", "Pcal"):
        assert relative_error(getattr(core, name).dense(), getattr(dense, name)) < 1e-9, name
    assert jnp.array_equal(core.B1.U, core.A.U)  # B1 = U Qᵀ on A's U: one product per step
    for name, value in (("B1", core.B1.dense()), ("B2", core.B2)):
        assert relative_error(value, getattr(dense, name)) < 1e-9, name


def test_the_rank_of_A_is_that_of_E_low_rank_part():
    nx, r, rY, nv, nu, ny = 64, 3, 2, 5, 2, 1
    contracting = problem(0, nx, r, rY, nv, nu, ny, "contracting", 0.9).core()
    assert contracting.A.rank == contracting.E.rank == 2 * r + 2 * rY + 2 * nv
    bounded = problem(0, nx, r, rY, nv, nu, ny, "lipschitz-free", 0.9).core()
    assert bounded.A.rank == 2 * r + 2 * rY + (nv + ny) + (nv + nu)
    low_rank = bounded.A.dense() - jnp.diag(bounded.A.diagonal)
    assert np.linalg.matrix_rank(np.asarray(low_rank)) <= bounded.A.rank


def certify(prob: Problem) -> tuple[float, float]:
    """Largest eigenvalue of the section-6 matrix and smallest of ``P``, densely in float64."""
    core = prob.core()
    P = np.asarray(core.metric())
    M = dissipation_matrix(
        prob.system(A_dense=True), P, alpha_bar=prob.alpha_bar, supply=prob.supply
    )
    return float(np.linalg.eigvalsh(M).max()), float(np.linalg.eigvalsh((P + P.T) / 2).min())


@pytest.mark.parametrize(
    "nx",
    [
        1,
        2,
        7,
        64,
        pytest.param(512, marks=pytest.mark.slow),
        pytest.param(1024, marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_the_certificate_holds_on_random_structured_models(nx, kind):
    rng = np.random.default_rng(nx)
    for seed in range(2 if nx <= 64 else 1):
        rank, rank_Y = (1, 16) if seed % 2 else (16, 1)  # the extremes; others in the test above
        alpha_bar = float(rng.choice([1.0, 0.95, 0.6]))
        log_scale, log_contraction_scale = rng.uniform(-2, 2), rng.uniform(-2, np.log10(3))
        sizes = (1, 2, 3) if seed == 0 else (4, 3, 1)
        prob = problem(
            seed,
            nx,
            rank,
            rank_Y,
            *sizes,
            kind,
            alpha_bar,
            10**log_scale,
            10**log_contraction_scale,
        )
        max_eig, min_eig_P = certify(prob)
        assert max_eig < 0 and min_eig_P > 0, (seed, max_eig, min_eig_P)


def test_the_certificate_check_can_fail():
    """The check is not vacuous: doubling ``A`` of a certified model breaks it."""
    prob = problem(0, 7, 2, 2, 3, 1, 1, "contracting", 0.9)
    sys = prob.system(A_dense=True)
    P = np.asarray(prob.core().metric())
    M = dissipation_matrix(
        eqx.tree_at(lambda s: s.A, sys, 2 * sys.A), P, alpha_bar=0.9, supply=None
    )
    assert np.linalg.eigvalsh(M).max() > 0


@pytest.mark.parametrize(
    ("field", "shape", "match"),
    [("d2", (6,), "d2 has shape"), ("U2", (3, 5), "U2 has shape"), ("Yb", (3, 5), "Yb has")],
)
def test_mismatched_free_parameters_are_rejected_with_a_clear_message(field, shape, match):
    free = random_free(jax.random.key(0), 5, 2, rank_Y=1)
    free = free._replace(**{field: jnp.zeros(shape)})
    with pytest.raises(ValueError, match=match):
        dplr_core(
            free,
            jnp.ones((5, 1)),
            jnp.ones((5, 1)),
            jnp.ones((1, 5)),
            alpha_bar=1,
            eps=EPS,
            margin_rule=RULE,
        )


def test_rows_times_a_structured_matrix_equal_rows_times_the_dense_one():
    d, U, V = (
        jax.random.normal(k, shape)
        for k, shape in zip(
            jax.random.split(jax.random.key(0), 3), [(6,), (6, 2), (6, 2)], strict=True
        )
    )
    M = DiagonalPlusLowRank(d, U, V)
    x = jax.random.normal(jax.random.key(2), (4, 5, 6))
    np.testing.assert_allclose(x @ M, x @ M.dense(), rtol=1e-12)
    np.testing.assert_allclose(x @ M.T, x @ M.dense().T, rtol=1e-12)
    assert M.shape == (6, 6) and M.rank == 2


@pytest.mark.parametrize(("kind", "fused"), [("contracting", True), ("lipschitz-free", False)])
def test_structured_simulation_and_its_gradient_equal_the_dense_ones(kind, fused):
    """Fused (LBDN φ, own derivative rule) and generic (any φ) paths, values and gradients
    with respect to the free parameters, against the materialised ``A``."""
    nx, nv, nu, ny = 9, 3, 2, 2
    prob = problem(1, nx, 2, 2, nv, nu, ny, kind, 0.9)
    phi = (
        LBDN(nv, (5, 4), nv, key=jax.random.key(3), dtype=jnp.float64).explicit() if fused else None
    )
    keys = jax.random.split(jax.random.key(4), 2)
    x0 = jax.random.normal(keys[0], (3, nx))
    u = jax.random.normal(keys[1], (3, 11, nu))

    def loss(prob, A_dense):
        xT, y = simulate(prob.system(A_dense, phi), x0, u)
        return jnp.sum(y**2) + jnp.sum(jnp.sin(xT))

    grad = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    (value, g), (value_dense, g_dense) = grad(prob, False), grad(prob, True)
    np.testing.assert_allclose(value, value_dense, rtol=1e-12)
    leaves = lambda tree: jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))  # noqa: E731
    for a, b in zip(leaves(g), leaves(g_dense), strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    sys, sys_dense = prob.system(False, phi), prob.system(True, phi)
    for a, b in zip(step(sys, x0, u[:, 0]), step(sys_dense, x0, u[:, 0]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_B1_off_A_s_factor_simulates_as_the_one_on_it():
    """The fused step folds ``B1 = U Qᵀ`` into A's ``U`` only when it is A's own factor; any
    other ``B1`` (a copy of the factor, or a dense array) widens the factors, same results."""
    prob = problem(5, 9, 2, 2, 3, 2, 2, "contracting", 0.9)
    phi = LBDN(3, (5, 4), 3, key=jax.random.key(3), dtype=jnp.float64).explicit()
    x0, u = jnp.ones((2, 9)), jax.random.normal(jax.random.key(4), (2, 7, 2))
    sys = prob.system(phi=phi)
    assert sys.B1.U is sys.A.U
    on_A = simulate(sys, x0, u)
    for B1 in (LowRank(sys.B1.U + 0.0, sys.B1.V), sys.B1.dense()):
        other = simulate(eqx.tree_at(lambda s: s.B1, sys, B1), x0, u)
        for a, b in zip(other, on_A, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_structured_simulation_compiles_and_runs_in_float32():
    prob = problem(2, 16, 4, 4, 3, 2, 1, "lipschitz", 1.0)
    sys = jax.tree.map(
        lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, prob.system()
    )
    xT, y = eqx.filter_jit(simulate)(
        sys, jnp.zeros(16, jnp.float32), jnp.ones((20, 2), jnp.float32)
    )
    assert xT.dtype == y.dtype == jnp.float32 and y.shape == (20, 1)
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("alpha_bar", [1.0, 0.9])
@pytest.mark.parametrize("kind", ["contracting", "lipschitz"])
def test_long_memory_starts_with_slow_diagonal_modes_and_live_gradients(alpha_bar, kind):
    nx, nv, nu, ny = 64, 4, 2, 2
    prob = problem(0, nx, 8, 8, nv, nu, ny, kind, alpha_bar)
    free = long_memory_free(jax.random.key(5), nx, 8, alpha_bar=alpha_bar, eps=EPS)
    small = 1e-3  # the model starts B̃1 = C1 = 0 and makes B̃2, Ĉ2 small
    prob = eqx.tree_at(
        lambda p: (p.free, p.B1, p.C1, p.B2, p.C2),
        prob,
        (free, 0 * prob.B1, 0 * prob.C1, small * prob.B2, small * prob.C2),
    )
    A = prob.core().A.dense()
    diag = jnp.diag(A)
    assert jnp.all(diag >= alpha_bar * 0.95 - 1e-3) and jnp.all(diag <= alpha_bar * 0.9995)
    assert jnp.std(diag) > 1e-3  # the modes are spread, as U[0, 1] asks
    assert jnp.abs(A - jnp.diag(diag)).max() < 1e-3
    assert certify(prob)[0] < 0

    @jax.jit
    def loss(free):
        core = eqx.tree_at(lambda p: p.free, prob, free).core()
        x = jnp.ones((2, nx))
        return jnp.sum((x @ core.A.T) ** 2) + jnp.sum(core.B2**2)

    g = jax.grad(loss)(free)
    for name in ("U1", "U2", "Ya", "Yb", "d1", "d2"):
        assert jnp.all(jnp.isfinite(getattr(g, name))) and jnp.any(getattr(g, name) != 0), name
