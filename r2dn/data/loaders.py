"""Readers for input/output records: CSV and NPZ files, and the benchmarks of the paper."""

from __future__ import annotations

import csv
import dataclasses
import os
import zipfile
from collections.abc import Sequence
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

from r2dn.data import _fetch
from r2dn.data.dataset import SequenceData
from r2dn.data.normalize import Normalizer

# The official F-16 ground vibration test archive F16GVT_Files.zip (about 150 MB), distributed
# by nonlinearbenchmark.org through data.4tu.nl; the maintainers' own `nonlinear_benchmarks`
# package downloads it from this address.
F16_URL = (
    "https://data.4tu.nl/file/b6dc643b-ecc6-437c-8a8a-1681650ec3fe/"
    "5414dfdc-6e8d-4208-be6e-fa553de9866f"
)
_F16_ARCHIVE = "F16GVT_Files.zip"
_F16_DT = 1 / 400
_F16_INPUTS = ("Force", "Voltage")
_F16_OUTPUTS = ("Acceleration1", "Acceleration2", "Acceleration3")
_F16_TRAIN = tuple(f"F16Data_FullMSine_Level{k}.csv" for k in (1, 3, 5, 7))
_F16_VALIDATION = tuple(f"F16Data_FullMSine_Level{k}_Validation.csv" for k in (2, 4, 6))
_F16_FILES = _F16_TRAIN + _F16_VALIDATION
_F16_NORMALISATION = "F16Data_FullMSine_Level4_Validation.csv"
# SHA-256 of the files in the BenchmarkData/ folder of the official archive.
_F16_SHA256 = {
    "F16Data_FullMSine_Level1.csv": (
        "b72a9d063e392570bb20c26f4763232e30262e5914d946e475e67df40880db6d"
    ),
    "F16Data_FullMSine_Level3.csv": (
        "0bba7686f392c0ae3e0a99a1760892bb072220b1837acf62899841d1a9895cc5"
    ),
    "F16Data_FullMSine_Level5.csv": (
        "e7239711a005f364753c35c407e7cb3009c074bc40bdc2d7c7b9a439c041fe54"
    ),
    "F16Data_FullMSine_Level7.csv": (
        "e39c464875ff8f116bd3e2eb9a8edad07a0a0449ab607afcfa34bbc4ae07537f"
    ),
    "F16Data_FullMSine_Level2_Validation.csv": (
        "be172970af0fd0b8804cbcab5e31d0a947d4d79dcf3c7b96d3b5cab3b747cfd4"
    ),
    "F16Data_FullMSine_Level4_Validation.csv": (
        "bf064f32cd1c102a5e534ea16b0ce3a4c39afcf0090b33ae3cf6b104131c9aff"
    ),
    "F16Data_FullMSine_Level6_Validation.csv": (
        "3384d9b4f0373f0a311f4b6a355bd948aea8853cd06f72c03ffc18f1504c8568"
    ),
}


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

    Args:
        root: a folder holding the `F16Data_FullMSine_Level*.csv` files, directly or in a
            `BenchmarkData/` subfolder (the layout of the official archive); used as is.
            If None, use the cache.
        cache_dir: the cache folder for those files; default `$R2DN_CACHE/f16gvt` if the
            variable is set, else `~/.cache/r2dn/f16gvt`. Cached files are checked against
            the SHA-256 of the official release.
        download: if the cache lacks files, download the official archive once (`F16_URL`)
            and extract them. An `F16GVT_Files.zip` already in the cache folder is used
            instead of downloading.
    """
    if root is not None and cache_dir is not None:
        raise ValueError("pass root= (a folder holding the CSVs) or cache_dir=, not both")
    if root is not None:
        folder = _f16_folder(Path(root).expanduser())
    else:
        folder = _f16_cache(Path(cache_dir or _default_cache_dir()).expanduser(), download)
    records = {
        name: load_csv(folder / name, _F16_INPUTS, _F16_OUTPUTS, dt=_F16_DT) for name in _F16_FILES
    }
    train = SequenceData.concat_batch([records[name] for name in _F16_TRAIN])
    validation = SequenceData.concat_batch([records[name] for name in _F16_VALIDATION])
    return train, validation, Normalizer.fit(records[_F16_NORMALISATION])


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


def _default_cache_dir() -> Path:
    return Path(os.environ.get("R2DN_CACHE") or Path.home() / ".cache" / "r2dn") / "f16gvt"


def _f16_folder(root: Path) -> Path:
    """`root` or `root/BenchmarkData`, whichever holds all the F-16 files."""
    candidates = (root, root / "BenchmarkData")
    missing = {
        folder: [name for name in _F16_FILES if not (folder / name).is_file()]
        for folder in candidates
    }
    closest = min(candidates, key=lambda folder: len(missing[folder]))
    if missing[closest]:
        raise FileNotFoundError(
            f"F-16 benchmark files {missing[closest]} not found in {closest}; point root= at "
            f"the folder holding {list(_F16_FILES)} (the BenchmarkData/ folder of the official "
            f"archive {_F16_ARCHIVE}) or at the folder above it"
        )
    return closest


def _f16_cache(folder: Path, download: bool) -> Path:
    """The cache `folder`, filled from the official archive if needed and verified."""
    missing = [name for name in _F16_FILES if not (folder / name).is_file()]
    if missing:
        _fill_f16_cache(folder, missing, download)
    for name in _F16_FILES:
        _fetch.verify_sha256(
            folder / name,
            _F16_SHA256[name],
            hint="Run load_f16() again to download a fresh copy, or pass root= a folder holding "
            "intact copies.",
        )
    return folder


def _fill_f16_cache(folder: Path, names: list[str], download: bool) -> None:
    """Extract `names` from the official archive into `folder`, downloading it if absent."""
    archive = folder / _F16_ARCHIVE
    fix = (
        f"To fix: pass root= a folder holding the F-16 CSVs, or place them (or the archive "
        f"{_F16_ARCHIVE}) in {folder}."
    )
    if not archive.is_file():
        if not download:
            raise FileNotFoundError(
                f"F-16 benchmark files {names} are not in the cache {folder} and download=False. "
                + fix
            )
        try:
            _fetch.download(F16_URL, archive)
        except OSError as error:  # includes urllib.error.URLError
            raise RuntimeError(
                f"Downloading the F-16 benchmark archive from {F16_URL} failed: {error}. " + fix
            ) from error
    try:
        _fetch.extract(archive, names, folder)
    except (zipfile.BadZipFile, ValueError) as error:
        raise RuntimeError(
            f"{archive} is not the F-16 benchmark archive ({error}); it has been deleted. " + fix
        ) from error
    finally:
        archive.unlink()  # all needed files are extracted (or the archive is unusable)
