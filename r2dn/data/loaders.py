"""Readers for input/output records: CSV and NPZ files, and the benchmarks of the paper."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from r2dn.data import benchmarks
from r2dn.data.csvfile import CsvTable, read_csv
from r2dn.data.dataset import SequenceData, check_finite
from r2dn.data.normalize import Normalizer


def load_csv(
    path: str | Path | Sequence[str | Path],
    inputs: Sequence[str],
    outputs: Sequence[str],
    dt: float | None = None,
    dt_column: str | None = None,
    *,
    fs_column: str | None = None,
    rows: tuple[int, int | None] | None = None,
    encoding: str = "utf-8",
    truncate: bool = False,
) -> SequenceData:
    """Read records from CSV files with a header row: one file, or several (one record each).

    Reads the quirks of real measurement files (see `r2dn.data.csvfile`): a trailing separator
    on every line, quoted names and numbers, constants such as the sampling time in the first
    data row only. Errors name the file and its line.

    The sampling time is `dt`, or the first value of column `dt_column` (seconds), or one over
    that of `fs_column` (Hz); with none of them, a column named ``Ts`` or ``dt`` (seconds), or
    ``fs`` or ``Fs`` (Hz), is used if the file has one.

    Args:
        path: the CSV file, or a list of files with the same columns and sampling time.
        inputs: names of the input columns, in the order wanted.
        outputs: names of the output columns, in the order wanted.
        dt: the sampling time in seconds (at most one of `dt`, `dt_column`, `fs_column`).
        dt_column: a column whose first value is the sampling time in seconds.
        fs_column: a column whose first value is the sampling rate in Hz.
        rows: keep data rows `start` to `stop` (exclusive; `stop` None for the end), counted
            from 0 after the header; e.g. `rows=(0, 5000)`. Split further with
            `SequenceData.split` / `SequenceData.time_slice`.
        encoding: the files' text encoding.
        truncate: with several files of different lengths, keep the first rows of each (as
            many as the shortest has) instead of raising.
    """
    for key, names in (("inputs", inputs), ("outputs", outputs)):
        if isinstance(names, str):
            raise TypeError(f"{key} must be a sequence of column names, e.g. [{names!r}]")
    both = sorted(set(inputs) & set(outputs))
    if both:
        raise ValueError(
            f"column(s) {both} given as both input and output; a model cannot be fitted to "
            f"predict its own input: choose different output columns"
        )
    for key, names in (("inputs", inputs), ("outputs", outputs)):
        repeated = sorted({n for n in names if list(names).count(n) > 1})
        if repeated:
            raise ValueError(f"{key} name the column(s) {repeated} more than once")
    if sum(x is not None for x in (dt, dt_column, fs_column)) > 1:
        raise ValueError("pass at most one of dt= (seconds), dt_column= or fs_column=")
    paths = [path] if isinstance(path, str | Path) else list(path)
    if not paths:
        raise ValueError("load_csv needs at least one file")
    records, times = [], {}
    for file in paths:
        table = read_csv(file, encoding=encoding)
        times[table.path] = dt if dt is not None else _sampling_time(table, dt_column, fs_column)
        values = table.columns([*inputs, *outputs])
        records.append((values[:, : len(inputs)], values[:, len(inputs) :]))
    if len(set(times.values())) > 1:
        raise ValueError(f"the files have different sampling times: {times}")
    try:
        data = SequenceData.from_records(
            records,
            dt=next(iter(times.values())),
            input_names=tuple(inputs),
            output_names=tuple(outputs),
            truncate=truncate,
        )
    except ValueError as error:
        raise ValueError(f"{', '.join(map(str, times))}: {error}") from error
    return data if rows is None else data.time_slice(*rows)


def load_inputs(path: str | Path, inputs: Sequence[str], *, encoding: str = "utf-8") -> np.ndarray:
    """The input columns of one CSV file (no outputs needed), shape ``(T, len(inputs))``.

    For running a model on new inputs; errors as for `load_csv` (file, line, column), and a
    non-finite value is an error that names its column and step.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "u.csv"
        >>> _ = path.write_text("time,u\\n0,1.5\\n4,2.5\\n")
        >>> load_inputs(path, ["u"])[:, 0]
        array([1.5, 2.5])
    """
    if isinstance(inputs, str):
        raise TypeError(f"inputs must be a sequence of column names, e.g. [{inputs!r}]")
    u = read_csv(path, encoding=encoding).columns(inputs)
    try:
        check_finite(u[None], "input", tuple(inputs))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return u


def _sampling_time(table: CsvTable, dt_column: str | None, fs_column: str | None) -> float:
    """The sampling time in seconds given by a column of `table` (see `load_csv`)."""
    if dt_column is None and fs_column is None:
        dt_column = next((n for n in ("Ts", "dt") if n in table.names), None)
        fs_column = next((n for n in ("fs", "Fs") if n in table.names), None)
        if dt_column is None and fs_column is None:
            raise ValueError(
                f"{table.path} has no sampling-time column (Ts, dt, fs or Fs); pass dt= (in "
                f"seconds), dt_column= or fs_column= the column that holds it"
            )
    if dt_column is not None:
        return table.first(dt_column)
    fs = table.first(fs_column)
    if not fs > 0:
        raise ValueError(f"{table.path}: sampling rate {fs_column!r} must be positive, not {fs}")
    return 1 / fs


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
    1,024 steps each at `dt = 4` s; `benchmarks.load("cascaded-tanks")` gives the same records
    with the benchmark's scoring window. Schoukens, Mattson, Wigren & Noël (2016), "Cascaded
    tanks benchmark combining soft and hard nonlinearities", nonlinearbenchmark.org.

    Example:
        >>> estimation, validation = load_cascaded_tanks()
        >>> estimation.u.shape, validation.y.shape, estimation.dt
        ((1, 1024, 1), (1, 1024, 1), 4.0)
    """
    bench = benchmarks.load("cascaded-tanks")
    return bench.train, bench.test["test"]


def load_f16(
    root: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
) -> tuple[SequenceData, SequenceData, Normalizer]:
    """The F-16 ground vibration test benchmark with the paper's split and normalisation.

    Returns `(train, validation, normalizer)`: the raw full-multisine records of levels
    1, 3, 5, 7 (batch 4) and of the validation levels 2, 4, 6 (batch 3), each 73,728 steps
    at `dt = 1/400` s with inputs Force, Voltage and outputs Acceleration1..3; and the z-score
    of the level-4 record, which the paper applies to all records (`normalizer.apply(train)`).
    Noël & Schoukens (2017), "F-16 aircraft benchmark based on ground vibration test data".
    The same records, with the benchmark's test sets by level: `benchmarks.load("f16")`.

    Args:
        root: a folder holding the `F16Data_FullMSine_Level*.csv` files, directly or in
            subfolders (such as the official archive's `BenchmarkData/`); used as is.
            If None, use the cache.
        cache_dir: the cache folder for those files; default `$R2DN_CACHE/f16gvt` if the
            variable is set, else `~/.cache/r2dn/f16gvt`. Cached files are checked against
            the SHA-256 of the official release.
        download: if the cache lacks files, download the official archive once and extract
            them (`DownloadError` if that fails).
    """
    bench = benchmarks.load("f16", root, cache_dir=cache_dir, download=download)
    validation = SequenceData.concat_batch(list(bench.test.values()))
    return bench.train, validation, Normalizer.fit(bench.test["level4"])


def _batched(x: np.ndarray) -> np.ndarray:
    """A single record `(T, channels)` as a batch of one; other shapes unchanged."""
    return x[None] if x.ndim == 2 else x
