"""The field's standard system-identification benchmarks, with their official splits.

`load(name)` returns a `Benchmark`: the training records, the named test sets, the number of
initial steps of each test record that the benchmark leaves out of the score (the
*initialisation window*, in which a model may settle from its initial state), and the unit in
which results are reported. Splits, windows and units follow the conventions of the
`nonlinear-benchmarks` package (the loader of nonlinearbenchmark.org, Beintema et al.), so
that numbers computed here compare with results published with it:

| name | train | test sets | window | RMSE in |
|---|---|---|---|---|
| `silverbox` | multisine (75 %) | `multisine`, `arrow_full`, `arrow_no_extrapolation` | 50 | mV |
| `wiener-hammerstein` | 100,000 samples | `test` (78,800 samples) | 50 | mV |
| `cascaded-tanks` | estimation record | `test` (validation record) | 50 | V |
| `f16` | full multisine, levels 1, 3, 5, 7 | `level2`, `level4`, `level6` | 50 | m/s² |
| `emps` | `DATA_EMPS` | `test` (`DATA_EMPS_PULSES`) | 20 | mm |
| `ced` | first 400 samples of both records | `low`, `high` (amplitude) | 10 | ticks/s |

Files come from a folder the user names (`root=`, searched with its subfolders, so the
unpacked official archive works as it is), else from a cache folder filled once from the
official source (`r2dn.data._fetch`). The cascaded-tanks file ships with r2dn.

Example (the cascaded tanks, shipped with r2dn):

>>> bench = load("cascaded-tanks")
>>> bench.train.length, list(bench.test), bench.window, bench.unit
(1024, ['test'], 50, 'V')
>>> bench.rmse("test", bench.test["test"].y)  # of a perfect prediction, per output channel
array([0.])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

from r2dn.data import _fetch
from r2dn.data.csvfile import read_csv
from r2dn.data.dataset import SequenceData


@dataclass(frozen=True, eq=False)
class Benchmark:
    """A benchmark's official split, initialisation window and reporting unit.

    Attributes:
        name: the benchmark's name in `names()`.
        train: the training (and validation) records, in the files' units.
        test: the test sets by name, each a batch of records, in the files' units.
        window: the first `window` steps of every test record are not scored (they may be used
            to settle the model's state); `rmse` scores the steps after them.
        unit: the unit of `rmse`.
        scale: the factor from the files' unit to `unit` (1000 for V → mV).
        reference: the publication to cite.
    """

    name: str
    train: SequenceData
    test: Mapping[str, SequenceData]
    window: int
    unit: str
    scale: float
    reference: str

    def rmse(self, test: str, y_pred: np.ndarray) -> np.ndarray:
        """RMSE per output channel, in `unit`, of `y_pred` on test set `test` after the window.

        Args:
            test: a name in `self.test`.
            y_pred: simulated outputs of shape `(batch, T, ny)` of that test set (or `(T, ny)`
                for a test set of one record); all records are scored together.
        """
        if test not in self.test:
            raise ValueError(f"{self.name} has no test set {test!r}; it has {list(self.test)}")
        y = self.test[test].y
        y_pred = np.asarray(y_pred)
        y_pred = y_pred[None] if y_pred.ndim == 2 else y_pred
        if y_pred.shape != y.shape:
            raise ValueError(
                f"predicted outputs of shape {y_pred.shape} for test set {test!r} of shape "
                f"{y.shape} (batch, T, ny); simulate every step of every record of the test set"
            )
        error = y_pred[:, self.window :] - y[:, self.window :]
        return self.scale * np.sqrt(np.mean(error**2, axis=(0, 1)))


def names() -> tuple[str, ...]:
    """The names `load` accepts."""
    return tuple(_SPECS)


def load(
    name: str,
    root: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
) -> Benchmark:
    """Load benchmark `name` (see `names()`) with its official split.

    Args:
        name: e.g. ``"silverbox"``; case, ``_`` and ``-`` do not matter.
        root: a folder holding the benchmark's files, directly or in subfolders (for example
            the unpacked official archive); used as is. If None, use the cache.
        cache_dir: the cache folder; default ``$R2DN_CACHE/<name>`` if the variable is set,
            else ``~/.cache/r2dn/<name>``.
        download: if the cache lacks files, download them once from the official source.
            Raises `DownloadError` (saying how to supply the files by hand) if that fails.
    """
    key = name.lower().replace("_", "-")
    if key not in _SPECS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {list(_SPECS)}")
    spec = _SPECS[key]
    if root is not None and cache_dir is not None:
        raise ValueError("pass root= (a folder holding the files) or cache_dir=, not both")
    if root is not None:
        folder = Path(root).expanduser()
        paths = [_find(folder, candidates, spec.title) for candidates in spec.files]
        return spec.build(key, paths)
    if spec.remote is None:  # shipped with r2dn
        with as_file(files("r2dn.data") / "_embedded" / _EMBEDDED[key]) as path:
            return spec.build(key, [path])
    folder = (
        Path(cache_dir).expanduser()
        if cache_dir is not None
        else _fetch.default_cache(_CACHE_FOLDERS.get(key, key))
    )
    fetched = _fetch.fetch(spec.remote, folder, download=download)
    return spec.build(key, list(fetched.values()))


def from_io_data(
    obj: object,
    *,
    dt: float | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> SequenceData:
    """A `SequenceData` from the `nonlinear-benchmarks` package's data objects.

    `obj` is one `Input_output_data` (attributes `u`, `y` of shape `(T,)` or `(T, channels)`
    and `sampling_time` in seconds) or a sequence of them of equal length, which become the
    records of one batch. The package itself is not imported (install it with the
    ``r2dn[benchmarks]`` extra); its test objects carry the initialisation window as
    `state_initialization_window_length`.

    Args:
        obj: the data object(s).
        dt: the sampling time, where the objects have none (discrete-time data).
        input_names: names of the input channels; default ``u0, u1, …``.
        output_names: names of the output channels; default ``y0, y1, …``.
    """
    objects = list(obj) if isinstance(obj, list | tuple) else [obj]
    if not objects:
        raise ValueError("from_io_data needs at least one Input_output_data object")
    records, times = [], set()
    for i, item in enumerate(objects):
        if not all(hasattr(item, key) for key in ("u", "y", "sampling_time")):
            raise TypeError(
                f"object {i} ({type(item).__name__}) is not an Input_output_data of the "
                f"nonlinear-benchmarks package: it needs attributes u, y and sampling_time"
            )
        u, y = (np.asarray(x, dtype=float) for x in (item.u, item.y))
        records.append(tuple(x[:, None] if x.ndim == 1 else x for x in (u, y)))
        times.add(item.sampling_time)
    times.discard(None)
    if len(times) > 1:
        raise ValueError(f"the objects have different sampling times {sorted(times)}")
    if dt is None:
        if not times:
            raise ValueError("the objects have no sampling_time; pass dt= (in seconds)")
        dt = float(np.asarray(times.pop()).ravel()[0])
    nu, ny = records[0][0].shape[-1], records[0][1].shape[-1]
    return SequenceData.from_records(
        records,
        dt=dt,
        input_names=input_names or tuple(f"u{i}" for i in range(nu)),
        output_names=output_names or tuple(f"y{i}" for i in range(ny)),
    )


# --- reading the files ----------------------------------------------------------------------


def _columns(
    path: Path, names: Sequence[str], title: str, constants: Sequence[str] = ()
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Columns `names` (and the first value of `constants`) of a benchmark's CSV or MAT file."""
    if path.suffix.lower() == ".mat":
        import scipy.io  # a dependency of jax

        try:
            content = scipy.io.loadmat(path)
        except (scipy.io.matlab.MatReadError, ValueError, OSError, NotImplementedError) as error:
            raise ValueError(
                f"{path} cannot be read as a MAT file of the {title} benchmark ({error}); "
                f"delete it, and pass root= a folder holding the benchmark's own files"
            ) from error
        content = {k: v for k, v in content.items() if not k.startswith("__")}
        _check_columns(path, [*names, *constants], sorted(content), title)
        get = lambda n: np.ravel(content[n]).astype(float)  # noqa: E731
        return {n: get(n) for n in names}, {n: float(get(n)[0]) for n in constants}
    table = read_csv(path)
    _check_columns(path, [*names, *constants], list(table.names), title)
    values = table.columns(names)
    columns = {n: values[:, i] for i, n in enumerate(names)}
    return columns, {n: table.first(n) for n in constants}


def _check_columns(path: Path, wanted: list[str], available: list[str], title: str) -> None:
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ValueError(
            f"{path} is not a file of the {title} benchmark: it has no column(s) {missing} "
            f"(it has {available}); point root= at the benchmark's own files"
        )


def _record(
    columns: Mapping[str, np.ndarray],
    inputs: Sequence[str],
    outputs: Sequence[str],
    dt: float,
    names: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
) -> SequenceData:
    """One record (batch 1) of the named columns; channel `names` default to the columns'."""
    u = np.stack([columns[n] for n in inputs], axis=-1)
    y = np.stack([columns[n] for n in outputs], axis=-1)
    input_names, output_names = names or (tuple(inputs), tuple(outputs))
    return SequenceData(u[None], y[None], dt, input_names, output_names)


def _need(data: SequenceData, steps: int, path: Path, title: str) -> None:
    if data.length < steps:
        raise ValueError(
            f"{path} has {data.length} samples but the {title} benchmark's split needs "
            f"{steps}; is it the complete benchmark file?"
        )


def _find(root: Path, candidates: Sequence[str], title: str) -> Path:
    """The first of the file names `candidates` found in `root` or its subfolders."""
    for name in candidates:
        if (root / name).is_file():
            return root / name
        for folder, _, file_names in sorted(os.walk(root, followlinks=True)):
            if name in file_names:
                return Path(folder) / name
    raise FileNotFoundError(
        f"{title} benchmark file {' or '.join(candidates)} not found in {root} or its "
        f"subfolders; point root= at the folder holding it"
    )


# --- the benchmarks -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    title: str
    files: tuple[tuple[str, ...], ...]  # per file: the names accepted for it (CSV, then MAT)
    read: Callable[[list[Path]], tuple[SequenceData, dict[str, SequenceData]]]
    window: int
    unit: str
    scale: float
    reference: str
    remote: _fetch.Remote | None  # None: shipped with r2dn (see _EMBEDDED)

    def build(self, name: str, paths: list[Path]) -> Benchmark:
        train, test = self.read(paths)
        return Benchmark(name, train, test, self.window, self.unit, self.scale, self.reference)


def _silverbox(paths: list[Path]) -> tuple[SequenceData, dict[str, SequenceData]]:
    (path,) = paths
    columns, _ = _columns(path, ("V1", "V2"), "Silverbox")
    # 10^7 / 2^14 Hz, rounded as by nonlinear-benchmarks
    data = _record(columns, ["V1"], ["V2"], dt=1 / 610.35)
    _need(data, 127400, path, "Silverbox")
    arrow_full = data.time_slice(100, 40575)
    multisine = data.time_slice(40650, 127400)
    train, test_multisine = multisine.split(int(0.75 * multisine.length))
    return train, {
        "multisine": test_multisine,
        "arrow_full": arrow_full,
        "arrow_no_extrapolation": arrow_full.time_slice(0, 32000),
    }


def _wiener_hammerstein(paths: list[Path]) -> tuple[SequenceData, dict[str, SequenceData]]:
    (path,) = paths
    columns, constants = _columns(path, ("uBenchMark", "yBenchMark"), "Wiener–Hammerstein", ["fs"])
    data = _record(columns, ["uBenchMark"], ["yBenchMark"], dt=1 / constants["fs"])
    _need(data, 184000, path, "Wiener–Hammerstein")
    train, test = data.time_slice(5200, 184000).split(100000)
    return train, {"test": test}


def _cascaded_tanks(paths: list[Path]) -> tuple[SequenceData, dict[str, SequenceData]]:
    (path,) = paths
    columns, constants = _columns(path, ("uEst", "uVal", "yEst", "yVal"), "cascaded tanks", ["Ts"])
    train, test = (
        _record(columns, [f"u{part}"], [f"y{part}"], constants["Ts"], names=(("u",), ("y",)))
        for part in ("Est", "Val")
    )
    return train, {"test": test}


_F16_INPUTS = ("Force", "Voltage")
_F16_OUTPUTS = ("Acceleration1", "Acceleration2", "Acceleration3")
_F16_TRAIN = tuple(f"F16Data_FullMSine_Level{k}.csv" for k in (1, 3, 5, 7))
_F16_TEST = tuple(f"F16Data_FullMSine_Level{k}_Validation.csv" for k in (2, 4, 6))
# The official F-16 ground vibration test archive F16GVT_Files.zip (about 150 MB), distributed
# by nonlinearbenchmark.org through data.4tu.nl, as downloaded by nonlinear-benchmarks.
# Checksums: of the files in its BenchmarkData/ folder (verified against ../shared/data/f16gvt,
# copies of the official files); the archive's own checksum could not be verified offline.
_F16_REMOTE = _fetch.Remote(
    url=(
        "https://data.4tu.nl/file/b6dc643b-ecc6-437c-8a8a-1681650ec3fe/"
        "5414dfdc-6e8d-4208-be6e-fa553de9866f"
    ),
    fname="F16GVT_Files.zip",
    sha256=None,
    members={
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
    },
    paths={name: f"F16GVT_Files/BenchmarkData/{name}" for name in (*_F16_TRAIN, *_F16_TEST)},
)


def _f16(paths: list[Path]) -> tuple[SequenceData, dict[str, SequenceData]]:
    records = []
    for path in paths:
        columns, constants = _columns(path, (*_F16_INPUTS, *_F16_OUTPUTS), "F-16", ["Fs"])
        records.append(_record(columns, _F16_INPUTS, _F16_OUTPUTS, dt=1 / constants["Fs"]))
    train = SequenceData.concat_batch(records[: len(_F16_TRAIN)])
    levels = (f"level{k}" for k in (2, 4, 6))
    return train, dict(zip(levels, records[len(_F16_TRAIN) :], strict=True))


def _emps(paths: list[Path]) -> tuple[SequenceData, dict[str, SequenceData]]:
    # vir: motor force (N), the input; qm: measured position (m), the output; t: time (s)
    records = []
    for path in paths:
        columns, _ = _columns(path, ("vir", "qm", "t"), "EMPS")
        records.append(_record(columns, ["vir"], ["qm"], dt=columns["t"][1] - columns["t"][0]))
    return records[0], {"test": records[1]}


def _ced(paths: list[Path]) -> tuple[SequenceData, dict[str, SequenceData]]:
    (path,) = paths
    # u11, z11: low input amplitude; u12, z12: high; z: pulley speed (ticks/s)
    columns, _ = _columns(path, ("u11", "u12", "z11", "z12"), "coupled electric drives")
    low, high = (
        _record(columns, [f"u1{k}"], [f"z1{k}"], dt=0.02, names=(("u",), ("y",))) for k in (1, 2)
    )
    _need(low, 401, path, "coupled electric drives")
    (low_train, low_test), (high_train, high_test) = low.split(400), high.split(400)
    train = SequenceData.concat_batch([low_train, high_train])
    return train, {"low": low_test, "high": high_test}


_EMBEDDED = {"cascaded-tanks": "cascaded_tanks.csv"}  # the official dataBenchmark.csv
_CACHE_FOLDERS = {"f16": "f16gvt"}  # the folder name of earlier releases, kept
_SPECS: dict[str, _Spec] = {
    "silverbox": _Spec(
        title="Silverbox",
        files=(("SNLS80mV.csv", "SNLS80mV.mat"),),
        read=_silverbox,
        window=50,
        unit="mV",
        scale=1000.0,
        reference="T. Wigren and J. Schoukens, Three free data sets for development and "
        "benchmarking in nonlinear system identification, ECC 2013.",
        # The address nonlinear-benchmarks downloads SilverboxFiles.zip from (Google Drive).
        # The archive's checksum could not be verified offline; the member's is that of
        # ../shared/data/silverbox/SNLS80mV.csv (a copy of the official file), and its path
        # inside the archive is the one nonlinear-benchmarks reads (not verified offline).
        remote=_fetch.Remote(
            url="https://drive.google.com/uc?export=download&id=17iS-6oBUUgrmiAcrZoG9S5sOaljZnDSy",
            fname="SilverboxFiles.zip",
            sha256=None,
            members={
                "SNLS80mV.csv": "ae62d5a91230c10f76e6dd02c8a4fac3c9d4d8a95fbf50e87cb0c4885003e0f1"
            },
            paths={"SNLS80mV.csv": "SilverboxFiles/SNLS80mV.csv"},
        ),
    ),
    "wiener-hammerstein": _Spec(
        title="Wiener–Hammerstein",
        files=(("WienerHammerBenchmark.csv", "WienerHammerBenchMark.mat"),),
        read=_wiener_hammerstein,
        window=50,
        unit="mV",
        scale=1000.0,
        reference="J. Schoukens, J. Suykens and L. Ljung, Wiener–Hammerstein benchmark, "
        "SYSID 2009.",
        # The .mat file nonlinear-benchmarks downloads; no checksum could be verified offline
        # (the CSV in ../shared/data is a different file of the same data).
        remote=_fetch.Remote(
            url="http://www.ee.kth.se/~hjalmars/ifac_tc11_benchmarks/2009_wienerhammerstein/"
            "WienerHammerBenchMark.mat",
            fname="WienerHammerBenchMark.mat",
            sha256=None,
            members={"WienerHammerBenchMark.mat": None},
        ),
    ),
    "cascaded-tanks": _Spec(
        title="cascaded tanks",
        files=(("dataBenchmark.csv",),),
        read=_cascaded_tanks,
        # nonlinear-benchmarks' current documentation gives 50 (its first releases used 5)
        window=50,
        unit="V",
        scale=1.0,
        reference="M. Schoukens, P. Mattson, T. Wigren and J.-P. Noël, Cascaded tanks "
        "benchmark combining soft and hard nonlinearities, 2016.",
        remote=None,
    ),
    "f16": _Spec(
        title="F-16",
        files=tuple((name,) for name in (*_F16_TRAIN, *_F16_TEST)),
        read=_f16,
        # nonlinear-benchmarks defines no window for F-16 (in the versions read); r2dn uses 50
        window=50,
        unit="m/s²",
        scale=1.0,
        reference="J.P. Noël and M. Schoukens, F-16 aircraft benchmark based on ground "
        "vibration test data, 2017 Workshop on Nonlinear System Identification Benchmarks.",
        remote=_F16_REMOTE,
    ),
    "emps": _Spec(
        title="EMPS",
        files=(("DATA_EMPS.mat",), ("DATA_EMPS_PULSES.mat",)),
        read=_emps,
        window=20,
        unit="mm",
        scale=1000.0,
        reference="A. Janot, M. Gautier and M. Brunot, Data set and reference models of EMPS, "
        "2019 Workshop on Nonlinear System Identification Benchmarks.",
        # The address nonlinear-benchmarks downloads EMPS.zip from (Google Drive); the files lie
        # at its top level there. No checksum could be verified offline.
        remote=_fetch.Remote(
            url="https://drive.google.com/uc?export=download&id=1zwoXYa9-3f8NQ0ohzmjpF7UxbNgRTHkS",
            fname="EMPS.zip",
            sha256=None,
            members={"DATA_EMPS.mat": None, "DATA_EMPS_PULSES.mat": None},
        ),
    ),
    "ced": _Spec(
        title="coupled electric drives",
        files=(("DATAUNIF.MAT",),),
        read=_ced,
        window=10,
        unit="ticks/s",
        scale=1.0,
        reference="T. Wigren and M. Schoukens, Coupled electric drives data set and reference "
        "models, Technical report, Uppsala University, 2017.",
        # The address nonlinear-benchmarks downloads from; no checksum verified offline.
        remote=_fetch.Remote(
            url="http://www.it.uu.se/research/publications/reports/2017-024/"
            "CoupledElectricDrivesDataSetAndReferenceModels.zip",
            fname="CoupledElectricDrivesDataSetAndReferenceModels.zip",
            sha256=None,
            members={"DATAUNIF.MAT": None},
        ),
    ),
}
