"""Write `docs/results.md` and its figures from the experiments' JSON results.

    python -m experiments.report --results docs/results --out docs/results.md

Tables put REN beside R2DN (test metric mean ± std over the seeds run, seconds per epoch, the
speed-up) and beside the paper's numbers; the run's deviations from the paper's protocol are
listed from the settings each result records. Figures go next to the results.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from matplotlib.figure import Figure

from experiments import adaptation, common, expressivity, f16, pde_observer, scaling, youla

TITLES = {
    "f16": "1. System identification: F-16 ground vibration test",
    "pde_observer": "2. Observer design: reaction–diffusion PDE",
    "youla": "3. Learning-based feedback control: Youla parameterisation",
    "scaling": "4. Scalability with expressivity",
}
PAPER_SETTINGS = {
    "f16": f16.PRESETS["paper"],
    "pde_observer": pde_observer.PRESETS["paper"],
    "youla": youla.PRESETS["paper"],
    "scaling": scaling.PRESETS["paper"],
}
#: The paper's numbers (experiments note; ≈ read off its figures, on the authors' GPU).
PAPER = {
    "f16": {
        "metric": "test NRMSE (similar for both)",
        "ren": {"seconds": 85.0, "loss": 0.52},
        "r2dn": {"seconds": 17.0, "loss": 0.61},
    },
    "pde_observer": {
        "metric": "test NRMSE (not reported)",
        "ren": {"seconds": 0.80, "loss": 8.3e-6},
        "r2dn": {"seconds": 0.59, "loss": 6.3e-6},
    },
    "youla": {
        "metric": "test cost",
        "ren": {"seconds": 6.4, "loss": None, "test": 1.27},
        "r2dn": {"seconds": 0.61, "loss": None, "test": 1.27},
    },
}
PAPER_SLOPES = {
    ("ren", "inference"): "0.63 ± 0.03",
    ("r2dn", "inference"): "0.073 ± 0.008",
    ("ren", "backprop"): "0.61 ± 0.03",
    ("r2dn", "backprop"): "0.098 ± 0.005",
}
COLOURS = {"ren": "tab:blue", "r2dn": "tab:orange"}


def _family(result: dict[str, Any]) -> str:
    return result.get("family", result["model"])


def _mean_std(values: Sequence[float], fmt: str = ".4g") -> str:
    if len(values) == 1:
        return f"{values[0]:{fmt}}"
    return f"{np.mean(values):{fmt}} ± {np.std(values):{fmt}}"


def deviations(experiment: str, results: list[dict[str, Any]]) -> list[str]:
    """Each setting of the runs that differs from the paper's protocol."""
    paper = dataclasses.asdict(PAPER_SETTINGS[experiment])
    ran: dict[str, set] = defaultdict(set)
    for r in results:
        for name, value in r["settings"].items():
            ran[name].add(repr(tuple(value) if isinstance(value, list) else value))
    seeds = sorted({r["seed"] for r in results})
    lines = (
        [] if len(seeds) == len(paper["seeds"]) else [f"seeds {seeds} (paper: {paper['seeds']})"]
    )
    for name, values in ran.items():
        expected = paper[name]
        expected = repr(tuple(expected) if isinstance(expected, list) else expected)
        if name != "seeds" and values != {expected}:
            whole = expected == "None" and name.endswith("_steps")
            expected = "whole records" if whole else expected
            lines.append(f"`{name}` = {', '.join(sorted(values))} (paper: {expected})")
    return lines


def task_table(experiment: str, results: list[dict[str, Any]]) -> str:
    """REN vs R2DN on a task experiment, beside the paper."""
    paper = PAPER[experiment]
    by_model = defaultdict(list)
    for r in results:
        by_model[r["model"]].append(r)
    rows = [
        f"| model | parameters | seeds × epochs | test {results[0]['test']['metric']} "
        "| final training loss | s/epoch (here) | paper s/epoch | paper final loss | paper test |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    seconds = {}
    for name in common.MODELS:
        runs = by_model.get(name)
        if not runs:
            continue
        seconds[name] = float(np.mean([r["seconds_per_epoch"] for r in runs]))
        p = paper[name]
        rows.append(
            f"| {name.upper()} | {runs[0]['parameters']:,} | {len(runs)} × "
            f"{len(runs[0]['train_loss'])} | {_mean_std([r['test']['value'] for r in runs])} | "
            f"{_mean_std([r['train_loss'][-1] for r in runs])} | {seconds[name]:.3g} | "
            f"{p['seconds']:g} | {p['loss'] if p['loss'] is not None else '—'} | "
            f"{p.get('test', '—')} |"
        )
    if len(seconds) == 2:
        here = seconds["ren"] / seconds["r2dn"]
        there = paper["ren"]["seconds"] / paper["r2dn"]["seconds"]
        rows.append(
            f"\nSpeed-up of R2DN over REN (REN s/epoch ÷ R2DN s/epoch): **{here:.2f}×** here; "
            f"{there:.1f}× in the paper."
        )
    return "\n".join(rows)


def scaling_points(results: list[dict[str, Any]], family: str) -> dict[str, np.ndarray]:
    """Per size of one family: mean expressivity, inference and backprop seconds over seeds."""
    by_size = defaultdict(list)
    for r in results:
        if r["family"] == family:
            by_size[r["size"]].append(r["test"])
    sizes = sorted(by_size)

    def mean(key: str) -> np.ndarray:
        return np.array([np.mean([t[key] for t in by_size[n]]) for n in sizes])

    return {
        "size": np.array(sizes),
        "nrmse_percent": mean("value"),
        "expressivity": mean("expressivity"),
        "inference": mean("inference_seconds"),
        "backprop": mean("backprop_seconds"),
    }


def slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float | None]:
    """Least-squares slope of log y against log x, and its standard error (≥ 3 points).

    NaN from fewer than two points.
    """
    if len(x) < 2:
        return float("nan"), None
    if len(x) < 3:
        return float(np.polyfit(np.log(x), np.log(y), 1)[0]), None
    coef, cov = np.polyfit(np.log(x), np.log(y), 1, cov=True)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def scaling_table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| model | sizes | seeds × epochs | best NRMSE (%) | inference s | backprop s "
        "| slope inference | paper | slope backprop | paper |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in common.MODELS:
        if not any(r["family"] == name for r in results):
            continue
        pts = scaling_points(results, name)
        slopes = []
        for kind in ("inference", "backprop"):
            s, err = slope(pts["expressivity"], pts[kind])
            slopes.append(f"{s:.3f}" + ("" if err is None else f" ± {err:.3f}"))
        runs = [r for r in results if r["family"] == name]
        seeds = len({r["seed"] for r in runs})
        label = "nv" if name == "ren" else "width"
        rows.append(
            f"| {name.upper()} | {label} {', '.join(map(str, pts['size']))} | {seeds} × "
            f"{len(runs[0]['train_loss'])} | {pts['nrmse_percent'].min():.3g} | "
            f"{pts['inference'].min():.2g} → {pts['inference'].max():.2g} | "
            f"{pts['backprop'].min():.2g} → {pts['backprop'].max():.2g} | {slopes[0]} | "
            f"{PAPER_SLOPES[(name, 'inference')]} | {slopes[1]} | "
            f"{PAPER_SLOPES[(name, 'backprop')]} |"
        )
    return "\n".join(rows)


def scaling_sizes_table(results: list[dict[str, Any]]) -> str:
    """Per size: parameters, validation NRMSE, and times (means over seeds)."""
    rows = [
        "| model | size | parameters | NRMSE (%) | inference s | backprop s |",
        "|---|---|---|---|---|---|",
    ]
    for name in common.MODELS:
        pts = scaling_points(results, name)
        params = {r["size"]: r["parameters"] for r in results if r["family"] == name}
        for i, size in enumerate(pts["size"]):
            rows.append(
                f"| {name.upper()} | {size} | {params[size]:,} | {pts['nrmse_percent'][i]:.3g} | "
                f"{pts['inference'][i]:.3g} | {pts['backprop'][i]:.3g} |"
            )
    return "\n".join(rows)


#: Folder (under the results) of the F-16 runs with other LTI parts and state sizes (issue 13).
STRUCTURED = "f16_structured"


def structured_table(results: list[dict[str, Any]]) -> str:
    """F-16 R2DNs by LTI part and state size: test NRMSE and seconds per epoch, per run set.

    Seconds per epoch are the median over every seed's epochs 2..N (epoch 1 compiles): on a
    shared machine one slow epoch should not move the row.
    """
    rows = [
        "| LTI part | nx | parameters | seeds × epochs | test NRMSE | final training loss "
        "| s/epoch (median) | s/epoch ÷ first row |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_set = defaultdict(list)
    for r in results:
        by_set[r["run_set"]].append(r)
    first = None

    def dense_first(runs: list[dict[str, Any]]) -> tuple[bool, int]:
        settings = runs[0]["settings"]
        return settings.get("lti", "dense") != "dense", settings["nx"]

    for runs in sorted(by_set.values(), key=dense_first):
        settings = runs[0]["settings"]
        lti = settings.get("lti", "dense") + (
            f" (r = {settings['rank']})" if settings.get("rank") else ""
        )
        seconds = float(np.median([t for r in runs for t in r["epoch_seconds"][1:]]))
        first = first or seconds
        rows.append(
            f"| {lti} | {settings['nx']} | {runs[0]['parameters']:,} | {len(runs)} × "
            f"{len(runs[0]['train_loss'])} | {_mean_std([r['test']['value'] for r in runs])} | "
            f"{_mean_std([r['train_loss'][-1] for r in runs])} | {seconds:.3g} | "
            f"{seconds / first:.2f} |"
        )
    return "\n".join(rows)


def certificate_table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| runs | model | seed | parameters | largest LMI eigenvalue | smallest eig P | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r["certificate"]
        rows.append(
            f"| {r['run_set']} | {r['model']} | {r['seed']} | {r['parameters']:,} | "
            f"{c['max_eigenvalue']:.3e} | {c['min_eigenvalue_P']:.3g} | "
            f"{'yes' if c['holds'] else '**NO**'} |"
        )
    return "\n".join(rows)


# Figures ----------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def loss_figure(experiment: str, results: list[dict[str, Any]], path: Path) -> Path:
    """Training loss against epoch and against cumulative wall-clock time, every run."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    by_epoch, by_time = fig.subplots(1, 2)
    labelled = set()
    for r in results:
        family = _family(r)
        loss = np.asarray(r["train_loss"])
        label = None if family in labelled else family.upper()
        labelled.add(family)
        style = dict(color=COLOURS[family], alpha=0.8, label=label, marker=".")
        by_epoch.plot(np.arange(1, len(loss) + 1), loss, **style)
        by_time.plot(np.cumsum(r["epoch_seconds"]), loss, **style)
    by_epoch.set(xlabel="epoch", ylabel="training loss", yscale="log")
    by_time.set(xlabel="wall-clock seconds (cumulative, epoch 1 includes compilation)")
    by_time.set(yscale="log")
    for ax in (by_epoch, by_time):
        ax.grid(which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{TITLES[experiment]}: training loss")
    return _save(fig, path)


@dataclasses.dataclass(frozen=True)
class PredictionPlot:
    """What one experiment's prediction figure shows: the keys of a run's ``"prediction"``.

    Labels are formatted with the run's ``prediction`` entries, ``FAMILY`` (upper case) and
    ``model``; ``panels`` names an entry with one label per panel, each curve then being one
    row per panel.
    """

    title: str
    xlabel: str
    ylabel: str
    truth: str = "y"
    truth_label: str = "truth"
    truth_style: str = "k"
    estimate: str = "y_hat"
    estimate_label: str = "{FAMILY}"
    x: str | None = None  # the abscissa; the step when None
    panels: str | None = None
    panel_label: str = "{}"
    largest: bool = False  # each family's largest model, else its first seed
    ylim: tuple[float, float] | None = None


PREDICTION_PLOTS = {
    "f16": PredictionPlot(
        title="Free simulation on the first validation record (level 2)",
        xlabel="step after the washout",
        ylabel="normalised output",
        truth_label="{channel} (measured)",
    ),
    "pde_observer": PredictionPlot(
        title="Observer estimates from x̂₀ = 0 on the test trajectory (ξ₀ = 1)",
        xlabel="step",
        ylabel="",
        truth_label="ξ (truth)",
        panels="nodes",
        panel_label="node {}",
    ),
    "youla": PredictionPlot(
        title="Closed-loop response to the first test disturbance (w clipped in view)",
        xlabel="step",
        ylabel="performance output z",
        truth="w",
        truth_label="disturbance w",
        truth_style="k:",
        estimate="z",
        estimate_label="z, {FAMILY} Q",
        ylim=(-3, 3),
    ),
    "scaling": PredictionPlot(
        title="One-step map on the validation grid (u = 1), largest model of each family",
        xlabel="x",
        ylabel="x⁺",
        truth_label="f(x, 1)",
        estimate_label="{model}",
        x="x",
        largest=True,
    ),
}


def _draw(ax, plot: PredictionPlot, prediction: dict, key: str, panel: int, *style, **kwargs):
    """One curve of a prediction figure (its row ``panel`` when the figure has panels)."""
    values = prediction[key][panel] if plot.panels else prediction[key]
    ax.plot(*([prediction[plot.x]] if plot.x else []), values, *style, **kwargs)


def prediction_figure(plot: PredictionPlot, results: list[dict[str, Any]], path: Path) -> Path:
    """Each model's behaviour on the test data against the truth, as ``plot`` describes."""
    chosen = {}
    for r in sorted(results, key=lambda r: r["seed"]):
        family = _family(r)
        if family not in chosen or (plot.largest and r["size"] > chosen[family]["size"]):
            chosen[family] = r
    any_run = next(iter(chosen.values()))["prediction"]
    labels = any_run[plot.panels] if plot.panels else [None]
    fig = Figure(figsize=(10, 4 if len(labels) == 1 else 3.2 * len(labels)), layout="constrained")
    axes = fig.subplots(len(labels), 1, squeeze=False)[:, 0]
    fields = {k: v for k, v in any_run.items() if isinstance(v, str)}
    for i, (ax, label) in enumerate(zip(axes, labels, strict=True)):
        truth_label = plot.truth_label.format(**fields)
        _draw(ax, plot, any_run, plot.truth, i, plot.truth_style, label=truth_label)
        for family, r in chosen.items():
            name = plot.estimate_label.format(FAMILY=family.upper(), model=r["model"])
            _draw(ax, plot, r["prediction"], plot.estimate, i, color=COLOURS[family], label=name)
        ylabel = plot.panel_label.format(label) if plot.panels else plot.ylabel
        ax.set(xlabel=plot.xlabel, ylabel=ylabel, ylim=plot.ylim)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(plot.title)
    return _save(fig, path)


def scaling_figure(results: list[dict[str, Any]], path: Path) -> Path:
    """Time against expressivity on log–log axes, with the fitted slopes."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, kind in zip(fig.subplots(1, 2), ("inference", "backprop"), strict=True):
        for name in common.MODELS:
            if not any(r["family"] == name for r in results):
                continue
            pts = scaling_points(results, name)
            s, _ = slope(pts["expressivity"], pts[kind])
            ax.loglog(
                pts["expressivity"],
                pts[kind],
                "o-",
                color=COLOURS[name],
                label=f"{name.upper()} (slope {s:.2f})",
            )
        ax.set(xlabel="expressivity 1/NRMSE(%)", ylabel=f"{kind} seconds", title=kind)
        ax.grid(which="both", alpha=0.3)
        ax.legend()
    return _save(fig, path)


# Document ---------------------------------------------------------------------------------


def section(experiment: str, runs: list[dict[str, Any]], stem: Path, doc: Path) -> list[str]:
    """Table, deviations and figures (``<stem>_*.png``) of one set of runs."""
    if experiment == "scaling":
        table = scaling_table(runs) + "\n\n" + scaling_sizes_table(runs)
    else:
        table = task_table(experiment, runs)
    lines = [table, "", "Deviations from the paper's protocol:", ""]
    lines += [f"- {line}" for line in deviations(experiment, runs)] or ["- none"]
    images = [loss_figure(experiment, runs, stem.with_name(f"{stem.name}_loss.png"))]
    test_png = stem.with_name(f"{stem.name}_test.png")
    images.append(prediction_figure(PREDICTION_PLOTS[experiment], runs, test_png))
    if experiment == "scaling":
        images.append(scaling_figure(runs, stem.with_name(f"{stem.name}_slopes.png")))
    return [*lines, "", *(f"![{p.stem}]({p.relative_to(doc.parent)})" for p in images)]


def render(
    results: list[dict[str, Any]],
    figures: Path,
    doc: Path,
    notes: str,
    structured_notes: str = "",
) -> str:
    by_experiment = defaultdict(list)
    structured = [r for r in results if r["run_set"].split("/")[0] == STRUCTURED]
    for r in results:
        if r["run_set"].split("/")[0] != STRUCTURED:
            by_experiment[r["experiment"]].append(r)
    hardware = results[0]["hardware"] if results else {}
    rel = figures.relative_to(doc.parent)
    parts = [
        "# Reproducing the R2DN paper's experiments",
        "",
        "Generated by `python -m experiments.report` from the JSON results in "
        f"`{rel}/`; the notes before the tables are written by hand "
        f"(`{rel}/notes.md`).",
        "",
        f"Hardware: JAX backend `{hardware.get('backend')}`, devices "
        f"{hardware.get('devices')}, processor {hardware.get('processor')}.",
        "",
        notes.strip(),
    ]
    for experiment, title in TITLES.items():
        parts += ["", f"## {title}"]
        sets = sorted({r["run_set"] for r in by_experiment.get(experiment, [])})
        if not sets:
            parts += ["", "Not run."]
        for run_set in sets:
            runs = [r for r in by_experiment[experiment] if r["run_set"] == run_set]
            parts += ["", f"### Runs in `{rel}/{run_set}/`", ""]
            name = run_set.replace("/", "_")
            name = name if name.startswith(experiment) else f"{experiment}_{name}"
            parts += section(experiment, runs, figures / name, doc)
    if structured:
        parts += ["", "## 5. Structured (DPLR) LTI part at large state: F-16", ""]
        parts += [structured_notes.strip(), "", structured_table(structured), ""]
        parts += ["Deviations from the paper's protocol:", ""]
        parts += [f"- {line}" for line in deviations("f16", structured)]
    parts += expressivity.section(results, figures, doc)
    parts += adaptation.section(figures, doc)
    parts += [
        "",
        "## Certificates of every trained model",
        "",
        "`r2dn.certificates.check_lmi`, recomputed in float64 from the trained parameters: the "
        "largest eigenvalue of the dissipation LMI must be negative and the metric P positive "
        "definite.",
        "",
        certificate_table(results),
        "",
    ]
    return "\n".join(parts)


RESULTS = common.REPO / "docs" / "results"
REPORT = common.REPO / "docs" / "results.md"


def main(argv: list[str] | None = None) -> Path:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    written: list[Path] = []

    @app.command(help=__doc__.splitlines()[0])
    def command(
        results: Annotated[Path, typer.Option(help="folder of result JSON files")] = RESULTS,
        out: Annotated[Path, typer.Option(help="the Markdown report to write")] = REPORT,
    ) -> None:
        written.append(write_report(results, out))

    common.invoke(app, argv)
    if not written:  # --help was shown
        raise SystemExit(0)
    return written[0]


def write_report(results_dir: Path, out: Path) -> Path:
    """Write the Markdown report of the results under ``results_dir`` to ``out``."""
    results = common.load_results(results_dir)
    if not results:
        raise SystemExit(f"no result files (*_seed*.json) under {results_dir}; run an experiment")
    notes_file = results_dir / "notes.md"
    notes = notes_file.read_text() if notes_file.is_file() else ""
    structured_file = results_dir / STRUCTURED / "notes.md"
    structured = structured_file.read_text() if structured_file.is_file() else ""
    out.write_text(render(results, results_dir, out, notes, structured))
    return out


if __name__ == "__main__":
    main()
