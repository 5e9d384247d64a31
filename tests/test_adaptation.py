"""The online-adaptation study (`experiments/adaptation.py`) end to end in its ``--quick`` mode,
and its online loop against a direct computation.

The end-to-end run trains three models and checks 30 certificates (about a minute of CPU), so
its tests are marked ``slow`` (``make test-long``), as the expressivity study's are; the online
loop's state passing and the option parsing stay in ``make test``.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import typer

from experiments import adaptation


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "adaptation_quick"
    return adaptation.main(["--quick", "--out", str(out)])


@pytest.fixture(scope="module")
def records(written):
    return {json.loads(p.read_text())["model"]: json.loads(p.read_text()) for p in written}


@pytest.mark.slow
def test_one_record_per_model_with_the_documented_keys(written, records):
    s = adaptation.PRESETS["quick"]
    assert [p.name for p in written] == [f"adaptation_{m}_s0.json" for m in adaptation.MODELS]
    for r in records.values():
        assert tuple(r) == adaptation.KEYS
        assert [x["lr"] for x in r["runs"]] == list(s.adapt_lrs)
        n = len(r["window_end"])
        assert n % s.check_every == 0 and len(r["checkpoints"]) == n // s.check_every
        for trace in [r["frozen"]["online_rmse"]] + [x["online_rmse"] for x in r["runs"]]:
            assert len(trace) == n
        for checks in [r["frozen"]["free_run"]] + [x["checks"] for x in r["runs"]]:
            assert len(checks) == len(r["checkpoints"])


@pytest.mark.slow
def test_the_windows_cover_the_drift_and_the_stiffness_grows(records):
    s = adaptation.PRESETS["quick"]
    r = records["r2dn"]
    ends = np.array(r["window_end"])
    assert ends[0] == int(s.drift_start * s.steps) + s.window and np.all(np.diff(ends) == s.window)
    k = np.array(r["stiffness"])
    assert np.all(np.diff(k) > 0) and k[-1] <= s.ratio and k[-1] > 0.9 * s.ratio


@pytest.mark.slow
def test_every_adapted_r2dn_passes_check_lmi_and_its_errors_are_finite(records):
    r = records["r2dn"]
    for x in r["runs"]:
        assert x["first_non_finite_window"] is None
        assert all(v is not None and np.isfinite(v) for v in x["online_rmse"])
        for check in x["checks"]:
            assert check["lmi"]["holds"] and check["lmi"]["max_eigenvalue"] < 0
            assert check["lmi"]["min_eigenvalue_P"] > 0
            assert not check["diverged"] and check["nrmse"] > 0
    for other in ("rnn", "gru"):  # no certificate to check
        assert all(c["lmi"] is None for x in records[other]["runs"] for c in x["checks"])


@pytest.mark.slow
def test_the_section_renders_tables_and_a_figure(written, records):
    results = written[0].parent.parent
    lines = adaptation.section(results, results.parent / "results.md")
    text = "\n".join(lines)
    assert f"## {adaptation.TITLE}" in text
    assert f"### Runs in `{results.name}/adaptation_quick/`" in text
    checks = sum(len(x["checks"]) for x in records["r2dn"]["runs"])
    assert f"| {checks}/{checks} |" in text  # every check held, counted in the table
    assert (results / "adaptation_quick.png").stat().st_size > 0
    assert f"({results.name}/adaptation_quick.png)" in text


def test_an_empty_folder_renders_as_not_run(tmp_path):
    assert adaptation.section(tmp_path, tmp_path / "results.md")[-1] == "Not run."


def test_adaptation_carries_the_state_one_window_to_the_next():
    """At a zero learning rate each window's loss is that window's error in one continuous
    simulation from the carried state: the state passes from window to window unchanged."""
    s = adaptation.PRESETS["quick"]
    data = adaptation.make_data(0, s)
    model = adaptation.build("r2dn", s, jax.random.key(0))
    x0 = jnp.full((1, model.nx), 0.3, jnp.float32)
    losses, checks = adaptation.adapt(model, optax.sgd(0.0), x0, data, s, lambda m: m)
    n = len(data.window_starts)
    span = slice(data.split, data.split + n * s.window)
    _, y_hat = model.simulate(x0, data.u[:, span])
    expected = np.mean(np.asarray(y_hat - data.y[:, span]).reshape(n, s.window) ** 2, axis=1)
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
    assert len(checks) == n // s.check_every


@pytest.mark.parametrize("text", ["abc", "1e-3,-1", "0", "nan"])
def test_bad_learning_rates_say_what_is_expected(text):
    with pytest.raises(typer.BadParameter, match="positive numbers"):
        adaptation.parse_rates(text)


def test_learning_rates_parse():
    assert adaptation.parse_rates("1e-3,3e-2") == (1e-3, 3e-2)
