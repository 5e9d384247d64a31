"""Readers for input/output records: CSV and NPZ files, and the benchmarks of the paper."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

from r2dn.data.dataset import SequenceData


def load_csv(
    path: str | Path,
    inputs: Sequence[str],
    outputs: Sequence[str],
    dt: float | None = None,
    dt_column: str | None = None,
) -> SequenceData:
    """Read one record (batch 1) from a CSV file with a header row.

    Reads the layout of the nonlinearbenchmark.org files: quoted column names, a trailing
    comma on every row, and constants (such as the sampling time) in the first data row only.

    Args:
        path: the CSV file.
        inputs: names of the input columns, in the order wanted.
        outputs: names of the output columns, in the order wanted.
        dt: sampling time in seconds; or else
        dt_column: the column whose first data row holds the sampling time in seconds.
    """
    path = Path(path).expanduser()
    for key, names in (("inputs", inputs), ("outputs", outputs)):
        if isinstance(names, str):
            raise TypeError(f"{key} must be a sequence of column names, e.g. [{names!r}]")
    if (dt is None) == (dt_column is None):
        raise ValueError("pass exactly one of dt= (in seconds) or dt_column= (the column of dt)")
    header, first_row = _read_head(path)
    wanted = [*inputs, *outputs, *([] if dt_column is None else [dt_column])]
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; available columns: {header}")
    if dt_column is not None:
        dt = _parse_float(first_row.get(dt_column, ""), f"{path}: first row of {dt_column!r}")
    columns = [header.index(name) for name in (*inputs, *outputs)]
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=columns, ndmin=2)
        return SequenceData(
            u=table[None, :, : len(inputs)],
            y=table[None, :, len(inputs) :],
            dt=dt,
            input_names=tuple(inputs),
            output_names=tuple(outputs),
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def load_npz(
    path: str | Path,
    u_key: str = "u",
    y_key: str = "y",
    *,
    dt: float,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> SequenceData:
    """Read arrays `u` and `y` of shape `(T, channels)` or `(batch, T, channels)` from `.npz`.

    Channel names default to `u0, u1, ...` and `y0, y1, ...` (after the keys).
    """
    path = Path(path).expanduser()
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in (u_key, y_key) if key not in archive.files]
        if missing:
            raise ValueError(f"{path} has no array(s) {missing}; available: {archive.files}")
        u, y = (_batched(archive[key]) for key in (u_key, y_key))
    return SequenceData(
        u=u,
        y=y,
        dt=dt,
        input_names=input_names or tuple(f"{u_key}{i}" for i in range(u.shape[-1])),
        output_names=output_names or tuple(f"{y_key}{i}" for i in range(y.shape[-1])),
    )


def load_cascaded_tanks() -> tuple[SequenceData, SequenceData]:
    """The cascaded-tanks benchmark shipped with r2dn: `(estimation, validation)` records.

    One input `"u"` (pump voltage) and one output `"y"` (water level of the lower tank),
    1,024 steps each at `dt = 4` s. Schoukens, Mattson, Wigren & Noël (2016), "Cascaded tanks
    benchmark combining soft and hard nonlinearities", nonlinearbenchmark.org.

    Example:
        >>> estimation, validation = load_cascaded_tanks()
        >>> estimation.u.shape, validation.y.shape, estimation.dt
        ((1, 1024, 1), (1, 1024, 1), 4.0)
    """
    resource = files("r2dn.data") / "_embedded" / "cascaded_tanks.csv"
    with as_file(resource) as path:
        records = [
            load_csv(path, [u], [y], dt_column="Ts")
            for u, y in (("uEst", "yEst"), ("uVal", "yVal"))
        ]
    estimation, validation = (
        dataclasses.replace(record, input_names=("u",), output_names=("y",)) for record in records
    )
    return estimation, validation


def _read_head(path: Path) -> tuple[list[str], dict[str, str]]:
    """Column names of the CSV at `path` and its first data row, keyed by column name."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header, first_row = next(rows, []), next(rows, [])
    names = [name.strip() for name in header]
    while names and not names[-1]:  # the empty field after a trailing comma
        names.pop()
    if not names:
        raise ValueError(f"{path} has no header row of column names")
    return names, dict(zip(names, (field.strip() for field in first_row), strict=False))


def _parse_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None


def _batched(x: np.ndarray) -> np.ndarray:
    """A single record `(T, channels)` as a batch of one; other shapes unchanged."""
    return x[None] if x.ndim == 2 else x
