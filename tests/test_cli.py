"""Tests of the ``r2dn`` command line (fit, evaluate, simulate, certify) on tiny models."""

import csv
import dataclasses
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from r2dn import cli
from r2dn.cli import certify as certify_command
from r2dn.cli import common as cli_common
from r2dn.cli import fit as fit_command
from r2dn.cli.data import split_tail
from r2dn.cli.model import NOT_OPTIONS, PRESETS, gamma_for_normalized
from r2dn.cli.options import constructor_parameters
from r2dn.data import Normalizer, benchmarks, load_cascaded_tanks
from r2dn.io import TrainedModel, load_model, read_header
from r2dn.models.lti import DenseLTI
from r2dn.registry import MODELS, ModelSpec
from r2dn.training import CHECKPOINT, Check, TrainConfig

TINY = ["--nx", "2", "--nv", "2", "--hidden", "4", "--washout", "10", "--no-progress"]
FIT = ["fit", *TINY, "--gamma", "5", "--epochs", "2", "--segment-length", "512", "--lr", "0.01"]


def invoke(*args: str):
    return CliRunner().invoke(cli.app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A Lipschitz R2DN fitted on the embedded cascaded-tanks data.

    Each xdist worker builds its own, so it skips the certificate checks (slow to compile);
    the resume test runs them at the end of ``fit``.
    """
    out = tmp_path_factory.mktemp("run")
    result = invoke(*FIT, "--lti", "dense", "--out", out, "--no-certify")
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_command_and_option_is_documented():
    group = typer.main.get_command(cli.app)
    assert (
        list(group.commands)
        == list(cli.COMMANDS)
        == ["fit", "evaluate", "simulate", "certify", "export"]
    )
    for name, command in group.commands.items():
        assert command.help, name
        result = invoke(name, "--help")
        assert result.exit_code == 0
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"
            assert param.opts[0] in result.output or param.name.upper() in result.output


def test_fit_writes_the_model_its_metrics_and_plots(run_dir):
    out, output = run_dir
    assert "Validation (washout 10 steps)" in output and "RMSE" in output
    assert "Trained 2 epochs" in output and "Certificate" not in output
    for name in ("model.r2dn", CHECKPOINT, "metrics.json", "loss.png", "prediction.png"):
        assert (out / name).is_file(), name
    trained = load_model(out / "model.r2dn")
    assert trained.spec.kind == "lipschitz-r2dn" and trained.model.supply.gamma == 5.0
    assert trained.spec.kwargs["lti"] == "dense" and isinstance(trained.model.lti, DenseLTI)
    metrics = json.loads((out / "metrics.json").read_text())
    assert trained.metrics["validation"].items() <= metrics.items()
    assert metrics["scored"] == "validation" and metrics["epochs"] == 2
    assert metrics["data"]["source"] == "cascaded-tanks" and "split" in metrics["data"]
    assert metrics["training"]["epochs"] == 2 and metrics["model"]["kind"] == "lipschitz-r2dn"
    assert metrics["training_seconds"] > 0


def test_fit_refuses_to_overwrite_and_resumes_a_run(run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir[0], out)
    refused = invoke(*FIT, "--out", out, "--no-certify")
    assert refused.exit_code == 2 and "already holds a run" in refused.output
    changed = invoke(*FIT, "--out", out, "--resume", "--lr", "0.5")
    assert changed.exit_code == 2 and "cannot resume" in changed.output
    resumed = invoke(*FIT, "--epochs", "3", "--out", out, "--resume", "--certify")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("PASS") == 4 and "FAIL" not in resumed.output
    before, after = (read_header(d / CHECKPOINT, "checkpoint")["state"] for d in (run_dir[0], out))
    assert after["epoch"] == 3 and after["history"]["train"][:2] == before["history"]["train"]


def test_evaluate_reproduces_the_metrics_of_fit(run_dir, tmp_path):
    out = run_dir[0]
    result = invoke("evaluate", out / "model.r2dn", "--washout", "10", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert load_model(out / "model.r2dn").metrics["validation"].items() <= metrics.items()
    assert metrics["scored"]["name"] == "cascaded-tanks"
    assert (tmp_path / "prediction.png").is_file()


def test_evaluate_writes_to_a_folder_named_after_the_data(run_dir, tmp_path):
    model_path = tmp_path / "model.r2dn"
    shutil.copy(run_dir[0] / "model.r2dn", model_path)
    u, y = load_cascaded_tanks()[1].u[0, :, 0], load_cascaded_tanks()[1].y[0, :, 0]
    data = tmp_path / "held-out.csv"
    data.write_text("u,y\n" + "".join(f"{a},{b}\n" for a, b in zip(u, y, strict=True)))
    result = invoke("evaluate", model_path, "--csv", data, "--washout", "10")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "evaluation-held-out" / "metrics.json").read_text())
    assert metrics["scored"]["csv"] == str(data.resolve())


def test_simulate_writes_outputs_in_physical_units(run_dir, tmp_path):
    model_path = run_dir[0] / "model.r2dn"
    u = load_cascaded_tanks()[1].u[0, :200]
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("time,u\n" + "".join(f"{4 * t},{v}\n" for t, v in enumerate(u[:, 0])))
    result = invoke("simulate", model_path, "--csv", inputs, "--out", tmp_path / "y.csv")
    assert result.exit_code == 0, result.output
    with (tmp_path / "y.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "time", "y_predicted"]
    table = np.array(rows[1:], dtype=float)
    np.testing.assert_array_equal(table[:, 0], np.arange(200))
    np.testing.assert_allclose(table[:, 1], 4.0 * np.arange(200))
    np.testing.assert_allclose(table[:, 2:], load_model(model_path).predict(u), rtol=1e-6)
    missing = invoke(
        "simulate", model_path, "--csv", inputs, "--out", tmp_path / "z.csv", "--inputs", "v"
    )
    assert missing.exit_code == 2 and "has no column(s) ['v'" in missing.output


def test_certify_exit_code_says_whether_every_check_passed(run_dir, monkeypatch):
    model_path = run_dir[0] / "model.r2dn"
    passed = invoke("certify", model_path, "--search-steps", "20")
    assert passed.exit_code == 0 and passed.output.count("PASS") == 4
    failing = [Check("dissipation LMI, largest eigenvalue (float64)", 1e-3, "< 0", False)]
    monkeypatch.setattr(certify_command, "certify", lambda model, **kwargs: failing)
    failed = invoke("certify", model_path)
    assert failed.exit_code == 1 and "FAIL" in failed.output


def test_fit_a_robust_model_on_csv_data(tmp_path):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(120, 2))
    y = np.convolve(u[:, 0], [0.5, 0.3, 0.1])[:120] + 0.2 * np.tanh(u[:, 1])
    data = tmp_path / "data.csv"
    data.write_text("a,b,c\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(u, y, strict=True)))
    qsr = tmp_path / "qsr.json"
    qsr.write_text(json.dumps({"Q": [[-1.0]], "S": [[0.1], [0.0]], "R": [[2.0, 0.0], [0.0, 2.0]]}))
    args = [
        "--csv",
        data,
        "--inputs",
        "a,b",
        "--outputs",
        "c",
        "--dt",
        "0.1",
        "--model",
        "robust-r2dn",
    ]
    result = invoke(
        "fit",
        *TINY,
        *args,
        "--qsr-file",
        qsr,
        "--epochs",
        "1",
        "--segment-length",
        "30",
        "--out",
        tmp_path / "run",
        "--no-certify",
    )
    assert result.exit_code == 0, result.output
    trained = load_model(tmp_path / "run" / "model.r2dn")
    assert trained.spec.kwargs["S"] == [[0.1], [0.0]] and trained.input_names == ("a", "b")
    evaluated = invoke("evaluate", tmp_path / "run" / "model.r2dn", "--csv", data, "--washout", "5")
    assert evaluated.exit_code == 0, evaluated.output
    assert "on csv data" in evaluated.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["fit", "--model", "contracting-r2dn", "--gamma", "2"],
            "--gamma applies to lipschitz-r2dn, lipschitz-ren models only",
        ),
        (["fit"], "a lipschitz-r2dn model needs --gamma"),
        (["fit", "--model", "robust-r2dn"], "needs --qsr-file"),
        (["fit", "--data", "csv", "--gamma", "2"], "--csv PATH and --data csv go together"),
        (["fit", "--csv", "data.csv", "--gamma", "2"], "needs --inputs and --outputs"),
        (
            ["fit", "--benchmark", "cascaded-tanks", "--csv", "data.csv", "--gamma", "2"],
            "--benchmark names the data; leave out --data and --csv",
        ),
        (
            ["fit", "--benchmark", "cascaded-tanks", "--val-csv", "v.csv", "--gamma", "2"],
            "--val-csv goes with --csv",
        ),
        (
            ["fit", "--benchmark", "silverbox", "--benchmark-root", ".", "--gamma", "2"],
            "not found in . or its subfolders; give --benchmark-root the folder holding it",
        ),
        (["fit", "--hidden", "4,x", "--gamma", "2"], "'x' is not a valid int"),
        (["fit", "--rows", "0:10", "--gamma", "2"], "--rows applies to --csv data"),
        (
            ["fit", "--csv", "d.csv", "--rows", "10", "--inputs", "a", "--outputs", "b"],
            "--rows must be START:STOP with whole numbers, e.g. 0:100000, not '10'",
        ),
        (["fit", "--gamma", "2", "--lti", "banded"], "Unknown lti 'banded'; choose one of"),
        (["fit", "--model", "lipschitz-ren", "--gamma", "2", "--lti", "dense"], "--lti applies"),
        (["fit", "--model", "lipschitz-ren", "--hidden", "4", "--gamma", "2"], "--hidden applies"),
        (["fit", "--gamma", "2", "--gamma-physical", "2"], "not both"),
        (["fit", "--gamma", "2", "--epochs", "0"], "epochs must be a positive integer"),
        (["evaluate", "absent.r2dn"], "no r2dn file at absent.r2dn"),
        (["certify", "absent.r2dn"], "no r2dn file at absent.r2dn"),
    ],
)
def test_bad_input_is_a_one_line_error(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_evaluate_keeps_an_earlier_evaluation_unless_told(run_dir, tmp_path):
    model_path = run_dir[0] / "model.r2dn"
    first = invoke("evaluate", model_path, "--washout", "10", "--out", tmp_path)
    assert first.exit_code == 0, first.output
    again = invoke("evaluate", model_path, "--washout", "20", "--out", tmp_path)
    assert again.exit_code == 2 and "already holds an evaluation" in again.output
    assert json.loads((tmp_path / "metrics.json").read_text())["washout"] == 10
    replaced = invoke("evaluate", model_path, "--washout", "20", "--out", tmp_path, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((tmp_path / "metrics.json").read_text())["washout"] == 20


def test_evaluate_refuses_a_washout_that_leaves_nothing_to_score(run_dir, tmp_path):
    length = load_cascaded_tanks()[1].length
    result = invoke(
        "evaluate", run_dir[0] / "model.r2dn", "--washout", length - 1, "--out", tmp_path
    )
    assert result.exit_code == 2 and "leaves fewer than 2" in result.output
    assert not (tmp_path / "metrics.json").exists()


def test_simulate_guards_its_inputs_and_output(run_dir, tmp_path):
    model_path = run_dir[0] / "model.r2dn"
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("u\n1.0\n2.0\n3.0\n")
    for target in (model_path, inputs):
        result = invoke("simulate", model_path, "--csv", inputs, "--out", target)
        assert result.exit_code == 2 and "write the outputs to another file" in result.output
    assert load_model(model_path).spec.kind == "lipschitz-r2dn"
    gap = tmp_path / "gap.csv"
    gap.write_text("u\n1.0\nnan\n3.0\n")
    result = invoke("simulate", model_path, "--csv", gap, "--out", tmp_path / "y.csv")
    assert result.exit_code == 2 and "'u'" in result.output and "non-finite" in result.output
    assert not (tmp_path / "y.csv").exists()
    written = invoke("simulate", model_path, "--csv", inputs, "--out", tmp_path / "y.csv")
    assert written.exit_code == 0, written.output
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "y.csv").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".part"] == []


def test_sigterm_stops_fit_like_ctrl_c_and_the_run_resumes(tmp_path):
    """`timeout`, schedulers and containers send SIGTERM: the checkpoint stays, resume works."""
    out = tmp_path / "run"
    command = [sys.executable, "-c", "from r2dn.cli import app; app()"]
    args = [*FIT[1:], "--segment-length", "64", "--out", str(out), "--no-certify"]
    args[args.index("--epochs") + 1] = "1000"
    process = subprocess.Popen(
        [*command, "fit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not (out / CHECKPOINT).is_file() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    done = read_header(out / CHECKPOINT, "checkpoint")["state"]["epoch"]
    assert 1 <= done < 1000
    args[args.index("--epochs") + 1] = str(done + 1)
    resumed = subprocess.run(
        [*command, "fit", *args, "--resume"], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert read_header(out / CHECKPOINT, "checkpoint")["state"]["epoch"] == done + 1


def test_every_training_setting_is_an_option_with_its_default():
    """The options of ``fit`` are generated from TrainConfig: no default is written twice."""
    params = {p.name for p in typer.main.get_command(cli.app).commands["fit"].params}
    options = {option.name: option for option in fit_command.TRAINING}
    for field in dataclasses.fields(TrainConfig):
        assert field.name in options and field.name in params, f"{field.name} has no option"
        assert options[field.name].default == field.default, field.name
        assert options[field.name].help, field.name


def test_every_model_argument_is_an_option_with_its_default():
    params = {p.name for p in typer.main.get_command(cli.app).commands["fit"].params}
    options = {option.name: option for option in fit_command.MODEL}
    for kind, constructor in MODELS.items():
        for name, parameter in constructor_parameters(constructor).items():
            if name in NOT_OPTIONS:
                continue
            assert name in options and name in params, f"{kind}'s argument {name} has no option"
            if name in PRESETS:
                assert options[name].default == PRESETS[name], name
            elif parameter.default is not inspect.Parameter.empty:
                assert options[name].default in (parameter.default, None), (kind, name)


def test_split_tail_keeps_everything_for_a_zero_fraction_and_refuses_one():
    data = load_cascaded_tanks()[0]
    train, validation = split_tail(data, 0.0)
    assert train is data and validation is None
    train, validation = split_tail(data, 0.25)
    assert (train.length, validation.length) == (768, 256)
    with pytest.raises(cli_common.CommandError, match=r"must lie in \[0, 1\)"):
        split_tail(data, 1.0)


def test_generated_options_parse_none_lists_and_json():
    parse = {o.name: o.parameter().annotation.__metadata__[0].parser for o in fit_command.TRAINING}
    assert parse["clip"]("none") is None and parse["clip"]("2.5") == 2.5
    hidden = next(o for o in fit_command.MODEL if o.name == "hidden").parameter()
    assert hidden.default == "32,32"
    assert hidden.annotation.__metadata__[0].parser("8, 4") == (8, 4)


def test_a_physical_lipschitz_bound_bounds_the_model_in_physical_units():
    """γ_model = γ_phys · min σ_u / max σ_y makes ‖Δy‖ ≤ γ_phys ‖Δu‖ in physical units."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(400, 2)) * [3.0, 0.5]
    y = rng.normal(size=(400, 2)) * [0.2, 4.0]
    normalizer = Normalizer.from_record(u, y)
    gamma = gamma_for_normalized(2.0, normalizer)
    assert gamma == pytest.approx(2.0 * normalizer.u_std.min() / normalizer.y_std.max())
    spec = ModelSpec("lipschitz-r2dn", dict(nu=2, nx=3, nv=2, ny=2, hidden=[4], gamma=gamma))
    trained = TrainedModel(
        model=spec.build(jax.random.key(0)),
        spec=spec,
        normalizer=normalizer,
        dt=1.0,
        input_names=("a", "b"),
        output_names=("c", "d"),
    )
    du = rng.normal(size=(50, 2)) * [0.0, 1.0]  # along the input of the smallest σ_u
    gain = np.linalg.norm(trained.predict(u[:50] + du) - trained.predict(u[:50])) / np.linalg.norm(
        du
    )
    assert gain <= 2.0


def test_fit_without_validation_and_with_a_physical_gamma(tmp_path):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(200, 1)) * 5.0
    y = np.convolve(u[:, 0], [0.5, 0.3])[:200] * 0.1
    data = tmp_path / "data.csv"
    data.write_text("u,y\n" + "".join(f"{a},{b}\n" for a, b in zip(u[:, 0], y, strict=True)))
    result = invoke(
        "fit", *TINY, "--csv", data, "--inputs", "u", "--outputs", "y", "--dt", "0.5",
        "--val-fraction", "0", "--gamma-physical", "3", "--epochs", "1",
        "--segment-length", "50", "--out", tmp_path / "run", "--no-certify",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Training (washout 10 steps)" in result.output
    trained = load_model(tmp_path / "run" / "model.r2dn")
    expected = gamma_for_normalized(3.0, Normalizer.from_record(u, y[:, None]))
    assert trained.model.supply.gamma == pytest.approx(expected, rel=1e-6)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["scored"] == "training" and metrics["data"]["gamma_physical"] == 3.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("3", "holds a JSON int, not an object"),
        ('{"Q": [[-1]], "S": [[0]]}', "lacks the matrices ['R']"),
        ('{"Q": [[-1], [1, 2]], "S": [[0]], "R": [[1]]}', "Q in qsr.json is not a matrix"),
        ("not json", "neither .npz nor valid JSON"),
    ],
)
def test_a_bad_qsr_file_is_a_one_line_error(content, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qsr.json").write_text(content)
    result = invoke("fit", "--model", "robust-r2dn", "--qsr-file", "qsr.json")
    assert result.exit_code == 2 and message in result.output, result.output


def test_fit_refuses_an_out_it_cannot_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    result = invoke("fit", "--gamma", "2", "--out", "file")
    assert result.exit_code == 2 and "is a file" in result.output
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model.r2dn").write_text("")
    result = invoke("fit", "--gamma", "2", "--out", "old")
    assert result.exit_code == 2 and "already holds a model" in result.output


def test_evaluate_names_the_channels_the_model_was_trained_on(run_dir, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("v,y\n1,2\n3,4\n")
    model_path = run_dir[0] / "model.r2dn"
    result = invoke("evaluate", model_path, "--csv", data, "--inputs", "v", "--out", tmp_path)
    assert result.exit_code == 2 and "trained on the inputs ['u']" in result.output


def test_fit_and_evaluate_a_benchmark_by_its_protocol(tmp_path):
    """fit trains on the benchmark's training records; evaluate scores each test set whole."""
    out = tmp_path / "run"
    args = ["--benchmark", "cascaded-tanks", "--gamma", "5", "--epochs", "1", "--no-certify"]
    fitted = invoke("fit", *TINY, *args, "--segment-length", "256", "--out", out)
    assert fitted.exit_code == 0, fitted.output
    bench = benchmarks.load("cascaded-tanks")
    cut = round(0.75 * bench.train.length)
    data = json.loads((out / "metrics.json").read_text())["data"]
    assert data["benchmark"] == "cascaded-tanks" and data["val_fraction"] == 0.25
    assert data["split"]["validation"] == f"steps {cut} to {bench.train.length}"
    result = invoke("evaluate", out / "model.r2dn", "--benchmark", "cascaded-tanks")
    assert result.exit_code == 0, result.output
    folder = out / "evaluation-cascaded-tanks"
    scored = json.loads((folder / "metrics.json").read_text())
    model = load_model(out / "model.r2dn")
    for test, records in bench.test.items():
        expected = bench.rmse(test, model.predict(records.u))
        np.testing.assert_allclose(scored["benchmark"]["rmse"][test], expected, rtol=1e-6)
        assert json.loads((folder / test / "metrics.json").read_text())["washout"] == bench.window
        assert (folder / test / "prediction.png").is_file()
    assert scored["benchmark"]["unit"] == bench.unit and scored["scored"]["name"] == bench.name


def test_a_csv_sampling_rate_column_gives_the_sampling_time(tmp_path):
    u = np.sin(np.arange(80) / 5)
    rate = tmp_path / "rate.csv"
    rate.write_text("u,y,fs\n" + "".join(f"{a},{0.5 * a},{'4' if k == 0 else ''}\n"
                                          for k, a in enumerate(u)))  # fmt: skip
    bare = tmp_path / "bare.csv"
    bare.write_text("u,y\n" + "".join(f"{a},{0.5 * a}\n" for a in u))
    args = ["fit", *TINY, "--inputs", "u", "--outputs", "y", "--gamma", "2", "--epochs", "1"]
    args += ["--segment-length", "20", "--no-certify", "--val-fraction", "0"]
    fitted = invoke(*args, "--csv", rate, "--rows", "10:70", "--out", tmp_path / "run")
    assert fitted.exit_code == 0, fitted.output
    assert load_model(tmp_path / "run" / "model.r2dn").dt == 0.25
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]
    assert data["rows"] == [10, 70] and data["split"]["train_steps"] == [0, 60]
    model = tmp_path / "run" / "model.r2dn"
    scored = invoke("evaluate", model, "--csv", rate, "--rows", ":40", "--washout", "5")
    assert scored.exit_code == 0, scored.output
    metrics = json.loads((tmp_path / "run" / "evaluation-rate" / "metrics.json").read_text())
    assert metrics["scored"]["rows"] == [0, 40]
    expected = load_model(model).predict(u[:40, None])[5:, 0]
    np.testing.assert_allclose(
        metrics["per_channel"]["rmse"][0],
        np.sqrt(np.mean((expected - 0.5 * u[5:40]) ** 2)),
        rtol=1e-5,
    )
    refused = invoke(*args, "--csv", bare, "--out", tmp_path / "bare")
    assert refused.exit_code == 2 and "has no sampling-time column" in refused.output
    assert "give --dt" in refused.output
