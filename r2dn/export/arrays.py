"""A model as plain NumPy arrays: what every export target writes out.

`export_arrays` takes a model (or a `r2dn.io.TrainedModel`) and returns an `Export`:

- ``certified``: the explicit matrices ``A … by`` and φ (an R2DN's dense chain, a REN's
  ``D11``) that `r2dn.certificates.check_lmi` checks, with the metric ``P`` and the supply rate,
  so that anyone can re-check the certificate from the exported arrays;
- ``deployed``: the same model with φ multiplied out as `r2dn.simulation.simulate` does it
  (``C1`` folded into φ's first matrix, ``B1`` and ``D21`` into its last), in one step form
  shared by R2DN and REN (row vectors, ``x`` the state, ``u`` the normalised input):

      [e, c, y_u] = u U + offset,   z = x G + c,   h = φ̂(z),
      x⁺ = [x, h] S + e,            y = x Cy + h Hy + y_u,

  where ``φ̂`` is the hidden layers ``z ← σ(z) M_k + b_k`` then ``h = σ(z)`` (R2DN), or the
  equilibrium ``h_i = σ(z_i + Σ_{j<i} D11_ij h_j)`` solved row by row (REN);
- the normaliser, so that the exported step takes and returns physical units as
  `r2dn.io.TrainedModel.predict` does (the identity for a bare model).

The explicit form is computed in the export dtype (as JAX runs the model cast to it), the
fusions in float64 from those values, and the deployed arrays rounded to the export dtype.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import equinox as eqx
import jax
import numpy as np

from r2dn.certificates import check_lmi, dissipation_matrix, to_dtype
from r2dn.io import TrainedModel
from r2dn.models import AbstractRecurrentModel
from r2dn.networks.base import AbstractNonlinearity
from r2dn.networks.equilibrium import EquilibriumLayer
from r2dn.parameterizations import SupplyRate

#: The floating-point types an export can compute in.
DTYPES = ("float32", "float64")
#: Names of the explicit matrices, in the order of the design note.
MATRICES = ("A", "B1", "B2", "C1", "C2", "D12", "D21", "D22", "bx", "bv", "by")


@dataclass(frozen=True)
class Certified:
    """The explicit model and its certificate, as float64 arrays (values of the export dtype).

    ``weights``/``biases`` are φ's dense chain (an R2DN); ``D11`` and ``multiplier`` are a
    REN's equilibrium and IQC multiplier (both ``None`` for an R2DN).
    """

    matrices: dict[str, np.ndarray]
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    D11: np.ndarray | None
    multiplier: np.ndarray | None
    P: np.ndarray
    alpha_bar: float
    supply: SupplyRate | None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every array by name (``W0, …, c0, …`` for φ's chain); `from_arrays` inverts it."""
        named = dict(self.matrices, P=self.P, alpha_bar=np.float64(self.alpha_bar))
        named |= {f"W{k}": W for k, W in enumerate(self.weights)}
        named |= {f"c{k}": b for k, b in enumerate(self.biases)}
        for name in ("D11", "multiplier"):
            if getattr(self, name) is not None:
                named[name] = getattr(self, name)
        if self.supply is not None:
            named |= dict(Q=self.supply.Q, S=self.supply.S, R=self.supply.R)
        return named

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Certified:
        """Inverse of `to_arrays`."""
        a = {name: np.asarray(arrays[name], dtype=np.float64) for name in arrays}
        layers = sum(name[0] == "W" and name[1:].isdigit() for name in a)
        return cls(
            matrices={k: a[k] for k in MATRICES},
            weights=tuple(a[f"W{k}"] for k in range(layers)),
            biases=tuple(a[f"c{k}"] for k in range(layers)),
            D11=a.get("D11"),
            multiplier=a.get("multiplier"),
            P=a["P"],
            alpha_bar=float(a["alpha_bar"]),
            supply=SupplyRate(a["Q"], a["S"], a["R"]) if "Q" in a else None,
        )

    def max_eigenvalue(self) -> float:
        """Largest eigenvalue of the section-6 dissipation matrix of these arrays (must be < 0).

        The check of what is deployed: `r2dn.certificates.dissipation_matrix` of the exported
        matrices themselves.
        """
        M = dissipation_matrix(
            SimpleNamespace(**self.matrices),
            self.P,
            alpha_bar=self.alpha_bar,
            supply=self.supply,
            D11=self.D11,
            multiplier=self.multiplier,
        )
        return float(np.linalg.eigvalsh(M).max())


@dataclass(frozen=True)
class Deployed:
    """The step form of the module docstring, every array in the export dtype."""

    U: np.ndarray  # (nu, nx + q1 + ny)
    offset: np.ndarray  # (nx + q1 + ny,)
    G: np.ndarray  # (nx, q1)
    mids: tuple[np.ndarray, ...]  # hidden-to-hidden matrices of an R2DN's φ
    mid_biases: tuple[np.ndarray, ...]
    D11: np.ndarray | None  # a REN's equilibrium (strictly lower triangular)
    S: np.ndarray  # (nx + qL, nx)
    Cy: np.ndarray  # (nx, ny)
    Hy: np.ndarray  # (qL, ny)
    u_mean: np.ndarray
    u_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    activation: str

    @property
    def sizes(self) -> dict[str, int]:
        """``nu, nx, ny``, the width ``q1`` of φ's input and ``qL`` of its output ``h``."""
        nx, ny = self.Cy.shape
        return dict(nu=self.U.shape[0], nx=nx, ny=ny, q1=self.G.shape[1], qL=self.Hy.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name (``M0, M1, …`` and ``b0, …`` for the hidden layers)."""
        named = {k: getattr(self, k) for k in ("U", "offset", "G", "S", "Cy", "Hy")}
        named |= {f"M{k}": M for k, M in enumerate(self.mids)}
        named |= {f"b{k}": b for k, b in enumerate(self.mid_biases)}
        if self.D11 is not None:
            named["D11"] = self.D11
        return named | {k: getattr(self, k) for k in ("u_mean", "u_std", "y_mean", "y_std")}


@dataclass(frozen=True)
class Export:
    """Everything an export target writes: the arrays and a description of the model."""

    certified: Certified
    deployed: Deployed
    dtype: str
    description: dict[str, str]  # model kind, sizes, supply rate, certificate: for headers


def export_arrays(model: AbstractRecurrentModel | TrainedModel, dtype: str | None = None) -> Export:
    """The arrays of ``model`` (a bare model or a `TrainedModel`) in ``dtype`` (default: its own).

    >>> import jax, r2dn
    >>> model = r2dn.LipschitzR2DN(1, 4, 3, 1, hidden=(8,), gamma=2.0, key=jax.random.key(0))
    >>> ex = export_arrays(model, "float64")
    >>> ex.deployed.sizes, ex.certified.max_eigenvalue() < 0
    ({'nu': 1, 'nx': 4, 'ny': 1, 'q1': 8, 'qL': 8}, True)
    """
    trained = model if isinstance(model, TrainedModel) else None
    model = trained.model if trained else model
    if not isinstance(model, AbstractRecurrentModel):
        raise TypeError(
            f"export needs an r2dn model or a TrainedModel (r2dn.load_model); got "
            f"{type(model).__name__}."
        )
    dtype = np.dtype(model.dtype if dtype is None else dtype).name
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {dtype!r}.")
    with jax.enable_x64(True):  # else a cast to float64 would silently give float32
        cast = to_dtype(model, dtype)
        certified, activation = _certified(cast)
        report = check_lmi(cast)
    if trained is None:
        norm = (np.zeros(model.nu), np.ones(model.nu), np.zeros(model.ny), np.ones(model.ny))
    else:
        n = trained.normalizer
        norm = (n.u_mean, n.u_std, n.y_mean, n.y_std)
    deployed = deploy(certified, activation, norm, dtype)
    description = _describe(model, trained, report, certified, activation, dtype)
    return Export(certified, deployed, dtype, description)


def _certified(model: AbstractRecurrentModel) -> tuple[Certified, str]:
    """The model's certificate data as float64 arrays, and φ's activation."""
    # Compiled: one program is far quicker to build than the many small ones of eager mode.
    data = eqx.filter_jit(type(model).certificate_data)(model)
    as_array = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    phi = data.system.phi
    chain = phi.dense_chain() if isinstance(phi, AbstractNonlinearity) else None
    if chain is not None:
        weights, biases, activation = chain
    elif isinstance(phi, EquilibriumLayer):
        weights, biases, activation = (), (), phi.activation
    else:
        raise TypeError(
            f"cannot export a model whose φ is a {type(phi).__name__}: only dense networks "
            "(R2DN) and equilibrium layers (REN) have a C and NumPy form."
        )
    certified = Certified(
        matrices={k: as_array(getattr(data.system, k)) for k in MATRICES},
        weights=tuple(map(as_array, weights)),
        biases=tuple(map(as_array, biases)),
        D11=None if data.D11 is None else as_array(data.D11),
        multiplier=None if data.multiplier is None else as_array(data.multiplier),
        P=as_array(data.P),
        alpha_bar=model.alpha_bar,
        supply=model.supply,
    )
    return certified, activation


def deploy(
    c: Certified,
    activation: str,
    normalizer: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    dtype: str,
) -> Deployed:
    """The step form of ``c`` (module docstring), fused in float64 and rounded to ``dtype``.

    An R2DN's φ ``h ↦ σ(⋯σ(h W₀ + b₀)⋯) W_L + b_L`` meets ``C1`` on its input and ``B1, D21``
    on its output: ``G = C1ᵀW₀``, ``S = [Aᵀ; W_L B1ᵀ]``, ``Hy = W_L D21ᵀ``. Without hidden
    layers φ is affine and the whole model linear: it is folded into ``S, U, Cy`` (``q = 0``).
    """
    m = c.matrices
    A, B1, B2, C1, C2, D12, D21, D22 = (m[k].T for k in MATRICES[:8])  # row-vector form
    bx, bv, by = m["bx"], m["bv"], m["by"]
    mids, mid_biases = (), ()
    if c.D11 is not None:  # REN: φ is the equilibrium of D11
        G, S, Hy, Cy = C1, np.vstack([A, B1]), D21, C2
        U = np.hstack([B2, D12, D22])
        offset = np.concatenate([bx, bv, by])
    elif len(c.weights) > 1:  # R2DN with hidden layers
        W0, WL, b0, bL = c.weights[0], c.weights[-1], c.biases[0], c.biases[-1]
        mids, mid_biases = c.weights[1:-1], c.biases[1:-1]
        G, S, Hy, Cy = C1 @ W0, np.vstack([A, WL @ B1]), WL @ D21, C2
        U = np.hstack([B2, D12 @ W0, D22])
        offset = np.concatenate([bx + bL @ B1, bv @ W0 + b0, by + bL @ D21])
    else:  # R2DN whose φ is affine: w = v W₀ + b₀
        (W0,), (b0,) = c.weights, c.biases
        nx = A.shape[0]
        G, S, Hy = np.zeros((nx, 0)), A + C1 @ W0 @ B1, np.zeros((0, C2.shape[1]))
        Cy = C2 + C1 @ W0 @ D21
        U = np.hstack([B2 + D12 @ W0 @ B1, D22 + D12 @ W0 @ D21])
        w0 = bv @ W0 + b0
        offset = np.concatenate([bx + w0 @ B1, by + w0 @ D21])
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return Deployed(
        U=cast(U),
        offset=cast(offset),
        G=cast(G),
        mids=tuple(map(cast, mids)),
        mid_biases=tuple(map(cast, mid_biases)),
        D11=None if c.D11 is None else cast(np.tril(c.D11, -1)),
        S=cast(S),
        Cy=cast(Cy),
        Hy=cast(Hy),
        u_mean=cast(normalizer[0]),
        u_std=cast(normalizer[1]),
        y_mean=cast(normalizer[2]),
        y_std=cast(normalizer[3]),
        activation=activation,
    )


def _supply_text(model: AbstractRecurrentModel) -> str:
    supply = model.supply
    if supply is None:
        return "none (contracting only)"
    if supply.gamma is not None:
        return f"Lipschitz, gamma = {supply.gamma:g}"
    return (
        f"(Q, S, R) with Q = {supply.Q.tolist()}, S = {supply.S.tolist()}, R = {supply.R.tolist()}"
    )


def _describe(model, trained, report, certified, activation, dtype: str) -> dict[str, str]:
    """The lines of an exported file's header comment."""
    kind = trained.spec.kind if trained else type(model).__name__
    sizes = f"nu = {model.nu}, nx = {model.nx}, nv = {model.nv}, ny = {model.ny}"
    if certified.D11 is None:
        sizes += f", hidden = {tuple(int(W.shape[1]) for W in certified.weights[:-1])}"
    worst = max(report.max_eigenvalue, report.max_eigenvalue_as_run)
    return {
        "model": kind,
        "sizes": sizes,
        "activation": activation,
        "contraction rate": f"alpha_bar = {model.alpha_bar:g}",
        "supply rate": _supply_text(model),
        "certificate": (
            f"{'holds' if report.holds else 'DOES NOT HOLD'}: largest LMI eigenvalue "
            f"{worst:.6g} (must be < 0), smallest eigenvalue of P "
            f"{report.min_eigenvalue_P:.6g} (must be > 0)"
        ),
        "units": "physical (normaliser applied)" if trained else "the model's own (no normaliser)",
        "dtype": dtype,
    }


#: C keywords (C99) and names the generated files use themselves.
_RESERVED = frozenset(
    [
        "auto",
        "break",
        "case",
        "char",
        "const",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extern",
        "float",
        "for",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "register",
        "restrict",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "typedef",
        "union",
        "unsigned",
        "void",
        "volatile",
        "while",
        "main",
        "numpy",
        "np",
        "runtime",
    ]
)


def check_name(name: str) -> None:
    """An export's name must be a C and Python identifier (it prefixes every C symbol).

    >>> check_name("f16_model")
    >>> check_name("2fast")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: the export name '2fast' must be a C and Python identifier ...
    """
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)) or (
        name in _RESERVED or keyword.iskeyword(name)
    ):
        raise ValueError(
            f"the export name {name!r} must be a C and Python identifier (letters, digits and "
            "underscores, not starting with a digit, not a keyword), e.g. 'f16_model'"
        )
