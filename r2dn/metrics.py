"""Prediction-error metrics per output channel, for numpy and JAX arrays.

Each metric takes measured outputs `y` and predictions `y_hat` of shape `(..., T, ny)`, drops
the first `washout` steps (the transient from a model's initial state), and pools the leading
(batch) axes with time, giving one value per output channel, or one over all outputs with
`per_channel=False`. numpy in gives numpy out; JAX in gives JAX out, also under `jax.jit`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = np.ndarray | jax.Array


def rmse(y: ArrayLike, y_hat: ArrayLike, washout: int = 0, per_channel: bool = True) -> ArrayLike:
    """Root-mean-square error `sqrt(mean((y - y_hat)²))`, shape `(ny,)` or `()`."""
    xp, y, y_hat = _prepare(y, y_hat, washout)
    return xp.sqrt(xp.mean((y - y_hat) ** 2, axis=_axes(y, per_channel)))


def nrmse(y: ArrayLike, y_hat: ArrayLike, washout: int = 0, per_channel: bool = True) -> ArrayLike:
    """Normalised RMSE `sqrt(mean((y - y_hat)²) / mean(y²))`, as in the R2DN paper.

    Shape `(ny,)`, or `()` over all outputs with `per_channel=False` (the paper's number).
    Undefined (inf or nan) for an output that is identically zero.

    Example:
        >>> import numpy as np
        >>> y, y_hat = np.ones((4, 1)), np.array([[0.0], [1.0], [1.0], [1.0]])
        >>> nrmse(y, y_hat).tolist(), nrmse(y, y_hat, washout=1).tolist()
        ([0.5], [0.0])
    """
    xp, y, y_hat = _prepare(y, y_hat, washout)
    axes = _axes(y, per_channel)
    return xp.sqrt(xp.mean((y - y_hat) ** 2, axis=axes) / xp.mean(y**2, axis=axes))


def fit_percent(
    y: ArrayLike, y_hat: ArrayLike, washout: int = 0, per_channel: bool = True
) -> ArrayLike:
    """Fit `100 (1 - ‖y - y_hat‖ / ‖y - mean(y)‖)` in percent (100 is perfect).

    Means are per channel; with `per_channel=False` the norms run over all outputs.
    """
    xp, y, y_hat = _prepare(y, y_hat, washout)
    axes = _axes(y, per_channel)
    deviation = y - xp.mean(y, axis=_axes(y, True))
    error_norm = xp.sqrt(xp.sum((y - y_hat) ** 2, axis=axes))
    return 100 * (1 - error_norm / xp.sqrt(xp.sum(deviation**2, axis=axes)))


def summary(y: ArrayLike, y_hat: ArrayLike, washout: int = 0) -> dict[str, Any]:
    """All metrics as plain Python numbers (JSON-serialisable).

    Returns `{"washout": int, "per_channel": {metric: [ny floats]}, "overall": {metric: float}}`
    for the metrics `rmse`, `nrmse` and `fit_percent`.
    """
    metrics = {"rmse": rmse, "nrmse": nrmse, "fit_percent": fit_percent}
    return {
        "washout": washout,
        "per_channel": {
            name: np.asarray(metric(y, y_hat, washout)).tolist() for name, metric in metrics.items()
        },
        "overall": {
            name: float(metric(y, y_hat, washout, per_channel=False))
            for name, metric in metrics.items()
        },
    }


def _prepare(
    y: ArrayLike, y_hat: ArrayLike, washout: int
) -> tuple[ModuleType, ArrayLike, ArrayLike]:
    """The array module for the inputs, and the inputs after checks and washout."""
    xp = jnp if isinstance(y, jax.Array) or isinstance(y_hat, jax.Array) else np
    y, y_hat = xp.asarray(y), xp.asarray(y_hat)
    if y.shape != y_hat.shape:
        raise ValueError(f"y and y_hat must have the same shape, got {y.shape} and {y_hat.shape}")
    if y.ndim < 2:
        raise ValueError(f"y must have shape (..., T, ny), got {y.shape}; use y[:, None] for ny=1")
    steps = y.shape[-2]
    if not 0 <= washout < steps:
        raise ValueError(f"washout must be in [0, T) = [0, {steps}) steps, got {washout}")
    return xp, y[..., washout:, :], y_hat[..., washout:, :]


def _axes(y: ArrayLike, per_channel: bool) -> tuple[int, ...] | None:
    """Axes to reduce: all but the channel axis, or all of them."""
    return tuple(range(y.ndim - 1)) if per_channel else None
