"""A recurrent model exported by r2dn, run with NumPy alone (no JAX, no r2dn).

`r2dn.export.to_numpy` writes this module as ``NAME.py`` beside the weights ``NAME.npz`` and
binds the model's functions at its end, so that a deployment needs only the two files:

    import NAME                     # NAME.py and NAME.npz in the same folder
    x = NAME.reset()                # the zero state, shape (nx,)
    x, y = NAME.step(x, u)          # one step in physical units: u (..., nu) -> y (..., ny)
    x, y = NAME.simulate(u)         # a sequence u (..., T, nu) from the zero state (or x=...)

The step (row vectors; ``x`` the state, ``u`` the normalised input):

    [e, c, y_u] = u U + offset,   z = x G + c,   h = φ̂(z),
    x⁺ = [x, h] S + e,            y = x Cy + h Hy + y_u,

with ``φ̂`` the hidden layers ``z ← σ(z) M_k + b_k``, then ``h = σ(z)`` (an R2DN), or the
equilibrium ``h_i = σ(z_i + Σ_{j<i} D11_ij h_j)`` solved row by row (a REN).
"""

from collections.abc import Mapping

import numpy as np

#: The activations of r2dn (slope in [0, 1]), as JAX computes them.
ACTIVATIONS = {
    "relu": lambda v: np.maximum(v, 0),
    "tanh": np.tanh,
    "sigmoid": lambda v: np.exp(-np.logaddexp(0, -v)),
    "softplus": lambda v: np.logaddexp(v, 0),
    "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))),
    "leaky_relu": lambda v: np.where(v >= 0, v, 0.01 * v),
    "identity": lambda v: v,
}


def load(path: str) -> "Model":
    """The model whose arrays are in the ``.npz`` file at ``path``."""
    with np.load(path, allow_pickle=False) as arrays:
        return Model(arrays)


class Model:
    """The exported step, reading its arrays from a mapping (e.g. ``np.load(NAME.npz)``)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        a = {name: np.asarray(arrays[name]) for name in arrays}
        self.sigma = ACTIVATIONS[str(a.pop("activation"))]
        self.dtype = a["U"].dtype
        layers = sum(name[0] == "M" and name[1:].isdigit() for name in a)
        self.mids = [(a[f"M{k}"], a[f"b{k}"]) for k in range(layers)]
        self.D11 = a.get("D11")
        self.a = a
        self.nx, self.ny = a["Cy"].shape
        self.q1 = a["G"].shape[1]

    def reset(self, *batch: int) -> np.ndarray:
        """The zero state, of shape ``(*batch, nx)``."""
        return np.zeros((*batch, self.nx), dtype=self.dtype)

    def _inputs(self, u: np.ndarray) -> np.ndarray:
        """``[e, c, y_u]`` of physical inputs ``u (..., nu)``."""
        a = self.a
        u = (np.asarray(u, dtype=self.dtype) - a["u_mean"]) / a["u_std"]
        return u @ a["U"] + a["offset"]

    def _advance(self, x: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x⁺, y)`` from the state and the input terms of one step."""
        a, nx = self.a, self.nx
        e, c, y_u = inputs[..., :nx], inputs[..., nx : nx + self.q1], inputs[..., nx + self.q1 :]
        z = x @ a["G"] + c
        if self.D11 is None:
            for M, b in self.mids:
                z = self.sigma(z) @ M + b
            h = self.sigma(z)
        else:
            h = np.zeros_like(z)
            for i in range(z.shape[-1]):
                h[..., i] = self.sigma(z[..., i] + h[..., :i] @ self.D11[i, :i])
        x_next = np.concatenate([x, h], axis=-1) @ a["S"] + e
        y = x @ a["Cy"] + h @ a["Hy"] + y_u
        return x_next, y * a["y_std"] + a["y_mean"]

    def step(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step ``(x, u) ↦ (x⁺, y)``, ``u`` and ``y`` in physical units."""
        return self._advance(np.asarray(x, dtype=self.dtype), self._inputs(u))

    def simulate(self, u: np.ndarray, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run over inputs ``u (..., T, nu)`` from ``x`` (zero if ``None``): ``(x_T, y)``."""
        inputs = self._inputs(u)
        x = self.reset(*inputs.shape[:-2]) if x is None else np.asarray(x, dtype=self.dtype)
        ys = []
        for t in range(inputs.shape[-2]):
            x, y = self._advance(x, inputs[..., t, :])
            ys.append(y)
        return x, np.stack(ys, axis=-2)
