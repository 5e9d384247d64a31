"""Checks of a model's guarantees that anyone can run on a trained model.

- `check_lmi`: the section-6 dissipation matrix in float64, both of the exact construction and
  of the matrices as the model runs them (its own dtype); the certificate holds when every
  largest eigenvalue is negative and ``P ≻ 0``.
- `lipschitz_lower_bound` / `worst_supply`: adversarial searches over pairs of input
  sequences; they can only ever find a *lower* bound on the true gain.
- `contraction_rate`: two trajectories under the same input; their distance in the ``P``
  norm must shrink by at least ``ᾱ`` each step.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from r2dn import simulation
from r2dn.models.base import AbstractRecurrentModel, CertificateData
from r2dn.parameterizations.supply import SupplyRate
from r2dn.simulation import ExplicitSystem


def to_dtype(tree, dtype):
    """Cast every floating-point array of a pytree (a model, say) to ``dtype``."""
    return jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, tree)


def dissipation_matrix(
    sys: ExplicitSystem,
    P: np.ndarray,
    *,
    alpha_bar: float,
    supply: SupplyRate | None,
    D11: np.ndarray | None = None,
    multiplier: np.ndarray | None = None,
) -> np.ndarray:
    """The section-6 matrix ``M`` over ``(x, w, u)`` (over ``(x, w)`` when contracting only).

    ``M ≺ 0`` certifies ``ΔV⁺ − ᾱ²ΔV ≤ supply − (nonlinearity constraint)``. The constraint is
    ``|Δv|² − |Δw|²`` for a 1-Lipschitz φ (R2DN), or ``2Δwᵀ Λ (Δv − Δw)`` with ``D11`` and a
    diagonal ``multiplier`` Λ for an elementwise slope-restricted φ (REN).
    """
    m = {
        k: np.asarray(getattr(sys, k), dtype=np.float64)
        for k in ("A", "B1", "B2", "C1", "C2", "D12", "D21", "D22")
    }
    P = np.asarray(P, dtype=np.float64)
    nx, nv, nu = m["A"].shape[0], m["B1"].shape[1], m["B2"].shape[1]
    if supply is None:
        nu = 0
    D11 = np.zeros((nv, nv)) if D11 is None else np.asarray(D11, dtype=np.float64)
    AB = np.hstack([m["A"], m["B1"], m["B2"][:, :nu]])
    Pi_x = np.eye(nx, nx + nv + nu)
    Pi_w = np.eye(nv, nx + nv + nu, k=nx)
    Mv = np.hstack([m["C1"], D11, m["D12"][:, :nu]])
    M = AB.T @ P @ AB - alpha_bar**2 * Pi_x.T @ P @ Pi_x
    if multiplier is None:
        M += Mv.T @ Mv - Pi_w.T @ Pi_w
    else:
        Lam = np.diag(np.asarray(multiplier, dtype=np.float64))
        M += Pi_w.T @ Lam @ Mv + Mv.T @ Lam @ Pi_w - 2 * Pi_w.T @ Lam @ Pi_w
    if supply is not None:
        out = np.vstack(
            [
                np.hstack([m["C2"], m["D21"], m["D22"]]),
                np.eye(nu, nx + nv + nu, k=nx + nv),
            ]
        )
        M -= out.T @ supply.matrix() @ out
    return (M + M.T) / 2


class LMIReport(NamedTuple):
    """Result of `check_lmi`: the certificate holds iff ``holds``.

    ``max_eigenvalue`` and ``min_eigenvalue_P`` are of the exact construction (recomputed in
    float64 from the parameters); ``max_eigenvalue_as_run`` is of the explicit matrices as the
    model computes them in its own dtype, cast to float64 — what a simulation really uses —
    with the exact metric ``P`` (and multiplier), which only the check uses.
    """

    max_eigenvalue: float  # of the dissipation matrix; must be < 0
    min_eigenvalue_P: float  # of the metric; must be > 0
    max_eigenvalue_as_run: float

    @property
    def holds(self) -> bool:
        return max(self.max_eigenvalue, self.max_eigenvalue_as_run) < 0 < self.min_eigenvalue_P


def check_lmi(model: AbstractRecurrentModel) -> LMIReport:
    """Check the model's section-6 certificate twice, always evaluated in float64.

    Once for the exact construction: the stored parameters are cast to float64 and the
    explicit matrices and metric recomputed from them, free of the model's round-off. Once as
    the model runs: the explicit matrices computed in the model's own dtype (float32, say),
    then cast to float64 — a float32 model is certified only if what it simulates with
    satisfies the inequality too. The metric ``P`` and the multiplier ``Λ`` are not used to
    simulate, so both checks take them from the exact construction.
    """
    with jax.enable_x64(True):  # else the cast to float64 would silently give float32
        exact = _float64(_certificate_data(to_dtype(model, jnp.float64)))
        as_run = _float64(_certificate_data(model))
    P = exact.P
    M_exact = _dissipation(model, exact)
    M_run = _dissipation(model, as_run._replace(P=P, multiplier=exact.multiplier))
    return LMIReport(
        float(np.linalg.eigvalsh(M_exact).max()),
        float(np.linalg.eigvalsh((P + P.T) / 2).min()),
        float(np.linalg.eigvalsh(M_run).max()),
    )


def _float64(data: CertificateData) -> CertificateData:
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), data)


def _dissipation(model: AbstractRecurrentModel, data: CertificateData) -> np.ndarray:
    """The dissipation matrix of ``data`` (float64 arrays) with the model's rate and supply."""
    return dissipation_matrix(
        data.system,
        data.P,
        alpha_bar=model.alpha_bar,
        supply=model.supply,
        D11=data.D11,
        multiplier=data.multiplier,
    )


@eqx.filter_jit
def _certificate_data(model: AbstractRecurrentModel) -> CertificateData:
    """The model's `CertificateData`, with only the arrays of its explicit system."""
    data = model.certificate_data()
    return data._replace(system=eqx.filter(data.system, eqx.is_array))


def _pair_outputs(model, u_a, u_b):
    sys = model.explicit()
    x0 = jnp.zeros((*u_a.shape[:-2], model.nx), dtype=u_a.dtype)
    y_a = simulation.simulate(sys, x0, u_a)[1]
    y_b = simulation.simulate(sys, x0, u_b)[1]
    return y_a, y_b


def _gain(model, dy, du):
    """``‖Δy‖ / ‖Δu‖`` per batch row."""
    return jnp.sqrt(jnp.sum(dy**2, axis=(-1, -2)) / jnp.sum(du**2, axis=(-1, -2)))


def _supply_violation(model, dy, du):
    """``−Σ s(Δy, Δu) / Σ|Δu|²`` per batch row: positive means the supply rate is violated."""
    return -jnp.sum(model.supply(dy, du), axis=-1) / jnp.sum(du**2, axis=(-1, -2))


@eqx.filter_jit
def _ascend(model, params, score, steps: int, lr: float):
    """``steps`` Adam steps of gradient ascent of ``score``; the best score seen (compiled once
    per model structure, so repeated checks of a model during training do not recompile)."""
    opt = optax.adam(lr)

    def objective(params):
        u_a, du = params
        y_a, y_b = _pair_outputs(model, u_a, u_a + du)
        return score(model, y_b - y_a, du)

    def negated(params):
        scores = objective(params)
        return -jnp.sum(scores), scores

    def step(carry, _):
        params, state = carry
        (_, scores), grads = jax.value_and_grad(negated, has_aux=True)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), jnp.max(scores)

    (params, _), best = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return jnp.maximum(jnp.max(best), jnp.max(objective(params)))


def _adversarial_search(model, score, *, horizon, batch, steps, lr, key) -> float:
    """Gradient ascent of ``score(model, Δy, Δu)`` (one value per batch row) over input pairs.

    Starting points span several input amplitudes and perturbation sizes, since a piecewise
    linear φ has different gains in different regions. Returns the best score seen.
    """
    dtype = model.dtype
    k1, k2 = jax.random.split(key)
    amp = jnp.logspace(-2, 1, batch, dtype=dtype)[:, None, None]
    u_a = amp * jax.random.normal(k1, (batch, horizon, model.nu), dtype)
    du = jnp.flip(amp, 0) * jax.random.normal(k2, (batch, horizon, model.nu), dtype)
    return float(_ascend(model, (u_a, du), score, steps, lr))


def lipschitz_lower_bound(
    model: AbstractRecurrentModel,
    *,
    horizon: int = 32,
    batch: int = 16,
    steps: int = 300,
    lr: float = 1e-2,
    key: PRNGKeyArray,
) -> float:
    """The largest ``‖Δy‖/‖Δu‖`` found by gradient ascent over input pairs from one state.

    A lower bound on the model's incremental ℓ2 gain: for a γ-Lipschitz model it never
    exceeds γ.
    """
    return _adversarial_search(
        model, _gain, horizon=horizon, batch=batch, steps=steps, lr=lr, key=key
    )


def worst_supply(
    model: AbstractRecurrentModel,
    *,
    horizon: int = 32,
    batch: int = 16,
    steps: int = 300,
    lr: float = 1e-2,
    key: PRNGKeyArray,
) -> float:
    """The largest ``−Σ s(Δy, Δu) / Σ|Δu|²`` found by gradient ascent over input pairs.

    The (Q, S, R) certificate says this is never positive (from equal initial states).
    """
    if model.supply is None:
        raise ValueError("worst_supply needs a model with a supply rate (Q, S, R).")
    return _adversarial_search(
        model, _supply_violation, horizon=horizon, batch=batch, steps=steps, lr=lr, key=key
    )


def state_trajectory(
    sys: ExplicitSystem, x0: Float[Array, "... nx"], u: Float[Array, "... T nu"]
) -> Float[Array, "... T+1 nx"]:
    """States ``x_0 … x_T`` of a simulation (for checks; `simulation.simulate` is faster)."""

    def body(x, u_t):
        x_next, _ = simulation.step(sys, x, u_t)
        return x_next, x_next

    _, xs = jax.lax.scan(body, x0, jnp.moveaxis(u, -2, 0))
    return jnp.moveaxis(jnp.concatenate([x0[None], xs], axis=0), 0, -2)


def contraction_rate(
    model: AbstractRecurrentModel,
    x0_a: Float[Array, "... nx"],
    x0_b: Float[Array, "... nx"],
    u: Float[Array, "... T nu"],
) -> float:
    """The largest per-step ratio ``‖Δx_{t+1}‖_P / ‖Δx_t‖_P`` of two trajectories, same input.

    Contraction with rate ``ᾱ`` means it is at most ``ᾱ``. Steps where the distance has shrunk
    to round-off (below ``1e4·machine-eps`` of the initial distance) are left out.
    """
    sys = model.explicit()
    P = model.certificate()
    dx = state_trajectory(sys, x0_a, u) - state_trajectory(sys, x0_b, u)
    norms = jnp.sqrt(jnp.einsum("...i,ij,...j->...", dx, P, dx))
    resolvable = norms[..., :-1] > 1e4 * jnp.finfo(norms.dtype).eps * norms[..., :1]
    ratios = jnp.where(resolvable, norms[..., 1:] / jnp.where(resolvable, norms[..., :-1], 1), 0)
    return float(jnp.max(ratios))
