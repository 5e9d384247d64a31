"""The results table of ``benchmarks/sysid.py`` end to end in its ``--quick`` mode.

Cascaded tanks (shipped with r2dn, so nothing is skipped): every model trains a few steps,
is scored with the benchmark's own window and unit, and the R2DNs' certificates are checked.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sysid  # noqa: E402

from r2dn.data import SequenceData  # noqa: E402
from r2dn.data import benchmarks as bench  # noqa: E402
from r2dn.io import load_model  # noqa: E402


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("sysid")
    rows = sysid.main(["--quick", "--benchmarks", "cascaded-tanks", "--out", str(out)])
    return rows, out


def test_table_has_every_model_finite_and_certified(quick):
    rows, _ = quick
    assert [(r["benchmark"], r["test"], r["unit"]) for r in rows] == [
        ("cascaded-tanks", "test", "V")
    ]
    (row,) = rows
    for kind in sysid.MODEL_KINDS:
        entry = row[kind]
        assert entry["seeds"] == 1
        assert math.isfinite(entry["mean"]) and entry["mean"] > 0
        assert entry["certified"] is (None if kind == "reference-gru" else True)
    assert {m for m, _, _ in row["published"]} == {"GRU", "SUBNET (median)"}


def test_json_records_scores_certificates_and_hardware(quick):
    _, out = quick
    data = json.loads((out / "sysid_cascaded-tanks_quick.json").read_text())
    assert data["window"] == 50 and data["hardware"]["cores"] >= 1
    assert data["hardware"]["cpu"]
    runs = {r["model"]: r for r in data["runs"]}
    assert set(runs) == set(sysid.MODEL_KINDS)
    for kind, run in runs.items():
        assert run["config"]["mode"] == "windowed" and run["train_seconds"] > 0
        assert run["epochs"] == sysid.QUICK.config.epochs
        if kind == "reference-gru":
            assert run["certificate"] is None
        else:
            certificate = run["certificate"]
            assert certificate["holds"] and certificate["max_eigenvalue"] < 0
    # the GRU is sized to the Lipschitz R2DN's parameter count
    gru, r2dn = runs["reference-gru"]["parameters"], runs["lipschitz-r2dn"]["parameters"]
    assert abs(gru - r2dn) <= 0.25 * r2dn


def test_report_reads_the_saved_runs_without_training(quick):
    _, out = quick
    path = out / "sysid_cascaded-tanks_quick.json"
    runs = json.loads(path.read_text())["runs"]
    rows = sysid.main(["--quick", "--report", "--benchmarks", "cascaded-tanks", "--out", str(out)])
    assert json.loads(path.read_text())["runs"] == runs
    for run in runs:
        assert rows[0][run["model"]]["mean"] == pytest.approx(run["rmse"]["test"])


@pytest.mark.parametrize("kind", ["reference-gru", "reference-plain-r2dn"])
def test_reference_models_run_from_their_specs(kind):
    spec = sysid.spec_for(kind, sysid.QUICK, nu=1, ny=1)
    model = spec.build(jax.random.key(0))
    _, y = model.simulate(model.initial_state(3), jnp.ones((3, 7, 1)))
    assert y.shape == (3, 7, 1) and bool(jnp.all(jnp.isfinite(y)))
    assert spec.skeleton().nx == model.nx


def test_optional_models_get_a_column_only_when_they_have_runs(quick):
    _, out = quick
    data = json.loads((out / "sysid_cascaded-tanks_quick.json").read_text())
    assert "plain R2DN" not in sysid.markdown(sysid.table([data]))
    plain = dict(data["runs"][0], model="reference-plain-r2dn", certificate=None)
    data["runs"].append(plain)
    (row,) = sysid.table([data])
    assert row["reference-plain-r2dn"]["seeds"] == 1
    assert row["reference-plain-r2dn"]["certified"] is None
    header, rule, line = sysid.markdown([row]).splitlines()
    assert header.count("|") == rule.count("|") == line.count("|") == 9
    assert "plain R2DN (ours, no certificate)" in header


@pytest.mark.parametrize("option", ["--benchmarks=nope", "--models=lstm"])
def test_unknown_names_are_refused(option, tmp_path):
    with pytest.raises(SystemExit, match="unknown benchmark or model"):
        sysid.main(["--quick", option, "--out", str(tmp_path)])


def test_more_epochs_stretch_the_learning_rate_decay():
    protocol = sysid.PROTOCOLS["silverbox"]
    longer = sysid.longer(protocol, 3 * protocol.config.epochs)
    assert longer.config.epochs == 3 * protocol.config.epochs
    assert longer.config.decay_every == 3 * protocol.config.decay_every
    assert longer.config.lr == protocol.config.lr and longer.nx == protocol.nx


def test_overridden_sizes_reach_the_spec_and_saved_models_reproduce_the_scores(tmp_path):
    sysid.main(["--quick", "--benchmarks", "cascaded-tanks", "--models", "contracting-r2dn",
                "--nx", "3", "--nv", "5", "--hidden", "6,7", "--activation", "softplus",
                "--save-models", "--out", str(tmp_path)])  # fmt: skip
    (run,) = json.loads((tmp_path / "sysid_cascaded-tanks_quick.json").read_text())["runs"]
    kwargs = run["spec"]["kwargs"]
    assert (kwargs["nx"], kwargs["nv"], kwargs["hidden"]) == (3, 5, [6, 7])
    assert kwargs["activation"] == "softplus"
    path = tmp_path / "models" / "cascaded-tanks_contracting-r2dn_seed0.r2dn"
    assert run["model_file"] == str(path)
    trained = load_model(path)
    assert trained.spec.to_dict() == run["spec"]
    benchmark = sysid.prepared("cascaded-tanks", sysid.QUICK, None)
    rmse = float(benchmark.rmse("test", trained.predict(benchmark.test["test"].u))[0])
    assert rmse == pytest.approx(run["rmse"]["test"], rel=1e-6)


def test_extrapolation_scores_the_arrow_tail_only():
    def data(y):
        y = np.asarray(y, float)[None, :, None]
        return SequenceData(np.zeros_like(y), y, 1.0, ["u"], ["y"])

    arrow = {"arrow_full": data([0, 1, 2, -3]), "arrow_no_extrapolation": data([0, 1])}
    benchmark = bench.Benchmark("b", data([1, -1]), arrow, 0, "mV", 1000.0, "")
    parts = sysid.extrapolation(benchmark, {"arrow_full": np.array([[[9], [9], [2], [-4.0]]])})
    assert parts == {
        "tail_rmse": pytest.approx(1000 * np.sqrt(0.5)),  # the first two steps are not scored
        "measured_over_training": 3.0,
        "predicted_over_measured": pytest.approx(4 / 3),
    }
    assert sysid.extrapolation(dataclasses.replace(benchmark, test={"x": data([0])}), {}) is None
