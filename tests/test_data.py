"""Tests of the data layer."""

import dataclasses
import json
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
    load_csv,
    load_npz,
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
    with pytest.raises(ValueError, match="at most one of dt="):
        load_csv(path, ["a"], ["c"], dt=1.0, dt_column="Ts")
    with pytest.raises(TypeError, match=r"sequence of column names, e.g. \['a'\]"):
        load_csv(path, "a", ["c"], dt=1.0)
    with pytest.raises(ValueError, match=r"e\.csv line 2, column 'a' is empty"):
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


# --- CSV quirks of real files -------------------------------------------------------------------


def test_load_csv_reads_quoted_numbers_bom_and_crlf(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes('\ufeff"u","y"\r\n"1.5",2\r\n3,"-4e-1"\r\n'.encode())
    data = load_csv(path, ["u"], ["y"], dt=1.0)
    np.testing.assert_array_equal(data.u[0, :, 0], [1.5, 3])
    np.testing.assert_array_equal(data.y[0, :, 0], [2, -0.4])


@pytest.mark.parametrize(("header", "dt"), [("Ts", 0.25), ("dt", 0.25), ("fs", 4.0), ("Fs", 4.0)])
def test_load_csv_reads_sampling_time_column(tmp_path, header, dt):
    path = tmp_path / "d.csv"
    path.write_text(f'"a","b","{header}",\n1,2,{dt},\n3,4,,\n')
    assert load_csv(path, ["a"], ["b"]).dt == 0.25
    rate = tmp_path / "r.csv"
    rate.write_text('"a","b","rate",\n1,2,8,\n3,4,,\n')
    assert load_csv(rate, ["a"], ["b"], fs_column="rate").dt == 0.125
    with pytest.raises(ValueError, match="no sampling-time column .* pass dt="):
        load_csv(rate, ["a"], ["b"])


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ('"u","y",\n1,2,\n3,4,5,\n', {}, r"line 3 has 4 fields but the header \(line 1\) has 2"),
        ('"u","y"\n1,"2"\n3\n', {}, r"line 3 has 1 fields but the header"),
        ('"u","y",\n', {}, r"has a header \(line 1\) but no data rows"),
        ("", {}, "no header row of column names on line 1"),
        (
            '"u","u","y"\n1,2,3\n',
            {},
            r"column 'u' appears 2 times in the header \(columns \[1, 2\]\)",
        ),
        ('"u","y"\n1,2\n3,x\n', {}, r"line 3, column 'y' is 'x', not a number"),
        ('"u","y"\n1,2\n', {"outputs": ["u"]}, r"\['u'\] given as both input and output"),
        ('"u","y"\n1,2\n', {"inputs": ["u", "u"]}, r"inputs name the column\(s\) \['u'\] more"),
    ],
)
def test_load_csv_rejects_bad_files_naming_the_line(tmp_path, text, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_csv(path, **({"inputs": ["u"], "outputs": ["y"], "dt": 1.0} | kwargs))


def test_load_csv_names_file_and_line_of_latin1_text(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes('"u","y"\n1,2\n3,4\n"température",5\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv line 4 is not utf-8 text .* 'latin-1'"):
        load_csv(path, ["u"], ["y"], dt=1.0)
    path.write_bytes('"u","y°"\n1,2\n'.encode("latin-1"))
    assert load_csv(path, ["u"], ["y°"], dt=1.0, encoding="latin-1").output_names == ("y°",)


def test_load_csv_several_files_and_row_ranges(tmp_path):
    paths = [
        write_benchmark_csv(tmp_path / f"{k}.csv", [f"{k},{k + 1},0,1", "5,6,7,", "8,9,0,"])
        for k in (1, 2)
    ]
    data = load_csv(paths, ["a"], ["b"])  # dt from the Ts column of each file
    assert (data.batch, data.length, data.dt) == (2, 3, 1.0)
    np.testing.assert_array_equal(data.u[:, 0, 0], [1, 2])
    part = load_csv(paths, ["a"], ["b"], rows=(1, None))
    np.testing.assert_array_equal(part.u[0, :, 0], [5, 8])
    short = write_benchmark_csv(tmp_path / "short.csv", ["1,2,3,1"])
    with pytest.raises(ValueError, match=r"short\.csv: records have different lengths \[3, 1\]"):
        load_csv([paths[0], short], ["a"], ["b"])
    assert load_csv([paths[0], short], ["a"], ["b"], truncate=True).length == 1
    slow = write_benchmark_csv(tmp_path / "slow.csv", ["1,2,3,2", "4,5,6,"])
    with pytest.raises(ValueError, match="different sampling times"):
        load_csv([paths[0], slow], ["a"], ["b"])
    with pytest.raises(ValueError, match=r"time slice \[0, 9\) is outside the data .* T = 3"):
        load_csv(paths[0], ["a"], ["b"], rows=(0, 9))


# --- splits -------------------------------------------------------------------------------------


def test_split_and_time_slice_partition_the_records():
    data = make_data(steps=10)
    train, validation, test = data.split(6, 8)
    assert [train.length, validation.length, test.length] == [6, 2, 2]
    np.testing.assert_array_equal(
        np.concatenate([p.u for p in (train, validation, test)], 1), data.u
    )
    np.testing.assert_array_equal(data.time_slice(3).y, data.y[:, 3:])
    assert train.dt == data.dt and test.output_names == data.output_names


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ((10,), r"split point 10 is outside the data: .* T = 10 .* 1\.\.9"),
        ((0,), "split point 0 is outside the data"),
        ((-3,), "split point -3 is outside the data"),
        ((6, 4), r"split points must increase, got \[6, 4\]"),
        ((), "at least one split point"),
    ],
)
def test_split_rejects_points_outside_the_data(points, message):
    with pytest.raises(ValueError, match=message):
        make_data(steps=10).split(*points)


def test_time_slice_rejects_empty_or_outside_ranges():
    for start, stop in ((5, 5), (-1, 3), (0, 11)):
        with pytest.raises(ValueError, match="outside the data or empty"):
            make_data(steps=10).time_slice(start, stop)
