"""The reaction–diffusion PDE of the paper's observer experiment (experiments note, section 2).

    ξ_t = ξ_zz + ½ ξ(1 − ξ)(ξ − ½)   on z ∈ [0, L],   ξ(t, 0) = ξ(t, L) = b_t,

with a random-walk boundary input ``b_{t+1} = clip(b_t + 0.05·N(0, 1), 0, 1)`` and the measurement
``y_t = [b_t, ξ_t(z = L/2)]``. An observer learns ``ξ_{t+1}`` from ``(ξ_t, y_t)``.

Discretisation (numbers of the note, checked): ``N_NODES = 51`` nodes over ``L = 10`` give
``DZ = 10/50 = 0.2``; central differences in space and explicit Euler in time with
``DT = 0.1·DZ² = 0.004``; ``SUBSTEPS = 4`` Euler steps per sample, so one sample spans 0.016
time units. The scheme is stable for ``DT ≤ DZ²/2``; here ``DT/DZ² = 0.1``. It is also monotone:
the reaction's slope on [0, 1] is at least −¼, so each Euler step is non-decreasing in every node
value while ``1 − 2·DT/DZ² − DT/4 ≥ 0``. Since 0 and 1 are zeros of the reaction, a profile and
boundary in [0, 1] then stay in [0, 1] (a discrete maximum principle).

Boundary convention: ``b_t`` is held over the whole sample from ``t`` to ``t + 1`` (zero-order
hold), so ``ξ_{t+1} = pde_step(ξ_t, b_t)`` and the boundary nodes of ``ξ_{t+1}`` equal ``b_t``,
which the observer measures. (The authors' code applies ``b_t`` from the second Euler substep
on; the first substep still sees the previous boundary.)
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from r2dn.models.base import check_sizes

N_NODES = 51
LENGTH = 10.0
DZ = LENGTH / (N_NODES - 1)
DT = 0.1 * DZ**2
SUBSTEPS = 4
#: Standard deviation of the boundary's random-walk increments.
BOUNDARY_NOISE = 0.05
#: The measured interior node, at the middle of the rod.
SENSOR_NODE = N_NODES // 2
#: Length of the observer's training record and of its test scenario, in samples.
TRAIN_STEPS = 100_000
TEST_STEPS = 2_000


class PDETrajectory(NamedTuple):
    """A record: profiles ``ξ_0..ξ_T``, boundary ``b_0..b_T``, measurements ``y_0..y_{T−1}``."""

    xi: Float[Array, "T+1 51"]
    b: Float[Array, " T+1"]
    y: Float[Array, "T 2"]


class ObserverData(NamedTuple):
    """One-step-ahead pairs: from ``(xi[t], y[t])`` the observer predicts ``xi_next[t]``."""

    xi: Float[Array, "T 51"]
    y: Float[Array, "T 2"]
    xi_next: Float[Array, "T 51"]


def reaction(xi: Float[Array, "..."]) -> Float[Array, "..."]:
    """The bistable source ``½ ξ(1 − ξ)(ξ − ½)``: zero at 0, ½ and 1."""
    return 0.5 * xi * (1 - xi) * (xi - 0.5)


def _with_boundary(interior: Float[Array, "... 49"], b: Float[Array, "..."]) -> Array:
    edge = jnp.broadcast_to(b, interior.shape[:-1])[..., None].astype(interior.dtype)
    return jnp.concatenate([edge, interior, edge], axis=-1)


def pde_step(xi: Float[Array, "... 51"], b: Float[Array, "..."]) -> Float[Array, "... 51"]:
    """One sample: ``SUBSTEPS`` Euler steps with the boundary nodes held at ``b``.

    The boundary nodes of ``xi`` are overwritten by ``b``: a number, or one value per profile of
    a batch ``xi`` of shape ``(..., 51)``.

    >>> import jax.numpy as jnp
    >>> xi = pde_step(jnp.zeros(51), 1.0)
    >>> xi.shape, float(xi[0]), float(xi[1]) > 0, float(xi[25])
    ((51,), 1.0, True, 0.0)
    """
    xi = jnp.asarray(xi)
    if xi.ndim < 1 or xi.shape[-1] != N_NODES:
        raise ValueError(f"Expected a profile of shape (..., {N_NODES}); got shape {xi.shape}.")
    xi = _with_boundary(xi[..., 1:-1], b)
    for _ in range(SUBSTEPS):
        inner = xi[..., 1:-1]
        laplacian = (xi[..., :-2] - 2 * inner + xi[..., 2:]) / DZ**2
        xi = _with_boundary(inner + DT * (laplacian + reaction(inner)), b)
    return xi


def pde_rollout(
    xi0: Float[Array, "... 51"], b: Float[Array, "... T"]
) -> Float[Array, "... T+1 51"]:
    """Profiles ``ξ_0 = xi0, ξ_1, …, ξ_T`` under boundary values ``b_0..b_{T−1}`` (one scan).

    >>> import jax.numpy as jnp
    >>> pde_rollout(jnp.zeros(51), jnp.ones(10)).shape
    (11, 51)
    """
    xi0, b = jnp.asarray(xi0), jnp.asarray(b)
    if b.ndim < 1:
        raise ValueError(f"Expected boundary values of shape (..., T); got shape {b.shape}.")
    batch = jnp.broadcast_shapes(xi0.shape[:-1], b.shape[:-1])
    xi0 = jnp.broadcast_to(xi0, (*batch, N_NODES))
    b = jnp.moveaxis(jnp.broadcast_to(b, (*batch, b.shape[-1])), -1, 0)

    def body(xi, b_t):
        xi_next = pde_step(xi, b_t)
        return xi_next, xi_next

    _, xis = jax.lax.scan(body, xi0, b)
    return jnp.concatenate([xi0[..., None, :], jnp.moveaxis(xis, 0, -2)], axis=-2)


def boundary_walk(T: int, key: PRNGKeyArray, b0: float) -> Float[Array, " T+1"]:
    """``b_0 = b0`` and ``b_{t+1} = clip(b_t + 0.05·N(0, 1), 0, 1)`` for ``t < T``."""
    if not 0 <= b0 <= 1:
        raise ValueError(f"The boundary value b0 must lie in [0, 1]; got {b0}.")
    noise = BOUNDARY_NOISE * jax.random.normal(key, (T,))

    def body(b, n):
        b_next = jnp.clip(b + n, 0.0, 1.0)
        return b_next, b_next

    b0 = jnp.asarray(b0, dtype=noise.dtype)
    _, bs = jax.lax.scan(body, b0, noise)
    return jnp.concatenate([b0[None], bs])


def measure(xi: Float[Array, "... 51"], b: Float[Array, "..."]) -> Float[Array, "... 2"]:
    """The sensors: ``[b, ξ(node SENSOR_NODE)]``."""
    return jnp.stack([jnp.broadcast_to(b, xi.shape[:-1]), xi[..., SENSOR_NODE]], axis=-1)


def simulate_pde(T: int, key: PRNGKeyArray, xi0: float | ArrayLike, b0: float) -> PDETrajectory:
    """Simulate ``T`` samples from the profile ``xi0`` (a number or 51 values) and boundary ``b0``.

    >>> import jax
    >>> traj = simulate_pde(100, jax.random.key(0), 0.0, 0.5)
    >>> traj.xi.shape, traj.b.shape, traj.y.shape
    ((101, 51), (101,), (100, 2))
    """
    check_sizes(T=T)
    xi0 = jnp.asarray(xi0, dtype=float)
    if xi0.shape not in ((), (N_NODES,)):
        raise ValueError(f"xi0 must be a number or {N_NODES} node values; got shape {xi0.shape}.")
    b = boundary_walk(T, key, b0)
    xi = pde_rollout(jnp.broadcast_to(xi0, (N_NODES,)), b[:-1])
    return PDETrajectory(xi, b, measure(xi[:-1], b[:-1]))


def observer_dataset(T: int, key: PRNGKeyArray) -> ObserverData:
    """The paper's training record as pairs: ``T`` (``TRAIN_STEPS``) samples from ``ξ_0 = b_0 = 0``.

    >>> import jax
    >>> data = observer_dataset(50, jax.random.key(0))
    >>> data.xi.shape, data.y.shape, data.xi_next.shape
    ((50, 51), (50, 2), (50, 51))
    """
    traj = simulate_pde(T, key, 0.0, 0.0)
    return ObserverData(traj.xi[:-1], traj.y, traj.xi[1:])


def observer_test_trajectory(T: int, key: PRNGKeyArray) -> PDETrajectory:
    """The paper's test scenario (``T = TEST_STEPS``): ``T`` samples from ``ξ_0 = 1``, ``b_0 = ½``.

    An observer (state ``x̂ ≈ ξ``, output ``x̂``) is run from ``x̂_0 = 0`` on the measurements,
    ``_, xi_hat = observer.simulate(observer.initial_state(), test.y)``, and its estimates are
    compared with ``xi[:-1]``. Estimating zero throughout scores an NRMSE of exactly 1:

    >>> import jax, jax.numpy as jnp
    >>> from r2dn.metrics import nrmse
    >>> test = observer_test_trajectory(TEST_STEPS, jax.random.key(1))
    >>> xi_hat = jnp.zeros((TEST_STEPS, N_NODES))
    >>> test.y.shape, float(nrmse(test.xi[:-1], xi_hat, per_channel=False))
    ((2000, 2), 1.0)
    """
    return simulate_pde(T, key, 1.0, 0.5)
