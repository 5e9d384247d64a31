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
    zoom: int | None = None,
) -> Path:
    """Plot measured against predicted outputs, one row of panels per channel; save a PNG.

    A long record drawn whole is a solid band, so each channel gets four panels: the whole
    record (measured and predicted), the error ``y - y_hat`` over it, a zoomed window at its
    end where single oscillations are visible, and the amplitude spectra of the measured and
    predicted outputs and of the error (after the washout, Hann-windowed).

    Args:
        y: measured outputs, shape `(T, ny)`.
        y_hat: predicted outputs, shape `(T, ny)`.
        path: where to write the PNG; missing parent folders are created.
        dt: sampling time in seconds, for the time and frequency axes.
        names: one name per output channel; default `y0, y1, ...`.
        washout: initial steps to shade and leave out of the NRMSE shown in each title.
        zoom: steps of the zoomed window; default 2 % of the record, at least 200.
    """
    y, y_hat = np.asarray(y), np.asarray(y_hat)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (T, ny) (one record), got {y.shape}")
    errors = nrmse(y, y_hat, washout)  # also checks the shapes and the washout
    steps, ny = y.shape
    names = tuple(names) if names is not None else tuple(f"y{i}" for i in range(ny))
    if len(names) != ny:
        raise ValueError(f"{len(names)} names {names} given for {ny} output channels")
    zoom = min(steps - washout, max(200, steps // 50) if zoom is None else zoom)
    window = slice(steps - zoom, steps)
    time = np.arange(steps) * dt
    freq = np.fft.rfftfreq(steps - washout, dt)
    taper = np.hanning(steps - washout)[:, None]

    def spectrum(x: np.ndarray) -> np.ndarray:
        return np.abs(np.fft.rfft(taper * (x[washout:] - x[washout:].mean(0)), axis=0))

    spectra = [spectrum(x) for x in (y, y_hat, y - y_hat)]
    fig = Figure(figsize=(12, 0.6 + 3.6 * ny), layout="constrained")
    rows = fig.subfigures(ny, 1, squeeze=False)[:, 0]
    for i, (row, name, error) in enumerate(zip(rows, names, errors, strict=True)):
        (full, zoomed), (residual, spectral) = row.subplots(2, 2)
        row.suptitle(f"{name}: NRMSE {error:.3g}")
        for ax, part in ((full, slice(None)), (zoomed, window)):
            ax.plot(time[part], y[part, i], color="black", linewidth=0.6, label="measured")
            ax.plot(
                time[part], y_hat[part, i], color="tab:orange", linewidth=0.6, label="predicted"
            )
            ax.set(ylabel=name)
            ax.grid(alpha=0.3)
        full.axvspan(time[window.start], time[-1], color="tab:blue", alpha=0.1, label="zoom")
        residual.sharex(full)
        residual.plot(time, y[:, i] - y_hat[:, i], color="tab:red", linewidth=0.6)
        residual.set(xlabel="time [s]", ylabel="error")
        residual.grid(alpha=0.3)
        if washout:
            for ax in (full, residual):
                ax.axvspan(time[0], time[washout], color="grey", alpha=0.2, label="washout")
        zoomed.set(title=f"last {zoom} steps")
        for series, color, label in zip(
            spectra,
            ("black", "tab:orange", "tab:red"),
            ("measured", "predicted", "error"),
            strict=True,
        ):
            spectral.semilogy(freq, series[:, i] + 1e-300, color=color, linewidth=0.6, label=label)
        spectral.set(xlabel="frequency [Hz]", ylabel="amplitude")
        spectral.grid(which="both", alpha=0.3)
        spectral.legend(fontsize="small", loc="upper right")
        full.legend(fontsize="small", ncols=4, loc="upper right")
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path
