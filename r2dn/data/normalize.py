"""`Normalizer`: per-channel z-scoring of inputs and outputs, storable with a model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from r2dn.data.dataset import SequenceData

Array = TypeVar("Array")  # a numpy or JAX array; the operations return the same kind
_FIELDS = ("u_mean", "u_std", "y_mean", "y_std")


@dataclass(frozen=True, eq=False)
class Normalizer:
    """Per-channel z-score `(x - mean) / std` of inputs and outputs.

    Models are trained on normalised data; keep the normaliser (see `to_dict`) to map their
    predictions back to physical units with `denormalize_y`. Statistics are stored as float64
    and use the population standard deviation (`ddof=0`). Fitting on a constant channel is an
    error: its scale is undefined and such a channel is usually a data bug.

    Attributes:
        u_mean, u_std: input statistics, shape `(nu,)`.
        y_mean, y_std: output statistics, shape `(ny,)`.

    Example:
        >>> import numpy as np
        >>> norm = Normalizer.from_record(u=np.array([[0.0], [2.0]]), y=np.array([[1.0], [5.0]]))
        >>> norm.normalize_y(np.array([[1.0], [5.0]])).ravel().tolist()
        [-1.0, 1.0]
        >>> norm.denormalize_y(np.array([[0.0], [0.5]])).ravel().tolist()
        [3.0, 4.0]
        >>> Normalizer.from_dict(norm.to_dict()).y_std.tolist()
        [2.0]
    """

    u_mean: np.ndarray
    u_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray

    def __post_init__(self) -> None:
        for field in _FIELDS:
            value = np.asarray(getattr(self, field), dtype=np.float64)
            if value.ndim != 1 or not np.isfinite(value).all():
                raise ValueError(f"{field} must be a finite 1-D array, got {value!r}")
            object.__setattr__(self, field, value)
        for key in ("u", "y"):
            mean, std = getattr(self, f"{key}_mean"), getattr(self, f"{key}_std")
            if mean.shape != std.shape:
                raise ValueError(f"{key}_mean {mean.shape} and {key}_std {std.shape} differ")
            if (std <= 0).any():
                raise ValueError(f"{key}_std must be positive, got {std.tolist()}")

    @classmethod
    def fit(cls, data: SequenceData) -> Normalizer:
        """Statistics of `data` over its batch and time axes."""
        return cls._from_arrays(data.u, data.y, data.input_names, data.output_names)

    @classmethod
    def from_record(cls, u: np.ndarray, y: np.ndarray) -> Normalizer:
        """Statistics of `u (..., nu)` and `y (..., ny)` over all axes but the last."""
        u, y = np.asarray(u), np.asarray(y)
        return cls._from_arrays(
            u, y, [f"u[{i}]" for i in range(u.shape[-1])], [f"y[{i}]" for i in range(y.shape[-1])]
        )

    @classmethod
    def _from_arrays(
        cls, u: np.ndarray, y: np.ndarray, input_names: Sequence[str], output_names: Sequence[str]
    ) -> Normalizer:
        u_mean, u_std = _channel_stats(u, "input", input_names)
        y_mean, y_std = _channel_stats(y, "output", output_names)
        return cls(u_mean=u_mean, u_std=u_std, y_mean=y_mean, y_std=y_std)

    @property
    def nu(self) -> int:
        """Number of input channels."""
        return self.u_mean.shape[0]

    @property
    def ny(self) -> int:
        """Number of output channels."""
        return self.y_mean.shape[0]

    def normalize_u(self, u: Array) -> Array:
        """Normalise inputs of shape `(..., nu)`; numpy in, numpy out; JAX in, JAX out."""
        return _affine(u, self.u_mean, self.u_std, "u", inverse=False)

    def normalize_y(self, y: Array) -> Array:
        """Normalise outputs of shape `(..., ny)`."""
        return _affine(y, self.y_mean, self.y_std, "y", inverse=False)

    def denormalize_y(self, y: Array) -> Array:
        """Map normalised outputs `(..., ny)` (e.g. model predictions) back to physical units."""
        return _affine(y, self.y_mean, self.y_std, "y", inverse=True)

    def apply(self, data: SequenceData) -> SequenceData:
        """`data` with normalised inputs and outputs (dt and names unchanged)."""
        return dataclasses.replace(data, u=self.normalize_u(data.u), y=self.normalize_y(data.y))

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-serialisable statistics; `from_dict` restores them exactly."""
        return {field: getattr(self, field).tolist() for field in _FIELDS}

    @classmethod
    def from_dict(cls, stats: Mapping[str, Sequence[float]]) -> Normalizer:
        """Inverse of `to_dict`."""
        if set(stats) != set(_FIELDS):
            raise ValueError(f"expected exactly the keys {list(_FIELDS)}, got {sorted(stats)}")
        return cls(**{field: stats[field] for field in _FIELDS})


def _channel_stats(x: np.ndarray, key: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of `x (..., channels)` per channel; raise on a constant channel."""
    if x.ndim < 2:
        raise ValueError(
            f"{key}s must have shape (..., T, channels), got {x.shape}; "
            "reshape a single channel of shape (T,) with x[:, None]"
        )
    axes = tuple(range(x.ndim - 1))
    mean = np.mean(x, axis=axes, dtype=np.float64)
    std = np.std(x, axis=axes, dtype=np.float64)
    # Rounding leaves a constant channel with a std of a few ulps of its mean, not exactly 0.
    constant = std <= 16 * np.finfo(np.float64).eps * np.abs(mean)
    if constant.any():
        channels = [names[i] for i in np.flatnonzero(constant)]
        raise ValueError(
            f"cannot z-score constant {key} channel(s) {channels}: their standard deviation is 0; "
            "drop them or fit the normaliser on data in which they vary"
        )
    return mean, std


def _affine(x: Array, mean: np.ndarray, std: np.ndarray, key: str, *, inverse: bool) -> Array:
    """`(x - mean) / std`, or its inverse, in the floating dtype of `x` (float32 stays float32)."""
    if x.shape[-1] != mean.shape[0]:
        raise ValueError(
            f"{key} has {x.shape[-1]} channels (shape {x.shape}) but the normaliser was fitted "
            f"on {mean.shape[0]}"
        )
    dtype = np.result_type(x.dtype, np.float32)
    mean, std = mean.astype(dtype), std.astype(dtype)
    return x * std + mean if inverse else (x - mean) / std
