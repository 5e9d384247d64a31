"""The model options of ``r2dn fit``, generated from the model constructors of the registry.

Every keyword argument a kind in `r2dn.registry.MODELS` takes becomes an option with the
constructor's default, so a new argument (or a new kind) appears without editing the CLI.
Options a kind does not take are an error when given for it; the (Q, S, R) matrices come
from a file (``--qsr-file``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from r2dn.cli.common import CommandError
from r2dn.cli.options import Option, constructor_options, constructor_parameters
from r2dn.data import Normalizer
from r2dn.models.lti import LTI_PARTS
from r2dn.registry import MODELS

#: Constructor arguments that are not options: taken from the data (``nu``, ``ny``), set by the
#: named variant (``supply``), read from ``--qsr-file`` (``Q``, ``S``, ``R``), or not for the
#: command line (``key``; ``dtype``: float64 needs JAX's x64 mode; ``margin_rule``: the
#: "absolute" rule only rebuilds older files).
NOT_OPTIONS = ("nu", "ny", "key", "supply", "dtype", "Q", "S", "R", "margin_rule")

#: Defaults of ``r2dn fit`` where the constructors have none (sizes), or where a model that
#: identifies well out of the box wants another (the paper's long-memory initialisation).
PRESETS: dict[str, Any] = {"nx": 16, "nv": 16, "hidden": (32, 32), "init": "long_memory"}

#: Help of the model options; an argument not listed gets a generic text.
HELP = {
    "nx": "Number of states.",
    "nv": "Width of the nonlinear channel (φ's input).",
    "hidden": "Hidden widths of the R2DN's network φ, comma-separated.",
    "gamma": "Lipschitz bound γ (required for Lipschitz models). It bounds the model on the "
    "normalised (z-scored) signals, which is what it is trained on; --gamma-physical gives "
    "it in physical units instead.",
    "alpha_bar": "Contraction rate ᾱ in (0, 1].",
    "feedthrough": "Direct input-to-output term D22: zero (the paper's) or free (trainable). "
    "Default: free for every model, zero with --identity-output.",
    "init": "Initialisation: long_memory (A ≈ ᾱI, the paper's) or random.",
    "identity_output": "Output the state (y = x); needs as many outputs as states.",
    "activation": "Activation of φ (relu, tanh, ...).",
    "eps": "Margin ε > 0 that makes the certificate strict.",
    "lti": f"LTI part of the R2DN, one of: {', '.join(LTI_PARTS)} (dense: the paper's polar "
    "construction, cubic in --nx; dplr: diagonal plus low rank, linear in --nx, needs --rank).",
    "rank": "Rank of the low-rank factors of --lti dplr (required there, an integer ≥ 1).",
    "nu_index": "Input passivity index ν of a passive REN.",
    "rho_index": "Output passivity index ρ of a passive REN.",
}


def model_options() -> list[Option]:
    """One option per keyword argument of any model kind (`NOT_OPTIONS` left out)."""
    return constructor_options(MODELS, exclude=NOT_OPTIONS, defaults=PRESETS, docs=HELP)


def model_kwargs(
    kind: str,
    nu: int,
    ny: int,
    values: Mapping[str, Any],
    given: set[str],
    qsr_file: Path | None,
) -> dict[str, Any]:
    """Constructor arguments of ``kind`` from the model options' ``values``.

    ``None`` leaves an argument to the constructor's default (an error where it has none);
    an option in ``given`` (set by the user) that ``kind`` does not take is an error.
    """
    accepted = constructor_parameters(MODELS[kind])
    kwargs: dict[str, Any] = {"nu": nu, "ny": ny}
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if name not in accepted:
            if name in given:
                takers = [k for k in MODELS if name in constructor_parameters(MODELS[k])]
                raise CommandError(
                    f"{flag} applies to {', '.join(takers)} models only, not to {kind}"
                )
        elif value is not None:
            kwargs[name] = value
        elif accepted[name].default is inspect.Parameter.empty:
            what = HELP.get(name, "").split(" (")[0].rstrip(".")
            raise CommandError(f"a {kind} model needs {flag}" + (f", its {what}" if what else ""))
    if {"Q", "S", "R"} <= set(accepted):
        if qsr_file is None:
            raise CommandError(f"a {kind} model needs --qsr-file with the matrices Q, S and R")
        kwargs |= read_qsr(qsr_file)
    elif qsr_file is not None:
        raise CommandError(f"--qsr-file applies to (Q, S, R) models only, not to {kind}")
    return kwargs


def gamma_for_normalized(gamma_physical: float, normalizer: Normalizer) -> float:
    """The bound on the normalised model that bounds the physical one by ``gamma_physical``.

    The model maps ũ = (u − μ_u)/σ_u to ỹ = (y − μ_y)/σ_y, so ‖Δy‖ ≤ max σ_y ‖Δỹ‖
    ≤ max σ_y γ ‖Δũ‖ ≤ (max σ_y / min σ_u) γ ‖Δu‖: γ = γ_phys · min σ_u / max σ_y.

    >>> norm = Normalizer.from_record(u=np.array([[0.0], [4.0]]), y=np.array([[0.0], [1.0]]))
    >>> gamma_for_normalized(1.0, norm)  # σ_u = 2, σ_y = 0.5
    4.0
    """
    return float(gamma_physical * normalizer.u_std.min() / normalizer.y_std.max())


def read_qsr(path: Path) -> dict[str, list]:
    """Q, S, R from a ``.npz`` archive or a JSON object of nested lists."""
    if not path.is_file():
        raise FileNotFoundError(f"no (Q, S, R) file at {path}")
    fix = 'it needs the matrices Q, S and R, e.g. {"Q": [[-1]], "S": [[0]], "R": [[1]]}'
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                matrices = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, EOFError) as error:
            raise CommandError(f"{path} is not a readable .npz archive ({error}); {fix}") from None
    else:
        try:
            matrices = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CommandError(f"{path} is neither .npz nor valid JSON: {error}") from None
    if not isinstance(matrices, dict):
        raise CommandError(f"{path} holds a JSON {type(matrices).__name__}, not an object; {fix}")
    missing = [key for key in "QSR" if key not in matrices]
    if missing:
        raise CommandError(f"{path} lacks the matrices {missing}; {fix}")
    qsr = {}
    for key in "QSR":
        try:
            qsr[key] = np.asarray(matrices[key], dtype=float)
        except (TypeError, ValueError):
            raise CommandError(f"{key} in {path} is not a matrix of numbers; {fix}") from None
        if qsr[key].ndim != 2:
            raise CommandError(f"{key} in {path} has shape {qsr[key].shape}, not a matrix; {fix}")
    return {key: value.tolist() for key, value in qsr.items()}
