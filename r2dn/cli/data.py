"""The data a command works on: the embedded benchmark, F-16 or a CSV file, and its split."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from r2dn.cli.common import CommandError, DataSource
from r2dn.data import (
    Benchmark,
    DownloadError,
    Normalizer,
    SequenceData,
    benchmarks,
    load_cascaded_tanks,
    load_csv,
    load_f16,
)
from r2dn.io import TrainedModel


def source(
    data: DataSource | None, csv_path: Path | None, benchmark: str | None = None
) -> DataSource | None:
    """The data source the options name (``--data``, or csv if ``--csv`` is given).

    None when ``--benchmark`` names the data instead (`load_benchmark`).
    """
    if benchmark is not None:
        if data is not None or csv_path is not None:
            raise CommandError("--benchmark names the data; leave out --data and --csv")
        return None
    if data is None:
        return "csv" if csv_path is not None else "cascaded-tanks"
    if (data == "csv") != (csv_path is not None):
        raise CommandError("--csv PATH and --data csv go together")
    return data


def parse_rows(text: str | None) -> tuple[int, int | None] | None:
    """``START:STOP`` as ``(start, stop)`` (``STOP`` left out: None), or None if not given.

    >>> parse_rows("100:"), parse_rows(":5000"), parse_rows(None)
    ((100, None), (0, 5000), None)
    """
    if text is None:
        return None
    start, colon, stop = text.partition(":")
    try:
        if not colon:
            raise ValueError
        return int(start or 0), int(stop) if stop else None
    except ValueError:
        raise CommandError(
            f"--rows must be START:STOP with whole numbers, e.g. 0:100000, not {text!r}"
        ) from None


def name(source: DataSource, csv_path: Path | None) -> str:
    """A short name of the data, for the folder of an evaluation: the CSV's stem or source."""
    return csv_path.stem if source == "csv" else source


def read_csv(
    path: Path, inputs, outputs, dt: float | None, rows: tuple[int, int | None] | None = None
) -> SequenceData:
    """The CSV's columns (``rows``: data rows start to stop); its sampling time is ``dt``, else
    the file's Ts/dt/fs/Fs column."""
    if inputs is None or outputs is None:
        raise CommandError("CSV data needs --inputs and --outputs (comma-separated column names)")
    try:
        return load_csv(path, inputs, outputs, dt=dt, rows=rows)
    except ValueError as error:
        if dt is None and "no sampling-time column" in str(error):
            raise CommandError(
                f"{path} has no sampling-time column (Ts, dt, fs or Fs); give --dt, the "
                "sampling time in seconds"
            ) from None
        raise


def load_benchmark(name: str, root: Path | None) -> Benchmark:
    """`benchmarks.load`; missing files and failed downloads as one-line errors."""
    try:
        return benchmarks.load(name, root)
    except FileNotFoundError as error:  # in --benchmark-root
        raise CommandError(str(error).replace("point root= at", "give --benchmark-root")) from None
    except DownloadError as error:
        raise CommandError(f"{error} Or give --benchmark-root, a folder holding them.") from None


def benchmark_training_data(
    bench: Benchmark, root: Path | None, val_fraction: float
) -> tuple[SequenceData, SequenceData | None, dict[str, Any]]:
    """A benchmark's training records, the last ``val_fraction`` held out; a description."""
    train, validation = split_tail(bench.train, val_fraction)
    description = {
        "source": "benchmark",
        "benchmark": bench.name,
        "root": None if root is None else str(root.resolve()),
        "split": {
            "train": f"{bench.name} training records, steps 0 to {train.length}",
            "validation": None
            if validation is None
            else f"steps {train.length} to {bench.train.length}",
        },
        "val_fraction": val_fraction,
        "reference": bench.reference,
    }
    return train, validation, description


def split_tail(data: SequenceData, fraction: float) -> tuple[SequenceData, SequenceData | None]:
    """The first ``1 - fraction`` of every record for training, the rest (if any) to validate."""
    if not 0 <= fraction < 1:
        raise CommandError(f"--val-fraction must lie in [0, 1); got {fraction}")
    if fraction == 0:
        return data, None
    cut = round(data.length * (1 - fraction))
    if not 0 < cut < data.length:
        raise CommandError(f"--val-fraction {fraction} leaves no data to train or to validate on")

    def part(s: slice) -> SequenceData:
        return dataclasses.replace(data, u=data.u[:, s], y=data.y[:, s])

    return part(slice(0, cut)), part(slice(cut, None))


def training_data(
    source: DataSource,
    f16_root: Path | None,
    csv_path: Path | None,
    val_csv: Path | None,
    inputs: list[str] | None,
    outputs: list[str] | None,
    dt: float | None,
    val_fraction: float,
    rows: tuple[int, int | None] | None = None,
) -> tuple[SequenceData, SequenceData | None, Normalizer | None, dict[str, Any]]:
    """Training and validation data, a normaliser if the source prescribes one, a description.

    The description names the data and its split, for the run's metrics.
    """
    if source == "cascaded-tanks":
        train, validation = load_cascaded_tanks()
        split = {"train": "estimation record", "validation": "validation record"}
        return train, validation, None, {"source": source, "split": split}
    if source == "f16":
        train, validation, normalizer = _f16(f16_root)
        root = None if f16_root is None else str(f16_root.resolve())
        split = {"train": "levels 1, 3, 5, 7", "validation": "levels 2, 4, 6"}
        return train, validation, normalizer, {"source": source, "root": root, "split": split}
    data = read_csv(csv_path, inputs, outputs, dt, rows)
    description = {
        "source": source,
        "csv": str(csv_path.resolve()),
        "rows": rows,
        "inputs": inputs,
        "outputs": outputs,
        "dt": data.dt,
    }
    if val_csv is not None:
        validation = read_csv(val_csv, inputs, outputs, dt)
        split = {"train": "all of --csv", "validation": str(val_csv.resolve())}
        return data, validation, None, description | {"split": split}
    train, validation = split_tail(data, val_fraction)
    split = {"train_steps": [0, train.length], "validation_steps": [train.length, data.length]}
    return train, validation, None, description | {"split": split, "val_fraction": val_fraction}


def evaluation_data(
    trained: TrainedModel,
    source: DataSource,
    f16_root: Path | None,
    csv_path: Path | None,
    inputs: list[str] | None,
    outputs: list[str] | None,
    dt: float | None,
    rows: tuple[int, int | None] | None = None,
) -> SequenceData:
    """The data to score ``trained`` on: a benchmark's validation part, or a CSV's ``rows``."""
    if source == "cascaded-tanks":
        return load_cascaded_tanks()[1]
    if source == "f16":
        return _f16(f16_root)[1]
    for given, own, what in (
        (inputs, trained.input_names, "inputs"),
        (outputs, trained.output_names, "outputs"),
    ):
        if given is not None and tuple(given) != tuple(own):
            raise CommandError(
                f"the model was trained on the {what} {list(own)}, not {given}; leave out "
                f"--{what} (or give --{what} {','.join(own)}) and name the CSV's columns so"
            )
    return read_csv(
        csv_path,
        inputs or list(trained.input_names),
        outputs or list(trained.output_names),
        trained.dt if dt is None else dt,
        rows,
    )


def _f16(root: Path | None) -> tuple[SequenceData, SequenceData, Normalizer]:
    """`load_f16`, its download failures (no network, a bad archive) as one-line errors."""
    try:
        return load_f16(root)
    except RuntimeError as error:
        raise CommandError(str(error)) from None
