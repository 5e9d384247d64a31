"""Judging a trained model: accuracy on data, plots, and the checks of its certificate."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from r2dn import metrics, plots
from r2dn.certificates import check_lmi, contraction_rate, lipschitz_lower_bound, worst_supply
from r2dn.data import SequenceData
from r2dn.io import TrainedModel
from r2dn.models import AbstractRecurrentModel

#: Relative slack of the float32 simulation checks (round-off, not modelling error).
RTOL = 1e-4


def evaluate(
    trained: TrainedModel, data: SequenceData, washout: int, *, y_hat: np.ndarray | None = None
) -> dict[str, Any]:
    """RMSE, NRMSE and fit (%) per output channel and overall, in physical units.

    The model runs freely from the zero state over each record of ``data`` (unless its
    prediction ``y_hat`` is given); the first ``washout`` steps are left out. Returns
    `r2dn.metrics.summary` plus the channel names.
    """
    return _summary(data, predict(trained, data) if y_hat is None else y_hat, washout)


def predict(trained: TrainedModel, data: SequenceData) -> np.ndarray:
    """Free simulation of ``trained`` on the inputs of ``data``, whose channels must match."""
    if (data.input_names, data.output_names) != (trained.input_names, trained.output_names):
        raise ValueError(
            f"the data's channels {data.input_names} → {data.output_names} differ from the "
            f"model's {trained.input_names} → {trained.output_names}"
        )
    return trained.predict(data.u)


def _summary(data: SequenceData, y_hat: np.ndarray, washout: int) -> dict[str, Any]:
    if washout > data.length - 2:
        raise ValueError(
            f"washout {washout} leaves fewer than 2 of the {data.length} steps to score; use a "
            f"washout of at most {data.length - 2}"
        )
    return metrics.summary(data.y, y_hat, washout) | {"output_names": list(data.output_names)}


def write_report(
    trained: TrainedModel,
    data: SequenceData,
    out_dir: str | Path,
    *,
    washout: int,
    history: Mapping[str, Sequence[float | None]] | None = None,
    y_hat: np.ndarray | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """Evaluate ``trained`` on ``data`` and write ``metrics.json`` and PNG plots to ``out_dir``.

    Plots: ``prediction.png`` (``prediction_<i>.png`` for record ``i`` when there are
    several), measured against predicted outputs; ``loss.png`` if a training ``history``
    (as in `r2dn.training.RunState`) is given. ``y_hat``: the model's prediction of ``data``
    if the caller already has it (it is not simulated again). Returns the metrics and the
    files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y_hat = predict(trained, data) if y_hat is None else y_hat
    summary = _summary(data, y_hat, washout)
    files = [out_dir / "metrics.json"]
    files[0].write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    for i in range(data.batch):
        name = "prediction.png" if data.batch == 1 else f"prediction_{i}.png"
        files.append(
            plots.plot_prediction(
                data.y[i],
                y_hat[i],
                out_dir / name,
                dt=data.dt,
                names=data.output_names,
                washout=washout,
            )
        )
    if history is not None:
        curves = {
            name: [np.nan if v is None else v for v in history[name]]
            for name in ("train", "validation")
            if any(v is not None for v in history.get(name, ()))
        }
        files.append(plots.plot_loss(curves, out_dir / "loss.png"))
    return summary, files


class Check(NamedTuple):
    """One check of a certificate: ``value`` must satisfy ``requirement``."""

    name: str
    value: float
    requirement: str
    passed: bool


def certify(
    model: AbstractRecurrentModel,
    *,
    key: jax.Array,
    horizon: int = 100,
    search_steps: int = 300,
) -> list[Check]:
    """Every check that applies to ``model``'s guarantees.

    - the dissipation LMI recomputed in float64 (`r2dn.certificates.check_lmi`), and ``P ≻ 0``;
    - contraction: the largest per-step shrink ratio of two trajectories from random states
      under random inputs (``horizon`` steps) is at most ``alpha_bar``;
    - γ-Lipschitz models: the gain an adversarial search finds is at most γ; (Q, S, R) models:
      the worst supply deficit it finds is at most 0 (`lipschitz_lower_bound`, `worst_supply`).

    The simulation checks run in the model's precision, with a relative slack of `RTOL`.
    """
    k_state, k_input, k_search = jax.random.split(key, 3)
    lmi = check_lmi(model)
    x0 = jax.random.normal(k_state, (2, 8, model.nx), model.dtype)
    u = jax.random.normal(k_input, (8, horizon, model.nu), model.dtype)
    rate = contraction_rate(model, x0[0], x0[1], u)
    alpha = model.alpha_bar
    checks = [
        Check(
            "dissipation LMI, largest eigenvalue (float64)",
            lmi.max_eigenvalue,
            "< 0",
            lmi.max_eigenvalue < 0,
        ),
        Check(
            "metric P, smallest eigenvalue (float64)",
            lmi.min_eigenvalue_P,
            "> 0",
            lmi.min_eigenvalue_P > 0,
        ),
        Check(
            "contraction, largest per-step ratio",
            rate,
            f"≤ ᾱ = {alpha:g}",
            rate <= alpha * (1 + RTOL),
        ),
    ]
    supply = model.supply
    if supply is not None and supply.gamma is not None:
        gain = lipschitz_lower_bound(model, steps=search_steps, key=k_search)
        checks.append(
            Check(
                "adversarial gain ‖Δy‖/‖Δu‖",
                gain,
                f"≤ γ = {supply.gamma:g}",
                gain <= supply.gamma * (1 + RTOL),
            )
        )
    elif supply is not None:
        worst = worst_supply(model, steps=search_steps, key=k_search)
        slack = RTOL * float(np.abs(supply.matrix()).max())
        checks.append(Check("adversarial supply deficit", worst, "≤ 0", worst <= slack))
    return checks
