"""Explicit state-space models and their simulation with one ``lax.scan`` over time.

Every recurrent model in the library (R2DN, REN) evaluates as

    x⁺ = A x + B1 w + B2 u + bx,   w = φ(C1 x + D12 u + bv),   y = C2 x + D21 w + D22 u + by,

and differs only in φ: a 1-Lipschitz network for an R2DN, an equilibrium layer for a REN.
Work that does not depend on the state (input projections, output maps) is done for all time
steps at once outside the scan.

``A`` is a dense array, or a `DiagonalPlusLowRank` for a structured (DPLR) LTI part. A dense
model keeps a plain array, so that everything reading ``sys.A`` (certificates, export, users)
is unchanged; the structured one is a small final module with the one operation simulation needs,
``x @ A.T`` for rows ``x`` (``x ⊙ λ + (xV)Uᵀ``, O(nx·k)), so that `step` and the generic scan
run either without branching. The fused R2DN recurrence stores the state map's matrices per
kind (`_DenseStateMap`, `_DPLRStateMap`) with its own tangent rule, so that neither simulation
nor its derivative forms an nx × nx matrix. (A lineax operator would also work, but its
``mv`` acts on one vector: batches need ``vmap``, and it brings a dependency for a two-line
product.)
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from r2dn._threads import limit_blas_threads
from r2dn.networks.activations import get_activation
from r2dn.networks.base import AbstractNonlinearity, DenseChain
from r2dn.parameterizations.dplr import DiagonalPlusLowRank, LowRank

#: Time steps per loop trip in the fused R2DN scans (``lax.scan(unroll=...)``). Unrolling
#: measured no faster on CPU (docs/benchmarks.md) and compiles more slowly.
UNROLL = 1

#: Rows (time steps × batch) per block of the derivative rule's tangent scan. Small enough that a
#: block's weight-gradient products stay in cache; large enough for efficient matmuls.
BLOCK_ROWS = 512


class ExplicitSystem(eqx.Module):
    """Explicit matrices of a recurrent model (named as in the design note) and its φ.

    ``A`` is dense, or diagonal plus low rank for a structured LTI part, whose ``B1`` is then a
    `LowRank` on the same ``U`` (so one step multiplies by ``U`` once).
    """

    A: Float[Array, "nx nx"] | DiagonalPlusLowRank
    B1: Float[Array, "nx nv"] | LowRank
    B2: Float[Array, "nx nu"]
    C1: Float[Array, "nv nx"]
    C2: Float[Array, "ny nx"]
    D12: Float[Array, "nv nu"]
    D21: Float[Array, "ny nv"]
    D22: Float[Array, "ny nu"]
    bx: Float[Array, " nx"]
    bv: Float[Array, " nv"]
    by: Float[Array, " ny"]
    phi: Callable[[Float[Array, "... nv"]], Float[Array, "... nv"]]

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """``(nu, nx, nv, ny)``."""
        return self.B2.shape[1], self.A.shape[0], self.C1.shape[0], self.C2.shape[0]


def real_array(name: str, a) -> Array:
    """``a`` as a JAX array of real numbers; a clear TypeError for anything else.

    >>> real_array("u", [[1, 2]]).shape
    (1, 2)
    """
    try:
        a = jnp.asarray(a)
    except TypeError as error:
        raise TypeError(
            f"{name} must be an array of real numbers; got {type(a).__name__} ({error})"
        ) from None
    if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)):
        raise TypeError(
            f"{name} must hold real numbers; got dtype {a.dtype} (take the real part, or "
            "convert with .astype(float), first)"
        )
    return a


def _check_inputs(sys: ExplicitSystem, x: Array, u: Array, *, sequence: bool) -> None:
    nu, nx, _, _ = sys.sizes
    u_form, min_rank = ("(..., T, nu)", 2) if sequence else ("(..., nu)", 1)
    if u.ndim < min_rank or u.shape[-1] != nu:
        raise ValueError(f"Expected u of shape {u_form} with nu={nu}; got shape {u.shape}.")
    if sequence and u.shape[-2] == 0:
        raise ValueError(f"u has no time steps (shape {u.shape}); give at least one step.")
    if x.ndim < 1 or x.shape[-1] != nx:
        raise ValueError(f"Expected a state of shape (..., nx) with nx={nx}; got shape {x.shape}.")
    batch_u = u.shape[:-2] if sequence else u.shape[:-1]
    try:
        jnp.broadcast_shapes(x.shape[:-1], batch_u)
    except ValueError:
        raise ValueError(
            f"The batch dimensions of the state {x.shape[:-1]} and of u {batch_u} do not "
            "broadcast together."
        ) from None


def step(
    sys: ExplicitSystem, x: Float[Array, "... nx"], u: Float[Array, "... nu"]
) -> tuple[Float[Array, "... nx"], Float[Array, "... ny"]]:
    """One time step: ``(x, u) ↦ (x⁺, y)``."""
    x, u = real_array("x", x), real_array("u", u)
    _check_inputs(sys, x, u, sequence=False)
    w = sys.phi(x @ sys.C1.T + u @ sys.D12.T + sys.bv)
    x_next = x @ sys.A.T + w @ sys.B1.T + u @ sys.B2.T + sys.bx
    y = x @ sys.C2.T + w @ sys.D21.T + u @ sys.D22.T + sys.by
    return x_next, y


def simulate(
    sys: ExplicitSystem, x0: Float[Array, "... nx"], u: Float[Array, "... T nu"]
) -> tuple[Float[Array, "... nx"], Float[Array, "... T ny"]]:
    """Run the model over a sequence; returns the final state and the outputs.

    Leading batch dimensions of ``x0`` and ``u`` broadcast against each other. When φ is a
    dense network with hidden layers (its `AbstractNonlinearity.dense_chain`, e.g. an R2DN's
    LBDN), a fused recurrence with its own derivative rule runs (see docs/benchmarks.md); any
    other φ takes one plain ``lax.scan`` over `step`'s equations.
    """
    x0, u = real_array("x0", x0), real_array("u", u)
    _check_inputs(sys, x0, u, sequence=True)
    limit_blas_threads()  # once per process; runs when traced, before anything executes
    nu, nx, _, ny = sys.sizes
    dtype = jnp.result_type(sys.A.dtype, x0, u)
    batch = jnp.broadcast_shapes(x0.shape[:-1], u.shape[:-2])
    T = u.shape[-2]
    # Time first and one batch axis: every per-step array is a (rows, n) matrix.
    x0 = jnp.broadcast_to(x0, (*batch, nx)).reshape(-1, nx).astype(dtype)
    u = jnp.broadcast_to(u, (*batch, T, nu)).reshape(-1, T, nu).astype(dtype)
    u = jnp.swapaxes(u, 0, 1)
    chain = sys.phi.dense_chain() if isinstance(sys.phi, AbstractNonlinearity) else None
    if chain is not None and len(chain.weights) > 1:
        xT, y = _simulate_lbdn(sys, chain, x0, u)
    else:
        xT, y = _simulate_generic(sys, x0, u)
    return xT.reshape(*batch, nx), jnp.swapaxes(y, 0, 1).reshape(*batch, T, ny)


def _simulate_generic(
    sys: ExplicitSystem, x0: Float[Array, "N nx"], u: Float[Array, "T N nu"]
) -> tuple[Float[Array, "N nx"], Float[Array, "T N ny"]]:
    """Any φ: input projections for all steps at once, then a scan over the state."""
    T, N = u.shape[:2]
    ux = (_rows(u) @ sys.B2.T + sys.bx).reshape(T, N, -1)
    uv = (_rows(u) @ sys.D12.T + sys.bv).reshape(T, N, -1)

    def body(x, inputs):
        ux_t, uv_t = inputs
        w = sys.phi(x @ sys.C1.T + uv_t)
        return x @ sys.A.T + w @ sys.B1.T + ux_t, (x, w)

    xT, (xs, ws) = jax.lax.scan(body, x0, (ux, uv))
    y = _rows(xs) @ sys.C2.T + _rows(ws) @ sys.D21.T + _rows(u) @ sys.D22.T + sys.by
    return xT, y.reshape(T, N, -1)


class _AbstractStateMap(eqx.Module):
    """How the state enters one step of the fused recurrence, and the state update.

    ``r = read(x)`` is every product of ``x`` the step needs (one matmul), ``first(r)`` its term
    of φ's first pre-activation (``x C1ᵀW₀``) and ``update(x, r, h, e) = x Aᵀ + h (W_L B1ᵀ) + e``.
    All three are linear, so the tangent scan applies them to the state tangent as they are.
    """

    @abc.abstractmethod
    def read(self, x: Float[Array, "N nx"]) -> Float[Array, "N m"]:
        """The products of ``x`` that `first` and `update` take."""

    @abc.abstractmethod
    def first(self, r: Float[Array, "N m"]) -> Float[Array, "N q1"]:
        """The state's term ``x C1ᵀW₀`` of φ's first pre-activation."""

    @abc.abstractmethod
    def update(
        self, x: Float[Array, "N nx"], r: Float[Array, "N m"], h: Float[Array, "N qL"], e: Array
    ) -> Float[Array, "N nx"]:
        """``x⁺`` from the state, its products ``r = read(x)``, ``h = σ(z_L)`` and the offset."""

    @abc.abstractmethod
    def tangent(
        self, d: "_AbstractStateMap", x: Array, r: Array, h: Array, de: Array
    ) -> tuple[Float[Array, "N q1"], Float[Array, "N nx"]]:
        """Tangents of ``first(read(x))`` and of ``x⁺`` for tangents ``d`` of this map's
        matrices (at the stored ``x``, ``r = read(x)`` and ``h``) and ``de`` of the offset."""


class _DenseStateMap(_AbstractStateMap):
    """``r = x G`` (``G = C1ᵀW₀``) and ``x⁺ = [x, h] S + e`` with ``S = [Aᵀ; W_L B1ᵀ]``."""

    G: Float[Array, "nx q1"]
    S: Float[Array, "nx+qL nx"]

    def read(self, x):
        return x @ self.G

    def first(self, r):
        return r

    def update(self, x, r, h, e):
        return jnp.concatenate([x, h], axis=-1) @ self.S + e

    def tangent(self, d, x, r, h, de):
        return d.read(x), d.update(x, r, h, de)


class _DPLRStateMap(_AbstractStateMap):
    """``A = diag(λ) + U Vᵀ`` and ``B1 = U Qᵀ`` (a DPLR core's ``B1`` is in ``U``'s span):

        r = x [C1ᵀ, V],   z₁ ∋ (x C1ᵀ) W₀,   x⁺ = x ⊙ λ + (x V + h P) Uᵀ + e,   P = W_L Q,

    two products with nx rows per step, O(nx·(2k + nv)), and nothing nx × nx.
    """

    diagonal: Float[Array, " nx"]
    R: Float[Array, "nx nv+k"]
    W0: Float[Array, "nv q1"]
    P: Float[Array, "qL k"]
    UT: Float[Array, "k nx"]

    def read(self, x):
        return x @ self.R

    def first(self, r):
        return r[..., : self.W0.shape[0]] @ self.W0

    def update(self, x, r, h, e):
        return x * self.diagonal + self._coefficients(r, h @ self.P) @ self.UT + e

    def tangent(self, d, x, r, h, de):
        dr = d.read(x)
        dx_next = x * d.diagonal + self._coefficients(dr, h @ d.P) @ self.UT
        dx_next = dx_next + self._coefficients(r, h @ self.P) @ d.UT + de
        return self.first(dr) + d.first(r), dx_next

    def _coefficients(self, r: Array, hP: Float[Array, "N k"]) -> Float[Array, "N k"]:
        """``x V + h P`` (the coefficients on ``U``) from ``r = read(x)`` and ``h P``."""
        return r[..., self.W0.shape[0] :] + hP


def _state_map(
    sys: ExplicitSystem, W_first: Float[Array, "nv q1"], W_last: Float[Array, "qL nv"]
) -> _AbstractStateMap:
    """The state map of ``sys`` (dense or DPLR ``A``) with φ's outer matrices fused in."""
    A, B1 = sys.A, sys.B1
    if not isinstance(A, DiagonalPlusLowRank):
        return _DenseStateMap(sys.C1.T @ W_first, jnp.concatenate([A.T, W_last @ B1.T]))
    if isinstance(B1, LowRank) and B1.U is A.U:  # built together by the DPLR core
        U, V, Q = A.U, A.V, B1.V
    else:  # any B1: widen the factors, A = λ + [U, B1][V, 0]ᵀ and B1 = [U, B1][0, I]ᵀ
        B1 = B1.dense() if isinstance(B1, LowRank) else B1
        U = jnp.concatenate([A.U, B1], axis=1)
        V = jnp.concatenate([A.V, jnp.zeros_like(B1)], axis=1)
        Q = jnp.concatenate(
            [jnp.zeros((B1.shape[1], A.rank), B1.dtype), jnp.eye(B1.shape[1], dtype=B1.dtype)], 1
        )
    return _DPLRStateMap(
        A.diagonal, jnp.concatenate([sys.C1.T, V], axis=1), W_first, W_last @ Q, U.T
    )


class _Recurrence(eqx.Module):
    """An R2DN's state recurrence with φ's matrices fused into their neighbours:

        z₁ = x C1ᵀW₀ + c_t,   z_{k+1} = σ(z_k) M_k + b_{k+1},   x⁺ = x Aᵀ + σ(z_L) (W_L B1ᵀ) + e_t,

    with every term that depends on the input alone in the offsets ``c_t, e_t``: per step, one
    matmul per hidden layer and the state map's.
    """

    mids: tuple[Float[Array, "q q"], ...]
    biases: tuple[Float[Array, " q"], ...]
    state: _AbstractStateMap
    activation: str = eqx.field(static=True)

    def hidden(self, z1: Float[Array, "N q1"]) -> list[Array]:
        """Pre-activations ``z₁ … z_L`` of φ at one time step, from ``z₁``."""
        sigma = get_activation(self.activation)
        zs = [z1]
        for M, b in zip(self.mids, self.biases, strict=True):
            zs.append(sigma(zs[-1]) @ M + b)
        return zs


def _simulate_lbdn(
    sys: ExplicitSystem, phi: DenseChain, x0: Float[Array, "N nx"], u: Float[Array, "T N nu"]
) -> tuple[Float[Array, "N nx"], Float[Array, "T N ny"]]:
    """φ a dense network: fold ``C1`` into its first matrix and ``B1``, ``D21`` into its last.

    All input terms (state, first-layer and output offsets) are one matmul over every time step
    before the scan; the output map is applied to the stored states after it. Both act on
    (T·N)-row matrices, so that their weight gradients are plain matrix products too.
    """
    W_first, W_last, b_last = phi.weights[0], phi.weights[-1], phi.biases[-1]
    nx, q1 = sys.A.shape[0], W_first.shape[1]
    rec = _Recurrence(
        mids=phi.weights[1:-1],
        biases=phi.biases[1:-1],
        state=_state_map(sys, W_first, W_last),
        activation=phi.activation,
    )
    U = jnp.concatenate([sys.B2.T, sys.D12.T @ W_first, sys.D22.T], axis=1)
    offset = jnp.concatenate(
        [sys.bx + b_last @ sys.B1.T, sys.bv @ W_first + phi.biases[0], sys.by + b_last @ sys.D21.T]
    )
    T, N = u.shape[:2]
    e, c, yu = jnp.split(_rows(u) @ U + offset, [nx, nx + q1], axis=-1)
    xT, xs, h_last = _lbdn_scan(rec, x0, e.reshape(T, N, nx), c.reshape(T, N, q1))
    y = _rows(xs) @ sys.C2.T + _rows(h_last) @ (W_last @ sys.D21.T) + yu
    return xT, y.reshape(T, N, -1)


def _run(
    rec: _Recurrence, x0: Array, e: Array, c: Array, *, keep_layers: bool
) -> tuple[Array, tuple[Array, ...]]:
    """The recurrence over time: ``x_T`` and, per step, ``x_t`` with ``σ(z_L)`` (or with the
    state's products ``r_t`` and all ``z_k``, which the derivative rule reads)."""
    sigma = get_activation(rec.activation)

    def body(x, inputs):
        e_t, c_t = inputs
        r = rec.state.read(x)
        zs = rec.hidden(rec.state.first(r) + c_t)
        h = sigma(zs[-1])
        return rec.state.update(x, r, h, e_t), ((x, r, zs) if keep_layers else (x, h))

    return jax.lax.scan(body, x0, (e, c), unroll=UNROLL)


@jax.custom_jvp
def _lbdn_scan(
    rec: _Recurrence, x0: Float[Array, "N nx"], e: Float[Array, "T N nx"], c: Float[Array, "T N q1"]
) -> tuple[Float[Array, "N nx"], Float[Array, "T N nx"], Float[Array, "T N qL"]]:
    """Final state, states ``x_0 … x_{T−1}`` and last hidden activations ``σ(z_L)``."""
    xT, (xs, hs) = _run(rec, x0, e, c, keep_layers=False)
    return xT, xs, hs


@_lbdn_scan.defjvp
def _lbdn_scan_jvp(primals, tangents):
    """Tangents by a linear scan that carries only the state tangent.

    The terms that do not depend on the state tangent (weight tangents times stored states and
    activations) are formed for many steps and rows at once, outside the step loop. Reverse mode
    transposes this: the reverse scan carries only the state adjoint, and weight gradients are
    large matmuls over time and batch, as cuDNN does for RNNs. Time is cut into blocks of about
    `BLOCK_ROWS` rows so that a block's products stay in cache; each block recomputes its
    activations from the stored pre-activations (``jax.checkpoint``), which are all that
    reverse mode keeps.
    """
    (rec, x0, e, c), (d_rec, dx0, de, dc) = primals, tangents
    sigma = get_activation(rec.activation)
    xT, (xs, rs, zs) = _run(rec, x0, e, c, keep_layers=True)

    def tangent_step(dx, inputs):
        fz, fx, slopes = inputs
        dr = rec.state.read(dx)
        dh = slopes[0] * (rec.state.first(dr) + fz[0])
        for M, fz_k, s_k in zip(rec.mids, fz[1:], slopes[1:], strict=True):
            dh = s_k * (dh @ M + fz_k)
        return rec.state.update(dx, dr, dh, fx), (dx, dh)

    @jax.checkpoint
    def block(dx, inputs):
        xs_b, rs_b, zs_b, de_b, dc_b = inputs
        hs = [sigma(z) for z in zs_b]
        slopes = [jax.jvp(sigma, (z,), (jnp.ones_like(z),))[1] for z in zs_b]
        # On (steps·N)-row matrices, so that each weight gradient is one plain matrix product.
        fz1, fx = rec.state.tangent(
            d_rec.state, _rows(xs_b), _rows(rs_b), _rows(hs[-1]), _rows(de_b)
        )
        fz = [fz1 + _rows(dc_b)] + [
            _rows(h) @ dM + db for h, dM, db in zip(hs[:-1], d_rec.mids, d_rec.biases, strict=True)
        ]
        fz, fx = jax.tree.map(lambda f: f.reshape(*xs_b.shape[:2], -1), (fz, fx))
        return jax.lax.scan(tangent_step, dx, (fz, fx, slopes), unroll=UNROLL)

    T, N = xs.shape[:2]
    steps = max(1, min(T, BLOCK_ROWS // N))
    whole = T - T % steps
    stored = (xs, rs, zs, de, dc)
    blocks = jax.tree.map(lambda a: a[:whole].reshape(whole // steps, steps, *a.shape[1:]), stored)
    dx, (dxs, dhs) = jax.lax.scan(block, dx0, blocks)
    dxs, dhs = dxs.reshape(whole, *dxs.shape[2:]), dhs.reshape(whole, *dhs.shape[2:])
    if whole < T:
        dx, (dxs_rest, dhs_rest) = block(dx, jax.tree.map(lambda a: a[whole:], stored))
        dxs, dhs = jnp.concatenate([dxs, dxs_rest]), jnp.concatenate([dhs, dhs_rest])
    return (xT, xs, sigma(zs[-1])), (dx, dxs, dhs)


def _rows(a: Float[Array, "T N n"]) -> Float[Array, "T*N n"]:
    return a.reshape(-1, a.shape[-1])
