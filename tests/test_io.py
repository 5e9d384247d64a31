"""Tests of model specs and single-file model storage (`r2dn.registry`, `r2dn.io`)."""

import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from r2dn.data import Normalizer
from r2dn.io import (
    MAGIC,
    FileFormatError,
    TrainedModel,
    is_array_like,
    load_model,
    read_header,
    save_model,
    write_tree,
)
from r2dn.registry import MODELS, ModelSpec

SIZES = dict(nu=2, nx=3, nv=2, ny=2, hidden=[4])
SPECS = {
    "contracting-r2dn": ModelSpec("contracting-r2dn", SIZES | {"alpha_bar": 0.9}),
    "lipschitz-r2dn": ModelSpec("lipschitz-r2dn", SIZES | {"gamma": 3.0, "init": "long_memory"}),
    "robust-r2dn": ModelSpec(
        "robust-r2dn",
        SIZES | {"Q": -np.eye(2), "S": 0.1 * np.ones((2, 2)), "R": 2 * np.eye(2)},
    ),
}


def trained_model(spec: ModelSpec, seed: int = 1) -> TrainedModel:
    rng = np.random.default_rng(seed)
    return TrainedModel(
        model=spec.build(jax.random.key(seed)),
        spec=spec,
        normalizer=Normalizer(
            u_mean=rng.normal(size=2),
            u_std=rng.uniform(0.5, 2, 2),
            y_mean=rng.normal(size=2),
            y_std=rng.uniform(0.5, 2, 2),
        ),
        dt=0.25,
        input_names=("force", "voltage"),
        output_names=("a1", "a2"),
        metrics={"validation": {"overall": {"rmse": 0.5}}},
    )


def leaves(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def test_every_registered_kind_is_covered():
    assert set(SPECS) <= set(MODELS)


def test_spec_stores_json_form_and_round_trips():
    spec = SPECS["robust-r2dn"]
    assert spec.kwargs["hidden"] == [4] and spec.kwargs["S"] == [[0.1, 0.1], [0.1, 0.1]]
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


@pytest.mark.parametrize(
    ("kind", "kwargs", "error", "message"),
    [
        ("unknown-net", SIZES, ValueError, "unknown model kind 'unknown-net'; choose one of"),
        ("lipschitz-r2dn", {"nu": 1, "nx": 2, "gamma": 1.0}, ValueError, r"lack the sizes \['nv'"),
        ("lipschitz-r2dn", SIZES | {"gamma": object()}, TypeError, "JSON-serialisable"),
        ("contracting-r2dn", SIZES | {"key": 0}, ValueError, "must not contain 'key'"),
    ],
)
def test_spec_rejects_bad_input(kind, kwargs, error, message):
    with pytest.raises(error, match=message):
        ModelSpec(kind, kwargs)


def test_spec_build_names_the_kind_on_bad_arguments():
    spec = ModelSpec("contracting-r2dn", SIZES | {"gamma": 2.0})
    with pytest.raises(TypeError, match="cannot build a 'contracting-r2dn' model"):
        spec.build(jax.random.key(0))


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_save_load_round_trip(tmp_path, kind):
    trained = trained_model(SPECS[kind])
    path = save_model(tmp_path / "model.r2dn", trained)
    loaded = load_model(path)
    for a, b in zip(leaves(trained.model), leaves(loaded.model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.spec == trained.spec
    assert loaded.normalizer.to_dict() == trained.normalizer.to_dict()
    assert (loaded.dt, loaded.input_names, loaded.output_names) == (
        0.25,
        ("force", "voltage"),
        ("a1", "a2"),
    )
    assert loaded.metrics == trained.metrics
    # the loaded model keeps its certificate data: same supply rate and rate
    assert loaded.model.supply == trained.model.supply
    assert loaded.model.alpha_bar == trained.model.alpha_bar


def test_predict_works_in_physical_units():
    """predict = denormalise ∘ (the model in its own units) ∘ normalise."""
    trained = trained_model(SPECS["lipschitz-r2dn"])
    identity = Normalizer(
        u_mean=np.zeros(2), u_std=np.ones(2), y_mean=np.zeros(2), y_std=np.ones(2)
    )
    in_model_units = dataclasses.replace(trained, normalizer=identity)
    u = np.random.default_rng(0).normal(size=(2, 15, 2))
    expected = trained.normalizer.denormalize_y(
        in_model_units.predict(trained.normalizer.normalize_u(u))
    )
    np.testing.assert_allclose(trained.predict(u), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(trained.predict(u), in_model_units.predict(u), atol=1e-2)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, nu\) with nu = 2 \(force, voltage\)"):
        trained.predict(np.ones((15, 3)))


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no r2dn file at"):
        load_model(tmp_path / "absent.r2dn")


def test_load_rejects_a_file_that_is_not_r2dn(tmp_path):
    path = tmp_path / "model.eqx"
    eqx.tree_serialise_leaves(path, trained_model(SPECS["lipschitz-r2dn"]).model)
    with pytest.raises(FileFormatError, match="is not an r2dn file"):
        load_model(path)


def test_load_rejects_a_corrupt_header(tmp_path):
    path = save_model(tmp_path / "m.r2dn", trained_model(SPECS["lipschitz-r2dn"]))
    data = path.read_bytes()
    path.write_bytes(MAGIC + b"{not json" + data[data.index(b"\n", len(MAGIC)) :])
    with pytest.raises(FileFormatError, match="JSON header is corrupt"):
        load_model(path)


def test_load_rejects_a_header_of_another_model(tmp_path):
    """A contracting model's header over a Lipschitz model's arrays (same sizes)."""
    header = trained_model(SPECS["contracting-r2dn"]).header()
    model = trained_model(SPECS["lipschitz-r2dn"]).model
    path = write_tree(tmp_path / "m.r2dn", "model", header, model)
    with pytest.raises(FileFormatError, match="does not match .* its header implies"):
        load_model(path)


def test_load_rejects_truncated_and_padded_data(tmp_path):
    path = save_model(tmp_path / "m.r2dn", trained_model(SPECS["contracting-r2dn"]))
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    with pytest.raises(FileFormatError, match="truncated or corrupt"):
        load_model(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(FileFormatError, match="data left over"):
        load_model(path)


def test_load_rejects_invalid_header_contents(tmp_path):
    trained = trained_model(SPECS["contracting-r2dn"])
    header = trained.header()
    header["model"] = {"kind": "no-such-model", "kwargs": header["model"]["kwargs"]}
    path = write_tree(tmp_path / "m.r2dn", "model", header, trained.model)
    with pytest.raises(FileFormatError, match="invalid model header.*unknown model kind"):
        load_model(path)


def test_readers_check_what_a_file_holds(tmp_path):
    path = write_tree(tmp_path / "c.r2dn", "checkpoint", {}, {})
    with pytest.raises(FileFormatError, match="holds an r2dn 'checkpoint', not a 'model'"):
        load_model(path)
    header = json.loads(path.read_bytes()[len(MAGIC) :].split(b"\n")[0])
    header["version"] = 99
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n")
    with pytest.raises(FileFormatError, match="format version 99"):
        read_header(path, "checkpoint")


def test_save_is_atomic(tmp_path, monkeypatch):
    """A failed write leaves the previous file untouched and no temporary file behind."""
    trained = trained_model(SPECS["lipschitz-r2dn"])
    path = save_model(tmp_path / "m.r2dn", trained)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(eqx, "tree_serialise_leaves", fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, trained_model(SPECS["lipschitz-r2dn"], seed=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.r2dn"]


SKELETON_SPECS = [
    ModelSpec(
        "contracting-r2dn", SIZES | {"nx": 2, "init": "long_memory", "identity_output": True}
    ),
    ModelSpec("lipschitz-r2dn", SIZES | {"gamma": 0.5, "init": "long_memory"}),
    ModelSpec("lipschitz-r2dn", SIZES | {"gamma": 2.0, "feedthrough": "free"}),
    ModelSpec("contracting-ren", {"nu": 2, "nx": 3, "nv": 4, "ny": 2, "init": "long_memory"}),
    ModelSpec("passive-ren", {"nu": 2, "nx": 3, "nv": 4, "ny": 2, "init": "long_memory"}),
    ModelSpec(
        "robust-ren",
        {"nu": 2, "nx": 3, "nv": 4, "ny": 2, "init": "long_memory"}
        | {"Q": -np.eye(2), "S": 0.1 * np.ones((2, 2)), "R": 2 * np.eye(2)},
    ),
]


def _signature(tree) -> tuple:
    return jax.tree.structure(tree), [
        (x.shape, np.dtype(x.dtype)) if is_array_like(x) else x for x in jax.tree.leaves(tree)
    ]


@pytest.mark.parametrize("spec", SKELETON_SPECS, ids=lambda s: s.kind)
def test_skeleton_has_the_structure_of_the_built_model(spec):
    """Files are read into `ModelSpec.skeleton`; it must match what `build` makes."""
    assert _signature(spec.skeleton()) == _signature(spec.build(jax.random.key(3)))


def test_loading_runs_no_initialisation(tmp_path, monkeypatch):
    """Loading reads arrays into a traced skeleton: no long-memory factorisation, no build."""
    trained = trained_model(SPECS["lipschitz-r2dn"])
    path = save_model(tmp_path / "model.r2dn", trained)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_model initialised a model")

    monkeypatch.setattr("r2dn.parameterizations.init.gram_factor", forbidden)
    monkeypatch.setattr("r2dn.models.lti.gram_factor", forbidden)
    loaded = load_model(path)
    assert all(eqx.is_array(x) for x in jax.tree.leaves(eqx.filter(loaded.model, is_array_like)))
    for a, b in zip(leaves(loaded.model), leaves(trained.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_flipped_byte_or_an_edited_header_is_an_error(tmp_path):
    """The header's SHA-256 covers the header and the arrays (format version 2)."""
    path = save_model(tmp_path / "m.r2dn", trained_model(SPECS["lipschitz-r2dn"]))
    data = bytearray(path.read_bytes())
    header_end = data.index(b"\n", len(MAGIC)) + 1
    flipped = data.copy()
    npy = data.index(b"\x93NUMPY", header_end)  # the first stored array (NumPy's format)
    values = npy + 10 + int.from_bytes(data[npy + 8 : npy + 10], "little")
    flipped[values] ^= 0x01  # a bit of its first value: the file still parses
    path.write_bytes(bytes(flipped))
    with pytest.raises(FileFormatError, match="checksum does not match"):
        load_model(path)
    header = json.loads(data[len(MAGIC) : header_end])
    assert header["version"] == 2 and len(header["sha256"]) == 64
    header["model"]["kwargs"]["gamma"] = 0.5  # γ 3 → 0.5 by hand: the metrics would be stale
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + bytes(data[header_end:]))
    with pytest.raises(FileFormatError, match="modified or corrupted"):
        load_model(path)
    path.write_bytes(bytes(data))
    assert load_model(path).spec == trained_model(SPECS["lipschitz-r2dn"]).spec


def test_files_of_format_version_1_have_no_checksum_and_still_load():
    legacy = Path(__file__).parent / "data" / "lipschitz-r2dn.r2dn"
    assert read_header(legacy, "model")["version"] == 1
    assert load_model(legacy).spec.kind == "lipschitz-r2dn"


def test_predict_names_inputs_that_are_not_real_numbers():
    trained = trained_model(SPECS["lipschitz-r2dn"])
    for bad in (np.array([["a", "b"]]), np.ones((3, 2), dtype=complex)):
        with pytest.raises(TypeError, match="real numbers in physical units"):
            trained.predict(bad)
