"""Online adaptation to a drifting system: a Lipschitz R2DN against unconstrained networks.

The system is `r2dn.examples.drift`'s Duffing oscillator, its stiffness constant for the first
``drift_start`` of the record and then ramped to ``ratio`` × its initial value. Each model is
pre-trained on the constant part by truncated BPTT (the library's carried-state segment loss
through `r2dn.training.engine`), then adapted online over the drifting part: one optimiser step
per incoming window of ``window`` samples, the state carried from window to window
(`r2dn.training.steps.train_steps` with the same loss). The models, of one size:

- ``r2dn``: `r2dn.LipschitzR2DN` (γ = ``gamma``);
- ``rnn``: the same structure with free matrices and a plain MLP (`experiments.references`'
  ``PlainR2DN``): no parameterization, no certificate;
- ``gru``: an ``equinox`` GRU with about the R2DN's number of parameters.

Recorded over time, in units of the pre-training output's standard deviation:

- the *online error*: the RMSE of each incoming window, predicted from the carried state by the
  model before its step on that window (a state-space model has no measured output to correct
  its state, so "one step ahead" here is one optimiser step ahead: the prequential error);
- at every ``check_every`` windows, a *checkpoint*: the NRMSE of a free run from the zero state
  of a fixed test input (``washout`` steps left out) against the system frozen at the stiffness
  of that moment, whether that run diverged (non-finite, or beyond ``blow_up`` × the largest
  test output), and for the R2DN `r2dn.certificates.check_lmi` of the adapted model.

The pre-trained model left as it is (``frozen``) is scored the same way, for reference. Every
(model, seed) writes ``<out>/adaptation_<model>_s<seed>.json`` (a name outside the paper
experiments' ``*_seed*.json``, whose tables `experiments.report` builds); `section` renders the
results for ``docs/results.md``.

    python -m experiments.adaptation --out docs/results/adaptation_study   # the study
    python -m experiments.adaptation --quick --out runs/adaptation          # seconds
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import typer
from jaxtyping import Array, Float, PyTree
from matplotlib.figure import Figure

from experiments import common
from experiments.references import GRU, PlainR2DN, width_for
from r2dn import LipschitzR2DN
from r2dn.certificates import to_dtype
from r2dn.data import Normalizer
from r2dn.examples import drift
from r2dn.training import TrainConfig, TrainingDiverged
from r2dn.training.engine import Epoch
from r2dn.training.loop import SegmentLoss
from r2dn.training.steps import train_steps

MODELS = ("r2dn", "rnn", "gru")
#: The test input is the same for every seed and checkpoint.
TEST_KEY = 4321
#: The keys every record holds (`section` and the tests read them).
KEYS = ("experiment", "model", "seed", "settings", "parameters", "pretrain", "window_end",
        "stiffness", "checkpoints", "frozen", "runs", "hardware")  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The record, the model sizes, pre-training and the online protocol."""

    epochs: int  # of pre-training
    seeds: tuple[int, ...]
    steps: int = 24_000
    drift_start: float = 0.25
    ratio: float = 2.0
    rms: float = 0.25
    nx: int = 8
    nv: int = 8
    hidden: tuple[int, ...] = (16, 16)
    gamma: float = 5.0
    segment_length: int = 200
    pretrain_lr: float = 3e-3
    window: int = 50
    adapt_lrs: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    check_every: int = 20
    test_steps: int = 1_000
    washout: int = 100
    blow_up: float = 10.0


PRESETS = {
    "paper": Settings(epochs=400, seeds=(0, 1, 2, 3, 4, 5)),  # the study (no paper protocol exists)
    "quick": Settings(
        epochs=3,
        seeds=(0,),
        steps=2_400,
        nx=4,
        nv=4,
        hidden=(8,),
        segment_length=100,
        window=30,
        adapt_lrs=(1e-2,),
        check_every=10,
        test_steps=200,
        washout=50,
    ),
}
PRESETS["tiny"] = PRESETS["quick"]


def build(name: str, s: Settings, key: jax.Array) -> PyTree:
    """The named model at the study's sizes (one input, one output), in float32."""
    if len(set(s.hidden)) != 1:
        raise ValueError(f"hidden must repeat one width (the plain RNN's MLP); got {s.hidden}")
    r2dn = LipschitzR2DN(1, s.nx, s.nv, 1, s.hidden, gamma=s.gamma, init="long_memory", key=key)
    if name == "r2dn":
        return r2dn
    if name == "rnn":
        return to_dtype(
            PlainR2DN(1, s.nx, s.nv, 1, s.hidden[0], len(s.hidden), key=key), r2dn.dtype
        )
    width = width_for(lambda w: GRU(1, w, 1, key=key), common.parameter_count(r2dn))
    return to_dtype(GRU(1, width, 1, key=key), r2dn.dtype)


@dataclass(frozen=True)
class Data:
    """One seed's record, z-scored with the pre-training part's statistics, ``(1, T, 1)``.

    ``tests[c]`` is the frozen system's output on ``test_u`` at checkpoint ``c``'s stiffness.
    """

    u: Float[Array, "1 T 1"]
    y: Float[Array, "1 T 1"]
    stiffness: np.ndarray
    split: int  # first sample of the drift (and of online adaptation)
    window_starts: np.ndarray  # (W,)
    test_u: Float[Array, "1 S 1"]
    tests: np.ndarray  # (C, S)


def make_data(seed: int, s: Settings) -> Data:
    """The record of ``seed``, its windows and the frozen systems' test outputs."""
    rec = drift.record(
        jax.random.key(seed), s.steps, ratio=s.ratio, drift_start=s.drift_start, rms=s.rms
    )
    split = int(np.floor(s.drift_start * s.steps))
    u, y = np.asarray(rec.u, np.float64)[:, None], np.asarray(rec.y, np.float64)[:, None]
    norm = Normalizer.from_record(u[:split], y[:split])
    n_windows = (s.steps - split) // s.window // s.check_every * s.check_every
    if n_windows == 0:
        raise ValueError(
            f"the drifting part ({s.steps - split} samples) holds fewer than check_every × "
            f"window = {s.check_every * s.window} samples; lengthen steps or shorten windows"
        )
    starts = split + s.window * np.arange(n_windows)
    ends = starts[s.check_every - 1 :: s.check_every] + s.window
    test_u = drift.input_signal(jax.random.key(TEST_KEY), s.washout + s.test_steps, rms=s.rms)
    k = np.asarray(rec.stiffness)[ends - 1]
    tests = jax.vmap(drift.duffing, (None, 0))(
        test_u, jnp.asarray(k)[:, None] * jnp.ones_like(test_u)
    )
    as_batch = lambda a: jnp.asarray(a, jnp.float32)[None]  # noqa: E731
    return Data(
        u=as_batch(norm.normalize_u(u)),
        y=as_batch(norm.normalize_y(y)),
        stiffness=np.asarray(rec.stiffness),
        split=split,
        window_starts=starts,
        test_u=as_batch(norm.normalize_u(np.asarray(test_u)[:, None])),
        tests=np.asarray(norm.normalize_y(np.asarray(tests)[..., None]))[..., 0],
    )


def zero_state(model: PyTree) -> Float[Array, "1 nx"]:
    return jnp.zeros((1, model.nx), jnp.float32)


@eqx.filter_jit
def _simulate(model: PyTree, x0: Array, u: Array) -> tuple[Array, Array]:
    return model.simulate(x0, u)


def pretrain(model: PyTree, data: Data, s: Settings) -> tuple[PyTree, list[float]]:
    """Truncated BPTT on the record before the drift, every epoch from the zero state."""
    n = data.split // s.segment_length
    config = TrainConfig(lr=s.pretrain_lr, decay_every=max(1, 2 * s.epochs // 3))
    work = Epoch(
        SegmentLoss(s.segment_length),
        chunks=[jnp.arange(n) * s.segment_length],
        carry=zero_state(model),
        data=(data.u, data.y),
    )
    model, losses, _ = common.train(
        model, config.optimizer_for(n), lambda e: work, epochs=s.epochs, steps=n, unit="segment"
    )
    return model, losses


def adapt(
    model: PyTree,
    optimizer: optax.GradientTransformation,
    x: Float[Array, "1 nx"],
    data: Data,
    s: Settings,
    checkpoint: Callable[[PyTree], dict[str, Any]],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One ``optimizer`` step per window of the drifting part, the state ``x`` carried.

    Returns each window's loss (before its step; NaN once anything turned non-finite) and
    ``checkpoint(model)`` after every ``check_every`` windows.
    """
    loss, opt_state = SegmentLoss(s.window), optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    losses, checks = [], []
    for chunk in np.split(data.window_starts, len(data.window_starts) // s.check_every):
        model, opt_state, x, values, finite = train_steps(
            loss, optimizer, model, opt_state, x, jnp.asarray(chunk), data.u, data.y
        )
        values = np.where(np.asarray(finite), np.asarray(values, np.float64), np.nan)
        losses.append(values)
        checks.append(checkpoint(model))
    return np.concatenate(losses), checks


def free_run(model: PyTree, data: Data, c: int, s: Settings) -> dict[str, Any]:
    """NRMSE of the free run on the test input against checkpoint ``c``'s frozen system."""
    _, y_hat = _simulate(model, zero_state(model), data.test_u)
    y_hat, y = np.asarray(y_hat[0, s.washout :, 0], np.float64), data.tests[c, s.washout :]
    finite = bool(np.all(np.isfinite(y_hat)))
    diverged = not finite or float(np.max(np.abs(y_hat))) > s.blow_up * float(np.max(np.abs(y)))
    error = float(np.sqrt(np.mean((y_hat - y) ** 2) / np.mean((y - y.mean()) ** 2)))
    return {"nrmse": _number(error) if not diverged else None, "diverged": diverged}


def online_rmse(losses: np.ndarray) -> list[float | None]:
    """Per-window RMSE from the windows' mean squared errors; ``None`` where non-finite."""
    return [_number(math.sqrt(v)) if np.isfinite(v) else None for v in losses]


def run(name: str, seed: int, s: Settings, out: Path) -> Path:
    """Pre-train, score the frozen model, adapt at every learning rate; write the record."""
    data = make_data(seed, s)
    model = build(name, s, jax.random.key(seed))
    started = time.perf_counter()
    try:
        model, pre_losses = pretrain(model, data, s)
        pre = {"train_loss": pre_losses, "diverged": False}
    except TrainingDiverged as error:
        pre = {"train_loss": [], "diverged": True, "message": str(error)}
    pre["seconds"] = time.perf_counter() - started
    x, _ = _simulate(model, zero_state(model), data.u[:, : data.split])  # the warm state
    n = len(data.window_starts)
    _, y_hat = _simulate(model, x, data.u[:, data.split : data.split + n * s.window])
    frozen_err = (y_hat - data.y[:, data.split : data.split + n * s.window])[0, :, 0]
    frozen = {
        "online_rmse": online_rmse(np.mean(np.asarray(frozen_err).reshape(n, -1) ** 2, axis=1)),
        "free_run": [free_run(model, data, c, s) for c in range(len(data.tests))],
    }
    runs = []
    for lr in s.adapt_lrs:
        counter = iter(range(len(data.tests)))

        def checkpoint(adapted: PyTree, counter=counter) -> dict[str, Any]:
            check = free_run(adapted, data, next(counter), s)
            return check | {"lmi": common.certificate(adapted) if name == "r2dn" else None}

        started = time.perf_counter()
        optimizer = TrainConfig(lr=lr).optimizer_for(n)
        losses, checks = adapt(model, optimizer, x, data, s, checkpoint)
        bad = np.flatnonzero(~np.isfinite(losses))
        runs.append(
            {
                "lr": lr,
                "online_rmse": online_rmse(losses),
                "first_non_finite_window": int(bad[0]) if len(bad) else None,
                "checks": checks,
                "seconds": time.perf_counter() - started,
            }
        )
    ends = data.window_starts + s.window
    record = {
        "experiment": "adaptation",
        "model": name,
        "seed": seed,
        "settings": dataclasses.asdict(s),
        "parameters": common.parameter_count(model),
        "pretrain": pre,
        "window_end": ends.tolist(),
        "stiffness": data.stiffness[ends - 1].tolist(),
        "checkpoints": ends[s.check_every - 1 :: s.check_every].tolist(),
        "frozen": frozen,
        "runs": runs,
        "hardware": {"backend": jax.default_backend()},
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"adaptation_{name}_s{seed}.json"
    path.write_text(common.to_json(record))
    return path


def _number(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# The section of docs/results.md --------------------------------------------------------------

TITLE = "7. Online adaptation to a drifting system (issue 17)"
NOTES = "adaptation_notes.md"
COLOURS = {"r2dn": "tab:orange", "rnn": "tab:green", "gru": "tab:purple"}
LABELS = {"r2dn": "Lipschitz R2DN", "rnn": "plain RNN (R2DN shape)", "gru": "GRU"}
#: Windows averaged in the online-error curves (the record's raw curves are too noisy to read).
SMOOTH = 10
#: The figure's errors are cut off above this (a diverging run would squash the others).
CEILING = 10.0


def load_runs(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every record under ``directory``, by the folder holding it (one per invocation)."""
    sets: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(directory).rglob("adaptation_*_s*.json")):
        key = str(path.parent.relative_to(directory))
        sets.setdefault(key, []).append(json.loads(path.read_text()))
    return sets


def _values(trace: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in trace], dtype=np.float64)


def _traces(runs: list[dict[str, Any]], model: str, lr: float | None, key: str) -> np.ndarray:
    """Seeds × time of one model's online RMSE (``key="online"``) or free-run NRMSE
    (``"free_run"``), adapted at ``lr`` or frozen (``lr=None``); NaN where non-finite."""
    rows = []
    for r in runs:
        if r["model"] != model:
            continue
        adapted = r["frozen"] if lr is None else next(x for x in r["runs"] if x["lr"] == lr)
        if key == "online":
            rows.append(_values(adapted["online_rmse"]))
        else:
            checks = adapted["free_run"] if lr is None else adapted["checks"]
            rows.append(_values([c["nrmse"] for c in checks]))
    return np.array(rows)


def _median(a: np.ndarray) -> str:
    """Median over seeds of per-seed values (a NaN seed counts as worse than any)."""
    if not len(a):
        return "—"
    median = np.median(np.where(np.isfinite(a), a, np.inf))
    return f"{median:.3g}" if np.isfinite(median) else "non-finite"


def table(runs: list[dict[str, Any]]) -> str:
    """Per model and learning rate: errors early and late, divergences, certificates."""
    s = runs[0]["settings"]
    models = [m for m in MODELS if any(r["model"] == m for r in runs)]
    rows = [
        "| model | parameters | adaptation lr | final pre-training loss (median) "
        "| online RMSE, first 10 % (median) "
        "| online RMSE, last 10 % (median) | largest window RMSE (all seeds) "
        "| free-run NRMSE at the end (median) | seeds with a non-finite online error "
        "| diverged free runs | `check_lmi` holds | largest LMI eigenvalue |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        mine = [r for r in runs if r["model"] == model]
        pre = _median(np.array([(r["pretrain"]["train_loss"] or [np.nan])[-1] for r in mine]))
        for lr in (None, *s["adapt_lrs"]):
            online = _traces(runs, model, lr, "online")
            tenth = max(1, online.shape[1] // 10)
            early, late = online[:, :tenth].mean(axis=1), online[:, -tenth:].mean(axis=1)
            peak = np.fmax.reduce(online, axis=None)
            end = _traces(runs, model, lr, "free_run")[:, -1]
            if lr is None:
                checks = [c for r in mine for c in r["frozen"]["free_run"]]
                non_finite = sum(
                    not np.all(np.isfinite(_values(r["frozen"]["online_rmse"]))) for r in mine
                )
            else:
                adapted = [next(x for x in r["runs"] if x["lr"] == lr) for r in mine]
                checks = [c for x in adapted for c in x["checks"]]
                non_finite = sum(x["first_non_finite_window"] is not None for x in adapted)
            lmi = [c["lmi"] for c in checks if c.get("lmi")]
            holds = f"{sum(c['holds'] for c in lmi)}/{len(lmi)}" if lmi else "—"
            worst = f"{max(c['max_eigenvalue'] for c in lmi):.2e}" if lmi else "—"
            rows.append(
                f"| {LABELS[model]} | {mine[0]['parameters']:,} | "
                f"{'frozen' if lr is None else f'{lr:g}'} | {pre if lr is None else ''} | "
                f"{_median(early)} | {_median(late)} | {peak:.3g} | "
                f"{_median(end)} | {non_finite}/{len(mine)} | "
                f"{sum(c['diverged'] for c in checks)}/{len(checks)} | {holds} | {worst} |"
            )
    return "\n".join(rows)


def _smooth(trace: np.ndarray, n: int) -> np.ndarray:
    """Moving average over ``n`` windows (NaN stays NaN: a diverged run shows as a gap)."""
    if len(trace) < n:
        return trace
    return np.convolve(trace, np.ones(n) / n, mode="valid")


def figure(runs: list[dict[str, Any]], path: Path) -> Path:
    """Online RMSE and free-run NRMSE over the record, per learning rate: the median over seeds
    (line; a diverged seed counts as infinite, so the line stops once half have diverged) and
    the range of the finite ones (band); the frozen models dashed; × marks each seed's first
    non-finite window; the stiffness on top. Errors above `CEILING` are cut off."""
    s, first = runs[0]["settings"], runs[0]
    lrs = s["adapt_lrs"]
    fig = Figure(figsize=(11, 3.2 * len(lrs)), layout="constrained")
    axes = fig.subplots(len(lrs), 2, squeeze=False)
    ends = np.array(first["window_end"])
    n = min(SMOOTH, len(ends))
    at = {"online": ends[n - 1 :], "free_run": np.array(first["checkpoints"])}
    models = [m for m in MODELS if any(r["model"] == m for r in runs)]
    for row, lr in enumerate(lrs):
        for col, key in enumerate(("online", "free_run")):
            ax = axes[row, col]
            for model, adapted in ((m, a) for m in models for a in (None, lr)):
                traces = _traces(runs, model, adapted, key)
                if key == "online":
                    traces = np.array([_smooth(t, n) for t in traces])
                median = np.median(np.where(np.isnan(traces), np.inf, traces), axis=0)
                frozen = adapted is None
                ax.plot(at[key], np.where(np.isfinite(median), median, np.nan),
                        "--" if frozen else "-", color=COLOURS[model], alpha=0.6 if frozen else 1,
                        label=f"{LABELS[model]}{' (frozen)' if frozen else ''}")  # fmt: skip
                if not frozen and len(traces) > 1:
                    low, high = np.fmin.reduce(traces, axis=0), np.fmax.reduce(traces, axis=0)
                    ax.fill_between(at[key], low, high, color=COLOURS[model], alpha=0.15)
                if not frozen and key == "online":
                    bad = [x["first_non_finite_window"] for r in runs if r["model"] == model
                           for x in r["runs"] if x["lr"] == lr]  # fmt: skip
                    bad = [ends[w] for w in bad if w is not None]
                    ax.plot(bad, [0.93] * len(bad), "x", color=COLOURS[model], ms=9, mew=2,
                            transform=ax.get_xaxis_transform())  # fmt: skip
            what = f"online RMSE ({n}-window mean)" if key == "online" else "free-run NRMSE"
            ax.set(yscale="log", xlabel="sample", ylabel=what, title=f"adaptation lr {lr:g}")
            ax.set_ylim(top=min(ax.get_ylim()[1], CEILING))
            ax.grid(which="both", alpha=0.3)
            top = ax.secondary_xaxis("top", functions=(
                lambda x: np.interp(x, ends, first["stiffness"]),
                lambda k: np.interp(k, first["stiffness"], ends)))  # fmt: skip
            top.set_xlabel("stiffness k")
    axes[0, 0].legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def certificate_table(runs: list[dict[str, Any]]) -> str:
    """Every `check_lmi` of the adapted R2DNs: per seed and learning rate, the checks held and
    the extremes of the largest LMI eigenvalue and the smallest eigenvalue of P."""
    rows = [
        "| seed | adaptation lr | checks held | largest LMI eigenvalue (range) "
        "| smallest eig P (min) |",
        "|---|---|---|---|---|",
    ]
    for r in sorted((r for r in runs if r["model"] == "r2dn"), key=lambda r: r["seed"]):
        for x in r["runs"]:
            lmi = [c["lmi"] for c in x["checks"]]
            top = [c["max_eigenvalue"] for c in lmi]
            rows.append(
                f"| {r['seed']} | {x['lr']:g} | {sum(c['holds'] for c in lmi)}/{len(lmi)} | "
                f"{min(top):.2e} … {max(top):.2e} | "
                f"{min(c['min_eigenvalue_P'] for c in lmi):.3g} |"
            )
    return "\n".join(rows)


def describe(runs: list[dict[str, Any]]) -> str:
    """The protocol of a set of runs, from the settings they record."""
    s = runs[0]["settings"]
    seeds = sorted({r["seed"] for r in runs})
    return (
        f"Record of {s['steps']:,} samples, stiffness constant for the first "
        f"{s['drift_start']:.0%} (pre-training: {s['epochs']} epochs of {s['segment_length']}"
        f"-step segments, lr {s['pretrain_lr']:g}) then ramped to {s['ratio']:g}×; online "
        f"adaptation over the rest, one Adam step per {s['window']}-sample window (clipped "
        f"at 10, as in pre-training), a checkpoint every {s['check_every']} windows (free run "
        f"of {s['test_steps']:,} steps after a {s['washout']}-step washout); sizes nx = "
        f"{s['nx']}, nv = {s['nv']}, φ hidden {tuple(s['hidden'])}, γ = {s['gamma']:g}; "
        f"seeds {seeds} (each seed draws its own record and initialisation)."
    )


def section(results: Path, doc: Path) -> list[str]:
    """The Markdown lines of this study in ``doc``, with its figures next to ``results``."""
    lines = ["", f"## {TITLE}"]
    notes = Path(results) / NOTES
    if notes.is_file():
        lines += ["", notes.read_text().strip()]
    sets = load_runs(results)
    if not sets:
        return [*lines, "", "Not run."]
    for name, runs in sets.items():
        png = figure(runs, Path(results) / f"{name.replace('/', '_')}.png")
        lines += [
            "",
            f"### Runs in `{Path(results).relative_to(doc.parent)}/{name}/`",
            "",
            describe(runs),
            "",
            table(runs),
            "",
            "`check_lmi` at every checkpoint of "
            "every adapted R2DN (each check is in the JSON records):",
            "",
            certificate_table(runs),
            "",
            f"![{png.stem}]({png.relative_to(doc.parent)})",
        ]
    return lines


def parse_rates(text: str | tuple[float, ...]) -> tuple[float, ...]:
    """Comma-separated positive learning rates, e.g. ``"1e-3,3e-2"``."""
    if isinstance(text, tuple):  # already parsed
        return text
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        rates = ()
    if not rates or not all(math.isfinite(r) and r > 0 for r in rates):
        raise typer.BadParameter(
            f"adapt-lrs must be comma-separated positive numbers like '1e-3,3e-2'; got {text!r}"
        )
    return rates


Rates = Annotated[
    str | None,
    typer.Option(
        parser=parse_rates, help="online learning rates, e.g. '1e-3,3e-2' (default: protocol)"
    ),
]


def main(argv: list[str] | None = None) -> list[Path]:
    args = common.parse_options(
        argv, __doc__.splitlines()[0], models=MODELS, adapt_lrs=(Rates, None)
    )
    s = common.protocol(args, PRESETS)
    if args.adapt_lrs is not None:
        s = dataclasses.replace(s, adapt_lrs=args.adapt_lrs)
    return [run(name, seed, s, args.out) for seed in s.seeds for name in args.models]


if __name__ == "__main__":
    main()
