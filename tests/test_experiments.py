"""The paper's experiments (`experiments/`) end to end on tiny sizes, and their report.

Each experiment runs its ``--tiny`` preset for one model (REN for two of them, R2DN for the
other two, so both kinds pass through every code path that differs between experiments while
the file stays fast); the F-16 experiment reads a small synthetic copy of the benchmark files
(`conftest.write_f16_files`).
"""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import typer

from conftest import write_f16_files
from experiments import common, f16, pde_observer, report, scaling, youla
from r2dn.registry import ModelSpec

RUNS = {  # experiment module → the model it runs here
    f16: "ren",
    pde_observer: "r2dn",
    youla: "ren",
    scaling: "r2dn",
}


@pytest.fixture(scope="module")
def f16_root(tmp_path_factory):
    return write_f16_files(tmp_path_factory.mktemp("f16"))


@pytest.fixture(scope="module")
def results(tmp_path_factory, f16_root):
    """Run every experiment's tiny preset into one folder; return it and the written paths."""
    out = tmp_path_factory.mktemp("results")
    written = {}
    for module, model in RUNS.items():
        argv = ["--tiny", "--models", model, "--out", str(out / module.__name__.split(".")[-1])]
        if module is f16:
            argv += ["--f16-root", str(f16_root)]
        written[module] = module.main(argv)
    return out, written


@pytest.mark.parametrize("module", list(RUNS), ids=lambda m: m.__name__.split(".")[-1])
def test_each_run_records_its_protocol_and_certificate(results, module):
    _, written = results
    s = module.PRESETS["tiny"]
    sizes = len(s.ren_nv if RUNS[module] == "ren" else s.r2dn_width) if module is scaling else 1
    assert len(written[module]) == sizes * len(s.seeds)
    for path in written[module]:
        r = json.loads(path.read_text())
        assert r["model"].startswith(RUNS[module]) and r["seed"] == 0
        assert len(r["train_loss"]) == len(r["epoch_seconds"]) == s.epochs
        assert np.all(np.isfinite(r["train_loss"])) and min(r["epoch_seconds"]) > 0
        after_compilation = r["epoch_seconds"][1:] or r["epoch_seconds"]
        assert r["seconds_per_epoch"] == pytest.approx(np.mean(after_compilation))
        assert np.isfinite(r["test"]["value"]) and r["test"]["value"] > 0
        assert r["certificate"]["holds"] and r["certificate"]["max_eigenvalue"] < 0
        assert r["settings"]["epochs"] == s.epochs


def test_parameter_count_matches_the_built_model(results):
    _, written = results
    r = json.loads(written[f16][0].read_text())
    spec = f16.spec("ren", f16.PRESETS["tiny"])
    model = spec.build(jax.random.key(0))
    leaves = [p for p in jax.tree.leaves(model) if hasattr(p, "dtype") and p.dtype.kind == "f"]
    assert r["parameters"] == sum(p.size for p in leaves) > 0


def test_scaling_records_timing_and_expressivity(results):
    _, written = results
    for path in written[scaling]:
        t = json.loads(path.read_text())["test"]
        assert t["expressivity"] == pytest.approx(1 / t["value"])
        assert t["inference_seconds"] > 0 and t["backprop_seconds"] > 0


def test_report_tables_deviations_and_figures(results):
    out, _ = results
    doc = report.main(["--results", str(out), "--out", str(out.parent / "results.md")])
    text = doc.read_text()
    for title in report.TITLES.values():
        assert f"## {title}" in text
    assert "`epochs` = 2 (paper: 70)" in text  # the F-16 tiny run's deviation
    assert "| REN |" in text and "| R2DN |" in text
    assert text.count("| yes |") == len(common.load_results(out))
    for name in ("f16_loss", "f16_test", "scaling_slopes", "youla_test", "pde_observer_loss"):
        # one set of runs per experiment, in a folder named after it
        assert (out / f"{name}.png").stat().st_size > 0
        assert f"({out.name}/{name}.png)" in text


def test_report_fits_the_log_log_slope():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fitted, error = report.slope(x, 3 * x**0.5)
    assert fitted == pytest.approx(0.5) and error == pytest.approx(0, abs=1e-9)


def test_f16_options_choose_the_lti_part_rank_and_state_size(f16_root, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(f16, "run", lambda name, seed, s, data, out: seen.append(s) or out)
    options = ["--lti", "dplr", "--rank", "2", "--nx", "5", "--test-steps", "50"]
    f16.main(["--tiny", "--models", "r2dn", *options, "--out", str(tmp_path)]
             + ["--f16-root", str(f16_root)])  # fmt: skip
    (s,) = seen
    assert (s.lti, s.rank, s.nx, s.test_steps, s.train_steps) == ("dplr", 2, 5, 50, 256)
    model = f16.spec("r2dn", s).build(jax.random.key(0))
    assert model.lti.free.U1.shape == (2, 5)  # a DPLR part of rank 2 over 5 states


def test_the_structured_table_puts_each_lti_part_and_size_beside_the_first():
    """One row per run set, the dense part first; seconds per epoch are the median of epochs
    2..N (epoch 1 compiles)."""

    def run(run_set, lti, rank, nx, seconds, nrmse):
        settings = dict(lti=lti, rank=rank, nx=nx)
        epochs = [60.0, seconds, 99.0, seconds]
        return dict(run_set=run_set, settings=settings, parameters=10, train_loss=[1.0, 0.5],
                    epoch_seconds=epochs, test={"value": nrmse})  # fmt: skip

    runs = [run("s/dplr", "dplr", 8, 1024, 5.0, 0.2), run("s/dense", "dense", None, 75, 2.0, 0.3)]
    rows = report.structured_table(runs).splitlines()[2:]
    assert rows[0].startswith("| dense | 75 |") and rows[0].endswith("| 2 | 1.00 |")
    assert rows[1].startswith("| dplr (r = 8) | 1024 |") and rows[1].endswith("| 5 | 2.50 |")
    assert "| 1 × 2 | 0.3 | 0.5 |" in rows[0]


def test_missing_f16_data_says_where_to_point(tmp_path):
    with pytest.raises(SystemExit, match="--f16-root"):
        f16.main(["--tiny", "--out", str(tmp_path), "--f16-root", str(tmp_path / "nowhere")])


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (common.parse_seeds, "0-3", [0, 1, 2, 3]),
        (common.parse_seeds, "2,5", [2, 5]),
        (common.parse_models, "r2dn", ("r2dn",)),
        (common.parse_models, "ren, r2dn", ("ren", "r2dn")),
    ],
)
def test_options_parse(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("parse", "text"),
    [(common.parse_seeds, "a-b"), (common.parse_seeds, "-1"), (common.parse_models, "lstm")],
)
def test_bad_options_say_what_is_expected(parse, text):
    with pytest.raises(typer.BadParameter, match="got"):
        parse(text)


def test_flags_override_the_preset():
    args = common.parse_options(["--quick", "--epochs", "7", "--seeds", "3-4", "--out", "o"], "x")
    s = common.protocol(args, youla.PRESETS)
    assert (s.epochs, s.seeds, s.nx) == (7, (3, 4), youla.PRESETS["quick"].nx)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "a-b", "--out", "o"], "seeds must be a range"),
        (["--models", "lstm", "--out", "o"], "models must be a comma-separated list"),
        (["--epochs", "0", "--out", "o"], "greater than or equal to 1"),
        (["--quick", "--tiny", "--out", "o"], "exclude each other"),
        (["--quick"], "Missing option '--out'"),
    ],
)
def test_bad_command_lines_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        common.parse_options(argv, "x")
    assert message in str(caught.value.code) + capsys.readouterr().err


@pytest.mark.parametrize("module", [f16, pde_observer, youla])
def test_paper_models_have_about_equal_size(module):
    """The paper compares a REN and an R2DN of about the same number of parameters."""
    s = module.PRESETS["paper"]
    counts = []
    for name in common.MODELS:
        spec = module.spec(name, s)
        # Shapes only (no initialisation is run); the count does not depend on the init.
        spec = ModelSpec(spec.kind, {**spec.kwargs, "init": "random"})
        shapes = eqx.filter_eval_shape(spec.build, jax.random.key(0))
        arrays = [a for a in jax.tree.leaves(shapes) if isinstance(a, jax.ShapeDtypeStruct)]
        counts.append(sum(a.size for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)))
    assert max(counts) / min(counts) < 1.5
