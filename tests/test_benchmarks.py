"""The standard benchmarks: official splits, windows, units, files and data objects.

Real data come from `$R2DN_SHARED_DATA` (default: `../shared/data` beside the repository);
tests that need them are skipped, saying so, when the folder is absent.
"""

import dataclasses
import functools
import http.server
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from r2dn.data import Benchmark, SequenceData, benchmarks, load_cascaded_tanks, load_f16
from r2dn.data.benchmarks import from_io_data, load, names

SHARED = Path(
    os.environ.get("R2DN_SHARED_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
F16_TRAIN = [f"F16Data_FullMSine_Level{k}.csv" for k in (1, 3, 5, 7)]
F16_TEST = [f"F16Data_FullMSine_Level{k}_Validation.csv" for k in (2, 4, 6)]


def shared(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"benchmark data {path} not found (set R2DN_SHARED_DATA to its folder)")
    return path


def rows(path: Path, columns: list[int]) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=columns)


def test_names_and_unknown_benchmark():
    assert names() == (
        "silverbox",
        "wiener-hammerstein",
        "cascaded-tanks",
        "f16",
        "emps",
        "ced",
    )
    with pytest.raises(ValueError, match=r"unknown benchmark 'silverbax'; choose one of \["):
        load("silverbax")
    with pytest.raises(ValueError, match="not both"):
        load("f16", "/tmp", cache_dir="/tmp")


# --- the benchmarks on the real files ----------------------------------------------------------


@pytest.fixture(scope="module")
def silverbox() -> Benchmark:
    return load("silverbox", shared("silverbox"))


def test_silverbox_split(silverbox):
    table = rows(shared("silverbox") / "SNLS80mV.csv", [0, 1])
    assert (silverbox.window, silverbox.unit, silverbox.scale) == (50, "mV", 1000.0)
    assert silverbox.train.dt == pytest.approx(1 / 610.35)
    # multisine part [40650, 127400): first 75 % train, the rest the multisine test set
    assert silverbox.train.length == int(0.75 * (127400 - 40650)) == 65062
    np.testing.assert_array_equal(silverbox.train.u[0, :, 0], table[40650 : 40650 + 65062, 0])
    expected = {
        "multisine": (40650 + 65062, 127400),
        "arrow_full": (100, 40575),
        "arrow_no_extrapolation": (100, 100 + 32000),
    }
    assert list(silverbox.test) == list(expected)
    for name, (start, stop) in expected.items():
        np.testing.assert_array_equal(silverbox.test[name].y[0, :, 0], table[start:stop, 1])


def test_rmse_scores_after_the_window_in_the_benchmark_unit(silverbox):
    y = silverbox.test["multisine"].y
    y_pred = y + 0.002  # 2 mV everywhere ...
    y_pred[:, : silverbox.window] = 100.0  # ... except in the window, which is not scored
    np.testing.assert_allclose(silverbox.rmse("multisine", y_pred), [2.0])
    np.testing.assert_allclose(silverbox.rmse("multisine", y_pred[0]), [2.0])  # (T, ny)
    with pytest.raises(ValueError, match=r"shape \(1, 10, 1\) for test set 'multisine'"):
        silverbox.rmse("multisine", y[:, :10])
    with pytest.raises(ValueError, match=r"no test set 'arrow'; it has \['multisine'"):
        silverbox.rmse("arrow", y)


def test_wiener_hammerstein_split():
    folder = shared("wh2009")
    bench = load("Wiener_Hammerstein", folder)  # case, - and _ do not matter
    table = rows(folder / "WienerHammerBenchmark.csv", [0, 1])
    assert (bench.train.length, bench.test["test"].length) == (100000, 78800)
    assert bench.train.dt == 1 / 51200 and (bench.window, bench.unit) == (50, "mV")
    np.testing.assert_array_equal(bench.train.u[0, :, 0], table[5200:105200, 0])
    np.testing.assert_array_equal(bench.test["test"].y[0, :, 0], table[105200:184000, 1])


def test_cascaded_tanks_shipped_file_is_the_official_one():
    shipped = load("cascaded-tanks")
    assert (shipped.window, shipped.unit, shipped.train.dt) == (50, "V", 4.0)
    assert (shipped.train.length, shipped.test["test"].length) == (1024, 1024)
    official = load("cascaded-tanks", shared("cascaded_tanks"))
    np.testing.assert_array_equal(shipped.train.u, official.train.u)
    np.testing.assert_array_equal(shipped.test["test"].y, official.test["test"].y)
    estimation, validation = load_cascaded_tanks()
    np.testing.assert_array_equal(validation.y, shipped.test["test"].y)


def test_f16_official_split():
    folder = shared("f16gvt")
    bench = load("f16", folder)
    assert bench.train.u.shape == (4, 73728, 2) and bench.train.y.shape == (4, 73728, 3)
    assert list(bench.test) == ["level2", "level4", "level6"]
    assert bench.train.dt == 1 / 400
    assert bench.train.output_names == ("Acceleration1", "Acceleration2", "Acceleration3")
    level4 = rows(folder / F16_TEST[1], list(range(5)))
    np.testing.assert_array_equal(bench.test["level4"].u[0], level4[:, :2])
    np.testing.assert_array_equal(bench.train.y[2], rows(folder / F16_TRAIN[2], [2, 3, 4]))
    # the paper's loader: the same records, test levels as one batch, level-4 normalisation
    train, validation, norm = load_f16(folder)
    np.testing.assert_array_equal(train.u, bench.train.u)
    np.testing.assert_array_equal(validation.y[1], level4[:, 2:])
    np.testing.assert_allclose(norm.y_std, level4[:, 2:].std(axis=0))


def test_f16_from_the_archive_layout(tmp_path):
    (tmp_path / "F16GVT_Files").mkdir()
    (tmp_path / "F16GVT_Files" / "BenchmarkData").symlink_to(shared("f16gvt"))
    assert load("f16", tmp_path).train.batch == 4


# --- bad files ----------------------------------------------------------------------------------


def test_benchmark_file_with_the_wrong_columns(tmp_path):
    (tmp_path / "SNLS80mV.csv").write_text('"in","out",\n1,2,\n')
    with pytest.raises(
        ValueError, match=r"not a file of the Silverbox benchmark: .* \['V1', 'V2'\]"
    ):
        load("silverbox", tmp_path)
    scipy.io.savemat(tmp_path / "DATAUNIF.MAT", {"u1": np.zeros((500, 1))})
    with pytest.raises(ValueError, match=r"coupled electric drives benchmark: .* \['u11', 'u12'"):
        load("ced", tmp_path)


def test_benchmark_file_too_short_for_the_split(tmp_path):
    (tmp_path / "SNLS80mV.csv").write_text('"V1","V2",\n' + "1,2,\n" * 1000)
    with pytest.raises(ValueError, match=r"has 1000 samples but the Silverbox .* needs 127400"):
        load("silverbox", tmp_path)


def test_benchmark_file_not_in_root(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SNLS80mV\.csv or SNLS80mV\.mat not found in"):
        load("silverbox", tmp_path)


# --- MAT files (EMPS, CED, and the Wiener–Hammerstein download), built locally ------------------


def test_emps_from_mat_files(tmp_path):
    t = np.arange(300)[:, None] * 1e-3
    for name, n in (("DATA_EMPS.mat", 300), ("DATA_EMPS_PULSES.mat", 200)):
        scipy.io.savemat(
            tmp_path / name,
            {"qm": np.sin(t[:n]), "vir": np.cos(t[:n]), "t": t[:n], "qg": t[:n]},
        )
    bench = load("emps", tmp_path)
    assert (bench.train.length, bench.test["test"].length) == (300, 200)
    assert bench.train.dt == pytest.approx(1e-3)
    assert (bench.window, bench.unit, bench.scale) == (20, "mm", 1000.0)
    np.testing.assert_allclose(bench.test["test"].y[0, :, 0], np.sin(t[:200, 0]))


def test_ced_split_from_mat_file(tmp_path):
    signals = {
        f"{k}": np.arange(500.0)[:, None] + i for i, k in enumerate(("u11", "u12", "z11", "z12"))
    }
    scipy.io.savemat(tmp_path / "DATAUNIF.MAT", signals)
    bench = load("ced", tmp_path)
    assert bench.train.u.shape == (2, 400, 1) and bench.train.dt == 0.02
    assert [bench.test[k].length for k in ("low", "high")] == [100, 100]
    np.testing.assert_array_equal(bench.test["high"].y[0, :, 0], signals["z12"][400:, 0])
    assert (bench.window, bench.unit) == (10, "ticks/s")


def test_wiener_hammerstein_from_mat_file(tmp_path):
    n = 184000
    scipy.io.savemat(
        tmp_path / "WienerHammerBenchMark.mat",
        {"uBenchMark": np.arange(n)[:, None] * 1.0, "yBenchMark": np.ones((n, 1)), "fs": 51200.0},
    )
    bench = load("wiener-hammerstein", tmp_path)
    assert bench.train.u[0, 0, 0] == 5200 and bench.test["test"].length == 78800


# --- download through pooch, from a local server ------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_f16_download_extracts_and_verifies(monkeypatch, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "F16GVT_Files.zip", "w") as zf:  # the official layout
        for name in F16_TRAIN + F16_TEST:
            zf.write(shared("f16gvt") / name, f"F16GVT_Files/BenchmarkData/{name}")
    handler = functools.partial(QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        spec = benchmarks._SPECS["f16"]
        url = f"http://127.0.0.1:{httpd.server_address[1]}/F16GVT_Files.zip"
        remote = dataclasses.replace(spec.remote, url=url)
        monkeypatch.setitem(benchmarks._SPECS, "f16", dataclasses.replace(spec, remote=remote))
        monkeypatch.setenv("R2DN_CACHE", str(tmp_path / "cache"))
        bench = load("f16")  # verified against the official files' SHA-256
    finally:
        httpd.shutdown()
        httpd.server_close()
    cache = tmp_path / "cache" / "f16gvt"
    assert sorted(p.name for p in cache.iterdir()) == sorted(F16_TRAIN + F16_TEST)
    assert bench.train.batch == 4 and load("f16", download=False).test["level6"].length == 73728


# --- data objects of the nonlinear-benchmarks package -------------------------------------------


class InputOutputData:
    """A local stand-in with the attributes of nonlinear_benchmarks' Input_output_data."""

    def __init__(self, u, y, sampling_time=None, name="", window=None):
        self.u, self.y, self.sampling_time, self.name = u, y, sampling_time, name
        self.state_initialization_window_length = window


def test_from_io_data_one_object_and_a_list():
    u, y = np.arange(6.0), np.arange(6.0) * 2
    data = from_io_data(InputOutputData(u, y, sampling_time=0.5))
    assert isinstance(data, SequenceData) and data.u.shape == (1, 6, 1) and data.dt == 0.5
    assert (data.input_names, data.output_names) == (("u0",), ("y0",))
    two = from_io_data(
        [InputOutputData(u[:, None], np.stack([y, y], 1), 0.5) for _ in range(2)],
        input_names=["force"],
    )
    assert two.u.shape == (2, 6, 1) and two.y.shape == (2, 6, 2) and two.input_names == ("force",)


def test_from_io_data_rejects_bad_objects():
    with pytest.raises(ValueError, match="no sampling_time; pass dt="):
        from_io_data(InputOutputData(np.zeros(3), np.zeros(3)))
    assert from_io_data(InputOutputData(np.zeros(3), np.zeros(3)), dt=2.0).dt == 2.0
    with pytest.raises(TypeError, match="object 0 \\(ndarray\\) is not an Input_output_data"):
        from_io_data(np.zeros(3))
    with pytest.raises(ValueError, match="different sampling times"):
        from_io_data([InputOutputData(np.zeros(3), np.zeros(3), t) for t in (0.1, 0.2)])
    with pytest.raises(ValueError, match="different lengths"):
        from_io_data([InputOutputData(np.zeros(n), np.zeros(n), 0.1) for n in (3, 4)])


def test_a_file_that_is_not_a_mat_file(tmp_path):
    (tmp_path / "DATAUNIF.MAT").write_text("<html>moved</html>")
    with pytest.raises(ValueError, match=r"cannot be read as a MAT file of the coupled electric"):
        load("ced", tmp_path)


def test_empty_cache_without_download_says_how_to_supply_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not in the cache .* pass root= the folder"):
        load("silverbox", cache_dir=tmp_path, download=False)
