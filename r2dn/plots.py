"""PNG plots of training curves and predictions.

Figures are built with matplotlib's object API and rendered by its Agg backend, without pyplot:
no display is needed and the global backend is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from r2dn.metrics import ArrayLike, nrmse


def plot_loss(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Plot loss curves against the epoch on a log scale; save a PNG at `path` and return it.

    Args:
        history: one loss series per name, e.g. `{"train": [...], "validation": [...]}`;
            entry `k` of a series is the loss after epoch `k + 1`.
        path: where to write the PNG; missing parent folders are created.
    """
    if not history or not all(len(losses) for losses in history.values()):
        raise ValueError(
            f"history needs non-empty loss series, e.g. {{'train': [0.9, 0.5]}}, got {history}"
        )
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for name, losses in history.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, marker=".", label=name)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    ax.grid(which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_prediction(
    y: ArrayLike,
    y_hat: ArrayLike,
    path: str | Path,
    *,
    dt: float = 1.0,
    names: Sequence[str] | None = None,
    washout: int = 0,
) -> Path:
    """Plot measured against predicted outputs, one panel per channel; save a PNG at `path`.

    Args:
        y: measured outputs, shape `(T, ny)`.
        y_hat: predicted outputs, shape `(T, ny)`.
        path: where to write the PNG; missing parent folders are created.
        dt: sampling time in seconds, for the time axis.
        names: one name per output channel; default `y0, y1, ...`.
        washout: initial steps to shade and leave out of the NRMSE shown in each title.
    """
    y, y_hat = np.asarray(y), np.asarray(y_hat)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (T, ny) (one record), got {y.shape}")
    errors = nrmse(y, y_hat, washout)  # also checks the shapes and the washout
    steps, ny = y.shape
    names = tuple(names) if names is not None else tuple(f"y{i}" for i in range(ny))
    if len(names) != ny:
        raise ValueError(f"{len(names)} names {names} given for {ny} output channels")
    time = np.arange(steps) * dt
    fig = Figure(figsize=(8, 0.6 + 2.2 * ny), layout="constrained")
    axes = fig.subplots(ny, 1, sharex=True, squeeze=False)[:, 0]
    for ax, name, channel, channel_hat, error in zip(
        axes, names, y.T, y_hat.T, errors, strict=True
    ):
        ax.plot(time, channel, color="black", linewidth=1, label="measured")
        ax.plot(time, channel_hat, color="tab:orange", linewidth=1, label="predicted")
        if washout:
            ax.axvspan(time[0], time[washout], color="grey", alpha=0.2, label="washout")
        ax.set(ylabel=name, title=f"{name}: NRMSE {error:.3g}")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3)
    axes[-1].set_xlabel("time [s]")
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path
