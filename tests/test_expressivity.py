"""The expressivity study (`experiments/expressivity.py`): its grid and, end to end, its quick run
and report section on a synthetic copy of the F-16 files (`conftest.write_f16_files`).

The end-to-end run compiles five models (about a minute of CPU), so it is marked slow; the
grid's sizes and the command line are checked without training.
"""

import dataclasses
import json

import equinox as eqx
import jax
import numpy as np
import pytest

from conftest import write_f16_files
from experiments import common, expressivity, report
from r2dn.registry import ModelSpec

QUICK = expressivity.PRESETS["quick"]


def parameters(spec: ModelSpec) -> int:
    """Trainable scalars of ``spec``'s model, from shapes only (nothing is initialised)."""
    spec = ModelSpec(spec.kind, {**spec.kwargs, "init": "random"})
    shapes = eqx.filter_eval_shape(spec.build, jax.random.key(0))
    return sum(a.size for a in jax.tree.leaves(shapes) if isinstance(a, jax.ShapeDtypeStruct))


def test_the_study_grid_is_the_issues():
    s = expressivity.PRESETS["study"]
    r2dn = expressivity.grid("r2dn", s)
    assert {(p.depth, p.nx) for p in r2dn} == {(d, n) for d in (1, 2, 4, 8) for n in (16, 75, 256)}
    assert [p.nv for p in expressivity.grid("ren", s)] == [50, 150, 300]
    for p in r2dn:
        kwargs = expressivity.spec(p, s).kwargs
        assert kwargs["hidden"] == [87] * p.depth
        assert kwargs["lti"] == ("dplr" if p.nx == 256 else "dense")
    # The study differs from the paper's protocol only in its length (epochs, records).
    paper, study = (dataclasses.asdict(expressivity.PRESETS[k]) for k in ("paper", "study"))
    assert {k for k in paper if paper[k] != study[k]} == {"epochs", "train_steps", "decay_every"}


def test_parameters_grow_with_depth_state_and_nv():
    s = expressivity.PRESETS["study"]
    counts = {p: parameters(expressivity.spec(p, s)) for p in expressivity.grid("r2dn", s)}
    for nx in s.nx:
        by_depth = {p.depth: n for p, n in counts.items() if p.nx == nx}
        # Each hidden layer of φ adds the same number of parameters.
        per_layer = [(by_depth[d] - by_depth[1]) / (d - 1) for d in s.depths if d > 1]
        assert per_layer[0] > 0 and np.allclose(per_layer, per_layer[0])
    ren = [parameters(expressivity.spec(p, s)) for p in expressivity.grid("ren", s)]
    assert np.all(np.diff(ren) > 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--study", "--quick", "--out", "o"], "--study excludes"),
        (["--depths", "0,2", "--out", "o"], "positive integers"),
        (["--nx", "a", "--out", "o"], "positive integers"),
    ],
)
def test_bad_command_lines_say_what_is_wrong(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as caught:
        expressivity.main([*argv, "--f16-root", str(tmp_path)])
    assert message in str(caught.value.code) + capsys.readouterr().err


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick preset run end to end into ``<tmp>/results/expressivity``, and its report."""
    root = write_f16_files(tmp_path_factory.mktemp("f16"))
    results = tmp_path_factory.mktemp("results")
    written = expressivity.main(
        ["--quick", "--f16-root", str(root), "--out", str(results / "expressivity")]
    )
    doc = report.write_report(results, results.parent / "results.md")
    return written, results, doc


@pytest.mark.slow
def test_quick_run_covers_the_grid_with_certified_models(quick):
    written, _, _ = quick
    runs = [json.loads(p.read_text()) for p in written]
    points = {(r["family"], r["depth"], r["nx"], r["nv"], r["seed"]) for r in runs}
    expected = {("r2dn", d, n, QUICK.r2dn_nv, 0) for d in QUICK.depths for n in QUICK.nx}
    expected |= {("ren", None, QUICK.ren_nx, nv, 0) for nv in QUICK.ren_nv}
    assert points == expected and len(runs) == len(expected)
    for r in runs:
        assert np.isfinite(r["test"]["value"]) and r["test"]["value"] > 0
        assert np.all(np.isfinite(r["train_loss"])) and len(r["train_loss"]) == QUICK.epochs
        assert r["certificate"]["holds"] and r["certificate"]["max_eigenvalue"] < 0
        assert len(r["cpu_epoch_seconds"]) == QUICK.epochs and r["cpu_seconds_per_epoch"] > 0
        if r["family"] == "r2dn":
            assert r["lti"] == ("dplr" if r["nx"] >= QUICK.dplr_from else "dense")
    by_point = {(r["family"], r["depth"], r["nx"]): r["parameters"] for r in runs}
    for nx in QUICK.nx:
        counts = [by_point["r2dn", d, nx] for d in sorted(QUICK.depths)]
        assert np.all(np.diff(counts) > 0)


@pytest.mark.slow
def test_report_section_has_every_point_and_both_figures(quick):
    written, results, doc = quick
    text = doc.read_text()
    section = text[text.index(f"## {expressivity.TITLE}") :]
    rows = [line for line in section.splitlines() if line.startswith(("| R2DN |", "| REN |"))]
    assert len(rows) == len(written)
    assert all("all pass" in row for row in rows)
    for name in ("expressivity_heatmap", "expressivity_cost"):
        assert (results / f"{name}.png").stat().st_size > 0
        assert f"({results.name}/{name}.png)" in section
    assert text.count("| yes |") == len(common.load_results(results))
