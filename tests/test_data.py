"""Tests of the data layer."""

import dataclasses
import json
import shutil
import time
import zipfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from r2dn.data import (
    Normalizer,
    SequenceData,
    load_cascaded_tanks,
    load_csv,
    load_f16,
    load_npz,
    loaders,
)


def make_data(batch=2, steps=10, nu=2, ny=3, seed=0, **kwargs) -> SequenceData:
    rng = np.random.default_rng(seed)
    fields = dict(
        u=rng.normal(size=(batch, steps, nu)),
        y=rng.normal(size=(batch, steps, ny)),
        dt=0.5,
        input_names=tuple(f"in{i}" for i in range(nu)),
        output_names=tuple(f"out{i}" for i in range(ny)),
    )
    return SequenceData(**(fields | kwargs))


# --- SequenceData -------------------------------------------------------------------------------


def test_sequence_data_properties_and_coercion():
    data = make_data(u=np.arange(2 * 10 * 2).reshape(2, 10, 2), input_names=["a", "b"])
    assert (data.batch, data.length, data.nu, data.ny) == (2, 10, 2, 3)
    assert data.u.dtype == np.float64  # integers become floats
    assert data.input_names == ("a", "b")  # lists become tuples
    assert make_data(y=np.zeros((2, 10, 3), np.float32)).y.dtype == np.float32


def test_sequence_data_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_data().dt = 1.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"u": np.zeros((10, 2))},
            r"u must have shape \(batch, T, channels\), got shape \(10, 2\)",
        ),
        ({"y": np.zeros((2, 9, 3))}, r"agree in \(batch, T\), got u \(2, 10\) and y \(2, 9\)"),
        ({"u": np.zeros((2, 10, 0)), "input_names": ()}, "at least one step and one channel"),
        ({"output_names": ("a", "b")}, "2 output names .* for 3 output channels"),
        ({"dt": 0.0}, "dt must be a positive sampling time"),
        ({"dt": float("nan")}, "dt must be a positive sampling time"),
    ],
)
def test_sequence_data_rejects_bad_input(fields, message):
    with pytest.raises(ValueError, match=message):
        make_data(**fields)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sequence_data_locates_first_non_finite_value(bad):
    y = np.zeros((2, 10, 3))
    y[1, 7, 2] = bad
    y[1, 8, 0] = bad  # later in time: not the first
    with pytest.raises(ValueError, match=r"output channel 'out2' .* record 1, step 7"):
        make_data(y=y)


@settings(max_examples=50)
@given(steps=st.integers(1, 40), length=st.integers(1, 40))
def test_segments_partition_the_record(steps, length):
    data = make_data(steps=steps)
    if length > steps:
        with pytest.raises(ValueError, match=f"segment length {length} exceeds .* T = {steps}"):
            next(data.segments(length))
        return
    pairs = list(data.segments(length))
    assert len(pairs) == steps // length
    assert all(u.shape == (2, length, 2) and y.shape == (2, length, 3) for u, y in pairs)
    kept = len(pairs) * length
    np.testing.assert_array_equal(np.concatenate([u for u, _ in pairs], axis=1), data.u[:, :kept])
    np.testing.assert_array_equal(np.concatenate([y for _, y in pairs], axis=1), data.y[:, :kept])


def test_segments_rejects_nonpositive_length():
    with pytest.raises(ValueError, match="at least 1"):
        next(make_data().segments(0))


def test_concat_batch_stacks_records():
    a, b = make_data(batch=2, seed=0), make_data(batch=1, seed=1)
    both = SequenceData.concat_batch([a, b])
    assert both.batch == 3
    np.testing.assert_array_equal(both.u, np.concatenate([a.u, b.u]))
    np.testing.assert_array_equal(both.y[2], b.y[0])
    assert (both.dt, both.input_names) == (a.dt, a.input_names)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (make_data(steps=11), "dataset 1 does not match dataset 0: length 10 != 11"),
        (make_data(dt=0.1), "dt 0.5 != 0.1"),
        (make_data(output_names=("x", "y", "z")), "output names"),
    ],
)
def test_concat_batch_rejects_mismatched_datasets(other, message):
    with pytest.raises(ValueError, match=message):
        SequenceData.concat_batch([make_data(), other])


def test_from_records_batches_equal_lengths():
    records = [(np.ones((5, 1)), np.zeros((5, 2))), (2 * np.ones((5, 1)), np.ones((5, 2)))]
    data = SequenceData.from_records(records, dt=1.0, input_names=["u"], output_names=["a", "b"])
    assert data.u.shape == (2, 5, 1) and data.y.shape == (2, 5, 2)
    np.testing.assert_array_equal(data.u[:, 0, 0], [1.0, 2.0])


def test_from_records_ragged_lengths_error_or_truncate():
    records = [(np.arange(5.0)[:, None], np.arange(5.0)[:, None]), (np.ones((3, 1)),) * 2]
    names = dict(dt=1.0, input_names=["u"], output_names=["y"])
    with pytest.raises(ValueError, match=r"different lengths \[5, 3\].*truncate=True"):
        SequenceData.from_records(records, **names)
    data = SequenceData.from_records(records, **names, truncate=True)
    assert data.length == 3
    np.testing.assert_array_equal(data.u[0, :, 0], [0.0, 1.0, 2.0])


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ((np.ones((5, 1)), np.ones((4, 1))), "record 0: u has 5 steps but y has 4"),
        ((np.ones(5), np.ones((5, 1))), r"shape \(T, channels\).*x\[:, None\]"),
    ],
)
def test_from_records_rejects_bad_records(record, message):
    with pytest.raises(ValueError, match=message):
        SequenceData.from_records([record], dt=1.0, input_names=["u"], output_names=["y"])


# --- Normalizer ---------------------------------------------------------------------------------

finite_records = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=4, min_side=2, max_side=6),
    elements=st.floats(-1e3, 1e3, allow_subnormal=False),
)


@given(y=finite_records)
def test_normalizer_round_trip(y):
    assume((y.reshape(-1, y.shape[-1]).std(axis=0) > 1e-3).all())  # constant: tested below
    norm = Normalizer.from_record(y[..., :1], y)
    np.testing.assert_allclose(norm.denormalize_y(norm.normalize_y(y)), y, atol=1e-9, rtol=1e-9)
    z = norm.normalize_y(y).reshape(-1, y.shape[-1])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-6)


def test_normalizer_fit_and_apply():
    data = make_data(batch=3, steps=50)
    norm = Normalizer.fit(data)
    np.testing.assert_allclose(norm.u_mean, data.u.mean(axis=(0, 1)))
    np.testing.assert_allclose(norm.y_std, data.y.std(axis=(0, 1)))
    normalized = norm.apply(data)
    np.testing.assert_allclose(normalized.u.mean(axis=(0, 1)), 0, atol=1e-12)
    np.testing.assert_allclose(normalized.y.std(axis=(0, 1)), 1)
    assert (normalized.dt, normalized.output_names) == (data.dt, data.output_names)


def test_normalizer_dict_round_trip_is_exact_through_json():
    norm = Normalizer.fit(make_data(seed=3))
    restored = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    for field in ("u_mean", "u_std", "y_mean", "y_std"):
        np.testing.assert_array_equal(getattr(restored, field), getattr(norm, field))


def test_normalizer_from_dict_rejects_wrong_keys():
    stats = Normalizer.fit(make_data()).to_dict()
    del stats["y_std"]
    with pytest.raises(ValueError, match="expected exactly the keys"):
        Normalizer.from_dict(stats)


def test_normalizer_rejects_constant_channel():
    y = make_data().y.copy()
    y[..., 1] = 0.1  # constant, and its float mean is not exactly 0.1
    with pytest.raises(ValueError, match=r"constant output channel\(s\) \['out1'\]"):
        Normalizer.fit(make_data(y=y))


def test_normalizer_keeps_array_kind_and_float32():
    norm = Normalizer.fit(make_data())
    y32 = jnp.ones((4, 5, 3), jnp.float32)
    out = norm.normalize_y(y32)
    assert isinstance(out, jax.Array) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, norm.normalize_y(np.ones((4, 5, 3))), rtol=1e-6)
    assert norm.denormalize_y(np.ones((3,), np.float32)).dtype == np.float32


def test_normalizer_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"u has 3 channels .* fitted on 2"):
        Normalizer.fit(make_data()).normalize_u(np.ones((10, 3)))


# --- load_csv / load_npz ------------------------------------------------------------------------


def write_benchmark_csv(path: Path, rows: list[str]) -> Path:
    """A CSV in the nonlinearbenchmark.org layout: quoted names, trailing commas, blank end."""
    path.write_text('"a","b","c","Ts",\n' + "".join(f"{row},\n" for row in rows) + "\n")
    return path


def test_load_csv_reads_benchmark_layout(tmp_path):
    path = write_benchmark_csv(tmp_path / "d.csv", ["1,2,3,0.25", "4,5,6,", "7,8,9,"])
    data = load_csv(path, inputs=["c", "a"], outputs=["b"], dt_column="Ts")
    assert (data.batch, data.length, data.dt) == (1, 3, 0.25)
    np.testing.assert_array_equal(data.u[0], [[3, 1], [6, 4], [9, 7]])
    np.testing.assert_array_equal(data.y[0, :, 0], [2, 5, 8])
    assert (data.input_names, data.output_names) == (("c", "a"), ("b",))
    assert load_csv(path, ["a"], ["b"], dt=2.0).dt == 2.0


def test_load_csv_errors(tmp_path):
    path = write_benchmark_csv(tmp_path / "d.csv", ["1,2,3,1", "4,nan,6,"])
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_csv(tmp_path / "missing.csv", ["a"], ["b"], dt=1.0)
    with pytest.raises(ValueError, match=r"no column\(s\) \['x'\]; available columns: \['a', "):
        load_csv(path, ["x"], ["a"], dt=1.0)
    with pytest.raises(ValueError, match=r"d\.csv: output channel 'b' .* step 1"):
        load_csv(path, ["a"], ["b"], dt=1.0)
    with pytest.raises(ValueError, match="exactly one of dt="):
        load_csv(path, ["a"], ["c"])
    with pytest.raises(TypeError, match=r"sequence of column names, e.g. \['a'\]"):
        load_csv(path, "a", ["c"], dt=1.0)
    with pytest.raises(ValueError, match="first row of 'a' must be a number"):
        load_csv(write_benchmark_csv(tmp_path / "e.csv", [",2,3,1"]), ["b"], ["c"], dt_column="a")


@pytest.mark.parametrize("batch_shape", [(), (2,)])
def test_load_npz_round_trip(tmp_path, batch_shape):
    u, y = np.ones((*batch_shape, 6, 2)), np.zeros((*batch_shape, 6, 1))
    np.savez(tmp_path / "d.npz", inputs=u, y=y)
    data = load_npz(tmp_path / "d.npz", u_key="inputs", dt=0.1)
    assert data.u.shape == (*(batch_shape or (1,)), 6, 2)
    assert (data.input_names, data.output_names) == (("inputs0", "inputs1"), ("y0",))
    with pytest.raises(ValueError, match=r"no array\(s\) \['u'\]; available: \['inputs', 'y'\]"):
        load_npz(tmp_path / "d.npz", dt=0.1)


# --- benchmarks ---------------------------------------------------------------------------------


F16_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "f16gvt"
F16_FILES = sorted(
    [f"F16Data_FullMSine_Level{k}.csv" for k in (1, 3, 5, 7)]
    + [f"F16Data_FullMSine_Level{k}_Validation.csv" for k in (2, 4, 6)]
)


@pytest.fixture(scope="module")
def f16_dir() -> Path:
    if not F16_DIR.is_dir():
        pytest.skip(f"F-16 benchmark data not found at {F16_DIR}")
    return F16_DIR


def test_load_cascaded_tanks():
    estimation, validation = load_cascaded_tanks()
    for data in (estimation, validation):
        assert (data.u.shape, data.y.shape, data.dt) == ((1, 1024, 1), (1, 1024, 1), 4.0)
        assert (data.input_names, data.output_names) == (("u",), ("y",))
    # the first row of the benchmark file, in its column order uEst, uVal, yEst, yVal
    np.testing.assert_array_equal(
        [
            estimation.u[0, 0, 0],
            validation.u[0, 0, 0],
            estimation.y[0, 0, 0],
            validation.y[0, 0, 0],
        ],
        [3.2567, 0.97619, 5.205, 4.9728],
    )
    np.testing.assert_array_equal(estimation.y[0, -1], [3.6831])


def check_f16(train, validation, norm, f16_dir):
    assert train.u.shape == (4, 73728, 2) and train.y.shape == (4, 73728, 3)
    assert validation.u.shape == (3, 73728, 2) and validation.y.shape == (3, 73728, 3)
    assert train.dt == validation.dt == 1 / 400
    assert validation.input_names == ("Force", "Voltage")
    assert validation.output_names == ("Acceleration1", "Acceleration2", "Acceleration3")
    level4_file = f16_dir / "F16Data_FullMSine_Level4_Validation.csv"
    level4 = np.loadtxt(level4_file, delimiter=",", skiprows=1, usecols=range(5))
    np.testing.assert_array_equal(validation.u[1], level4[:, :2])  # order: levels 2, 4, 6
    np.testing.assert_allclose(norm.u_mean, level4[:, :2].mean(axis=0))
    np.testing.assert_allclose(norm.y_std, level4[:, 2:].std(axis=0))


def test_load_f16_from_root(f16_dir):
    check_f16(*load_f16(f16_dir), f16_dir)


def test_load_f16_from_archive_layout(f16_dir, tmp_path):
    (tmp_path / "BenchmarkData").symlink_to(f16_dir)
    check_f16(*load_f16(tmp_path), f16_dir)


def test_load_f16_is_fast(f16_dir):
    start = time.perf_counter()
    load_f16(f16_dir)
    assert time.perf_counter() - start < 5.0


def test_load_f16_root_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"F16Data_FullMSine_Level1\.csv.* not found in"):
        load_f16(tmp_path)
    with pytest.raises(ValueError, match="not both"):
        load_f16(tmp_path, cache_dir=tmp_path)


@pytest.fixture
def cache(f16_dir, tmp_path) -> Path:
    """A cache folder holding copies of the official CSVs."""
    folder = tmp_path / "cache"
    shutil.copytree(f16_dir, folder)
    return folder


def test_load_f16_from_verified_cache(cache, f16_dir):
    check_f16(*load_f16(cache_dir=cache, download=False), f16_dir)


def test_load_f16_deletes_corrupted_cache_file(cache):
    bad = cache / "F16Data_FullMSine_Level3.csv"
    text = bad.read_text()
    bad.write_text(text.replace("0.", "1.", 1))
    with pytest.raises(ValueError, match="Level3.csv is corrupted .* has been deleted"):
        load_f16(cache_dir=cache, download=False)
    assert not bad.exists()


def test_load_f16_default_cache_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("R2DN_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"not in the cache {tmp_path / 'f16gvt'}"):
        load_f16(download=False)


def test_load_f16_offline_download_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(loaders, "F16_URL", "http://127.0.0.1:9/")
    with pytest.raises(RuntimeError, match=r"Downloading .* failed: .* To fix: pass root="):
        load_f16(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial download left behind


def test_load_f16_downloads_extracts_and_verifies(monkeypatch, cache, tmp_path, f16_dir):
    archive = tmp_path / "served" / "F16GVT_Files.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:  # the official layout; stored, to be fast
        for name in F16_FILES:
            zf.write(cache / name, f"F16GVT_Files/BenchmarkData/{name}")
    monkeypatch.setattr(loaders, "F16_URL", archive.as_uri())
    empty = tmp_path / "new-cache"
    check_f16(*load_f16(cache_dir=empty), f16_dir)
    assert sorted(path.name for path in empty.iterdir()) == F16_FILES  # archive removed
    # A corrupted member is caught after extraction and deleted.
    (empty / F16_FILES[0]).unlink()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"F16GVT_Files/BenchmarkData/{F16_FILES[0]}", "corrupted")
    with pytest.raises(ValueError, match="is corrupted"):
        load_f16(cache_dir=empty)
    assert not (empty / F16_FILES[0]).exists()


def test_load_f16_rejects_a_download_that_is_not_the_archive(monkeypatch, tmp_path):
    page = tmp_path / "error.html"
    page.write_text("<html>not found</html>")
    monkeypatch.setattr(loaders, "F16_URL", page.as_uri())
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="is not the F-16 benchmark archive"):
        load_f16(cache_dir=cache)
    assert list(cache.iterdir()) == []
