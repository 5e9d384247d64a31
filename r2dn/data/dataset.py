"""`SequenceData`: a validated batch of equal-length input/output records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class SequenceData:
    """A batch of sampled input/output records of equal length.

    Validated on construction, so code downstream of a `SequenceData` never meets ragged,
    mislabelled or non-finite data. Arrays of a floating dtype are kept as they are; other
    numeric arrays are converted to float64.

    Attributes:
        u: inputs, shape `(batch, T, nu)`.
        y: measured outputs, shape `(batch, T, ny)`.
        dt: sampling time in seconds.
        input_names: one name per input channel (`nu` of them).
        output_names: one name per output channel (`ny` of them).
    """

    u: np.ndarray
    y: np.ndarray
    dt: float
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def __post_init__(self) -> None:
        u, y = _as_float_array(self.u), _as_float_array(self.y)
        input_names, output_names = tuple(self.input_names), tuple(self.output_names)
        for key, array in (("u", u), ("y", y)):
            if array.ndim != 3:
                raise ValueError(
                    f"{key} must have shape (batch, T, channels), got shape {array.shape}; "
                    f"for a single record of shape (T, channels) pass {key}[None]"
                )
            if array.shape[1] == 0 or array.shape[2] == 0:
                raise ValueError(
                    f"{key} needs at least one step and one channel, got {array.shape}"
                )
        if u.shape[:2] != y.shape[:2]:
            raise ValueError(
                f"u and y must agree in (batch, T), got u {u.shape[:2]} and y {y.shape[:2]}"
            )
        for key, array, names in (("input", u, input_names), ("output", y, output_names)):
            if len(names) != array.shape[2]:
                raise ValueError(
                    f"{len(names)} {key} names {names} given for {array.shape[2]} {key} channels"
                )
            check_finite(array, key, names)
        dt = float(self.dt)
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive sampling time in seconds, got {self.dt!r}")
        for field, value in (
            ("u", u),
            ("y", y),
            ("dt", dt),
            ("input_names", input_names),
            ("output_names", output_names),
        ):
            object.__setattr__(self, field, value)

    @property
    def batch(self) -> int:
        """Number of records."""
        return self.u.shape[0]

    @property
    def length(self) -> int:
        """Number of time steps `T` of every record."""
        return self.u.shape[1]

    @property
    def nu(self) -> int:
        """Number of input channels."""
        return self.u.shape[2]

    @property
    def ny(self) -> int:
        """Number of output channels."""
        return self.y.shape[2]

    def segments(self, length: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Consecutive time segments, as used by truncated backpropagation through time.

        Yields `T // length` pairs `(u_seg, y_seg)` of shapes `(batch, length, nu)` and
        `(batch, length, ny)` (views, not copies); a trailing remainder shorter than `length`
        is dropped.
        """
        if length < 1:
            raise ValueError(f"segment length must be at least 1, got {length}")
        if length > self.length:
            raise ValueError(
                f"segment length {length} exceeds the record length T = {self.length}; "
                f"use a length of at most {self.length}"
            )
        for start in range(0, self.length - length + 1, length):
            stop = start + length
            yield self.u[:, start:stop], self.y[:, start:stop]

    def time_slice(self, start: int = 0, stop: int | None = None) -> SequenceData:
        """Steps `start` (inclusive) to `stop` (exclusive, default the end) of every record.

        Indices count from 0 and must lie in the record: a ValueError names the length
        otherwise (unlike Python slicing, which silently clips).

        >>> import numpy as np
        >>> data = SequenceData(np.zeros((1, 10, 1)), np.zeros((1, 10, 1)), 0.1, ("u",), ("y",))
        >>> data.time_slice(2, 5).length
        3
        """
        stop = self.length if stop is None else stop
        if not (0 <= start < stop <= self.length):
            raise ValueError(
                f"time slice [{start}, {stop}) is outside the data or empty: the records have "
                f"T = {self.length} steps, so use 0 <= start < stop <= {self.length}"
            )
        return dataclasses.replace(self, u=self.u[:, start:stop], y=self.y[:, start:stop])

    def split(self, *points: int) -> tuple[SequenceData, ...]:
        """Cut every record at the increasing steps `points`: `len(points) + 1` parts.

        For example `train, validation, test = data.split(6000, 8000)`.

        Example:
            >>> import numpy as np
            >>> data = SequenceData(np.zeros((1, 10, 1)), np.zeros((1, 10, 1)), 0.1, ("u",), ("y",))
            >>> tuple(part.length for part in data.split(6, 8))
            (6, 2, 2)
        """
        if not points:
            raise ValueError("split needs at least one split point, e.g. data.split(1000)")
        bounds = (0, *points, self.length)
        for point in points:
            if not 0 < point < self.length:
                raise ValueError(
                    f"split point {point} is outside the data: the records have "
                    f"T = {self.length} steps, so a split point must lie in 1..{self.length - 1}"
                )
        if any(a >= b for a, b in zip(bounds, bounds[1:], strict=False)):
            raise ValueError(f"split points must increase, got {list(points)}")
        return tuple(self.time_slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False))

    @classmethod
    def concat_batch(cls, datasets: Sequence[SequenceData]) -> SequenceData:
        """Stack datasets with the same length, `dt` and channel names along the batch axis."""
        if not datasets:
            raise ValueError("concat_batch needs at least one dataset")
        first = datasets[0]
        for i, data in enumerate(datasets[1:], start=1):
            mismatches = [
                f"{what} {a!r} != {b!r}"
                for what, a, b in (
                    ("length", first.length, data.length),
                    ("dt", first.dt, data.dt),
                    ("input names", first.input_names, data.input_names),
                    ("output names", first.output_names, data.output_names),
                )
                if a != b
            ]
            if mismatches:
                raise ValueError(f"dataset {i} does not match dataset 0: {'; '.join(mismatches)}")
        return cls(
            u=np.concatenate([data.u for data in datasets]),
            y=np.concatenate([data.y for data in datasets]),
            dt=first.dt,
            input_names=first.input_names,
            output_names=first.output_names,
        )

    @classmethod
    def from_records(
        cls,
        records: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        dt: float,
        input_names: Sequence[str],
        output_names: Sequence[str],
        truncate: bool = False,
    ) -> SequenceData:
        """Batch single records `(u, y)` of shapes `(T_i, nu)` and `(T_i, ny)`.

        Records of different lengths are an error unless `truncate=True`, which keeps the
        first `min_i T_i` steps of each.
        """
        if not records:
            raise ValueError("from_records needs at least one (u, y) record")
        records = [(np.asarray(u), np.asarray(y)) for u, y in records]
        for i, (u, y) in enumerate(records):
            if u.ndim != 2 or y.ndim != 2:
                raise ValueError(
                    f"record {i}: u and y must have shape (T, channels), got u {u.shape} and "
                    f"y {y.shape}; reshape a single channel of shape (T,) with x[:, None]"
                )
            if len(u) != len(y):
                raise ValueError(f"record {i}: u has {len(u)} steps but y has {len(y)}")
        lengths = [len(u) for u, _ in records]
        shortest = min(lengths)
        if not truncate and shortest != max(lengths):
            raise ValueError(
                f"records have different lengths {lengths}; pass truncate=True to keep the "
                f"first {shortest} steps of each"
            )
        return cls(
            u=np.stack([u[:shortest] for u, _ in records]),
            y=np.stack([y[:shortest] for _, y in records]),
            dt=dt,
            input_names=tuple(input_names),
            output_names=tuple(output_names),
        )


def _as_float_array(x: np.ndarray) -> np.ndarray:
    """`x` as a numpy array of a floating dtype (float64 unless already floating)."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def check_finite(x: np.ndarray, key: str, names: tuple[str, ...]) -> None:
    """Raise a ValueError locating the first NaN/inf of `x` (batch, T, channels)."""
    bad = ~np.isfinite(x)
    if bad.any():
        b, t, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{key} channel {names[c]!r} holds a non-finite value ({x[b, t, c]}) at record {b}, "
            f"step {t}; remove or interpolate the missing samples"
        )
