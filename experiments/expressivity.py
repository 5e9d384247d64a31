"""Expressivity on F-16: how test NRMSE grows with the R2DN's φ depth and state size.

Contracting R2DNs with φ depth ∈ {1, 2, 4, 8} (width 87, nv = 75) × nx ∈ {16, 75, 256} (the
diagonal-plus-low-rank LTI part, ``lti="dplr"``, from nx = 256 on, where a dense one would
cost O(nx³) per sequence), beside contracting RENs (nx = 75) with nv ∈ {50, 150, 300}. Data,
split, initialisation, optimiser and metric are `experiments.f16`'s (train on levels 1, 3, 5,
7; test by free simulation over levels 2, 4, 6 after a 100-step washout). Each run records its
test NRMSE, training losses, wall-clock and CPU seconds per epoch, parameter count and the
`check_lmi` certificate of the trained model.

**The study's protocol is shorter than the paper's** (70 epochs of 288 segments: 20,160 Adam
steps per model; at the CPU cost per segment measured on this project's busy 2-core machine,
about 2.7 CPU-hours per seed of the grid, 8 for three seeds, against the study's one CPU-hour).
Each F-16 record is 9 periods of one 8,192-step multisine (the input repeats to within 0.3 %
from the second period on), so its first two periods (16,384 steps, 64 segments) already hold
every excited frequency at every amplitude level; the other seven repeat them. The study trains
on those two periods for 30 epochs (1,920 Adam steps; lr 1e-3, ×0.1 after epoch 15) and tests on
the whole validation records. The models are therefore compared early in training, where the
paper compares converged ones: a grid point's NRMSE is what that model reaches in a fixed,
short budget (``docs/results.md`` also has some points trained four times longer).

    python -m experiments.expressivity --study --out docs/results/expressivity   # ~50 CPU-min
    python -m experiments.expressivity --quick --out runs/expressivity   # tiny: ~1 CPU-min
    python -m experiments.expressivity --out runs/expressivity    # the paper's protocol

``--depths``, ``--nx`` and ``--ren-nv`` run part of the grid (e.g. more seeds on some points);
``--epochs`` with ``--decay-every`` trains some points longer on the same schedule's shape;
``--dplr-from`` moves the size from which the R2DN's LTI part is diagonal plus low rank.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from experiments import common, f16
from r2dn.registry import ModelSpec
from r2dn.training import EpochReport


@dataclass(frozen=True)
class Settings:
    """The grid and the training protocol (``None`` steps = the whole records)."""

    epochs: int
    seeds: tuple[int, ...]
    depths: tuple[int, ...] = (1, 2, 4, 8)
    nx: tuple[int, ...] = (16, 75, 256)
    ren_nv: tuple[int, ...] = (50, 150, 300)
    width: int = 87
    r2dn_nv: int = 75
    ren_nx: int = 75
    dplr_from: int = 256  # nx from which the R2DN's LTI part is diagonal plus low rank
    rank: int = 16
    segment_length: int = 256
    train_steps: int | None = None
    test_steps: int | None = None
    lr: float = 1e-3
    decay_every: int = 20


PRESETS = {
    "paper": Settings(epochs=70, seeds=(0, 1, 2)),
    "study": Settings(epochs=30, seeds=(0, 1, 2), train_steps=2 * 8_192, decay_every=15),
    "quick": Settings(
        epochs=2,
        seeds=(0,),
        depths=(1, 2),
        nx=(3, 8),
        ren_nv=(4,),
        width=8,
        r2dn_nv=4,
        ren_nx=3,
        dplr_from=8,
        rank=2,
        segment_length=64,
        train_steps=256,
        test_steps=200,
    ),
}
PRESETS["tiny"] = PRESETS["quick"]  # the quick run already takes seconds


@dataclass(frozen=True)
class Point:
    """One model of the grid: a family and its sizes."""

    family: str  # "r2dn" or "ren"
    nx: int
    nv: int
    depth: int | None = None  # of φ, for an R2DN

    @property
    def name(self) -> str:
        if self.family == "ren":
            return f"ren-nv{self.nv}"
        return f"r2dn-d{self.depth}-nx{self.nx}"


def grid(family: str, s: Settings) -> list[Point]:
    """The R2DNs (depth × nx) or the RENs (nv) of the study."""
    if family == "ren":
        return [Point("ren", s.ren_nx, nv) for nv in s.ren_nv]
    return [Point("r2dn", nx, s.r2dn_nv, depth) for nx in s.nx for depth in s.depths]


def spec(point: Point, s: Settings) -> ModelSpec:
    """`experiments.f16`'s contracting model (relu, long memory) at ``point``'s sizes."""
    sizes = dict(nu=2, nx=point.nx, nv=point.nv, ny=3, init="long_memory", activation="relu")
    if point.family == "ren":
        return ModelSpec("contracting-ren", sizes)
    lti = dict(lti="dplr", rank=s.rank) if point.nx >= s.dplr_from else dict(lti="dense")
    return ModelSpec("contracting-r2dn", sizes | lti | dict(hidden=(s.width,) * point.depth))


class CPUClock:
    """A `fit` callback: the process's CPU seconds of each epoch (robust to a busy machine)."""

    def __init__(self) -> None:
        self.last = time.process_time()
        self.seconds: list[float] = []

    def __call__(self, report: EpochReport) -> None:
        now = time.process_time()
        self.seconds.append(now - self.last)
        self.last = now


def run(point: Point, seed: int, s: Settings, data, out: Path) -> Path:
    clock = CPUClock()
    model_spec = spec(point, s)
    trial = f16.fit_and_test(
        model_spec, f16.train_config(s, seed), data, callbacks=[clock], progress=False
    )
    history = trial.result.state.history
    extra = {
        "family": point.family,
        "depth": point.depth,
        "nx": point.nx,
        "nv": point.nv,
        "lti": model_spec.kwargs.get("lti"),
        "cpu_epoch_seconds": clock.seconds,
        "cpu_seconds_per_epoch": common.seconds_per_epoch(clock.seconds),
    }
    path = trial.write(out, "expressivity", point.name, seed, s, extra)
    print(
        f"{point.name} seed {seed}: NRMSE {trial.nrmse:.4f}, loss {history['train'][-1]:.4g}, "
        f"{common.seconds_per_epoch(clock.seconds):.3g} CPU s/epoch → {path}",
        flush=True,
    )
    return path


# Report ------------------------------------------------------------------------------------

TITLE = "6. Expressivity against φ depth and state size (F-16)"
COLOURS = {16: "tab:green", 75: "tab:orange", 256: "tab:red"}


@dataclass(frozen=True)
class Summary:
    """One grid point's runs, summarised over its seeds."""

    point: Point
    lti: str | None
    parameters: int
    nrmse: np.ndarray  # one per seed
    loss: np.ndarray  # final training loss, one per seed
    seconds: float  # wall-clock s/epoch, mean over seeds
    cpu_seconds: float  # CPU s/epoch, mean over seeds
    epochs: int
    holds: bool  # every seed's certificate


def summarise(results: list[dict[str, Any]]) -> list[Summary]:
    """The runs grouped by grid point: RENs by nv, then R2DNs by nx and depth."""
    groups: dict[tuple[Point, str | None], list[dict[str, Any]]] = {}
    for r in results:
        point = Point(r["family"], r["nx"], r["nv"], r["depth"])
        groups.setdefault((point, r["lti"]), []).append(r)
    order = lambda p: (p.family != "ren", p.nx if p.family == "r2dn" else 0, p.depth or 0, p.nv)  # noqa: E731
    return [
        Summary(
            point=point,
            lti=runs[0]["lti"],
            parameters=runs[0]["parameters"],
            nrmse=np.array([r["test"]["value"] for r in runs]),
            loss=np.array([r["train_loss"][-1] for r in runs]),
            seconds=float(np.mean([r["seconds_per_epoch"] for r in runs])),
            cpu_seconds=float(np.mean([r["cpu_seconds_per_epoch"] for r in runs])),
            epochs=len(runs[0]["train_loss"]),
            holds=all(r["certificate"]["holds"] for r in runs),
        )
        for (point, _), runs in sorted(groups.items(), key=lambda item: order(item[0][0]))
    ]


def _mean_std(values: np.ndarray, fmt: str = ".3f") -> str:
    if len(values) == 1:
        return f"{values[0]:{fmt}}"
    return f"{values.mean():{fmt}} ± {values.std():{fmt}}"


def table(summaries: list[Summary]) -> str:
    """One row per grid point: sizes, parameters, seeds, NRMSE, loss, seconds, certificate."""
    rows = [
        "| model | φ depth | nx (LTI part) | nv | parameters | seeds × epochs | test NRMSE "
        "| final training loss | CPU s/epoch | wall s/epoch | certificates |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in summaries:
        p = m.point
        rows.append(
            f"| {p.family.upper()} | {p.depth or '—'} | {p.nx}"
            f"{f' ({m.lti})' if m.lti else ''} | {p.nv} | {m.parameters:,} | "
            f"{len(m.nrmse)} × {m.epochs} | {_mean_std(m.nrmse)} | {_mean_std(m.loss, '.3g')} | "
            f"{m.cpu_seconds:.3g} | {m.seconds:.3g} | {'all pass' if m.holds else '**FAIL**'} |"
        )
    return "\n".join(rows)


def heatmap(summaries: list[Summary], path: Path) -> Path:
    """Mean test NRMSE of the R2DNs over φ depth (rows) × nx (columns), with the spread."""
    r2dn = [m for m in summaries if m.point.family == "r2dn"]
    depths = sorted({m.point.depth for m in r2dn})
    sizes = sorted({m.point.nx for m in r2dn})
    values = np.full((len(depths), len(sizes)), np.nan)
    fig = Figure(figsize=(6.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for m in r2dn:
        values[depths.index(m.point.depth), sizes.index(m.point.nx)] = m.nrmse.mean()
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    middle = (np.nanmin(values) + np.nanmax(values)) / 2
    for m in r2dn:
        i, j = depths.index(m.point.depth), sizes.index(m.point.nx)
        n = len(m.nrmse)
        spread = f"± {m.nrmse.std():.3f} ({n} seeds)" if n > 1 else "(1 seed)"
        colour = "white" if values[i, j] < middle else "black"
        ax.text(j, i, f"{m.nrmse.mean():.3f}\n{spread}", ha="center", va="center", color=colour)
    lti = {m.point.nx: m.lti for m in r2dn}
    ax.set_xticks(range(len(sizes)), [f"{n} ({lti[n]})" for n in sizes])
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    ax.set(xlabel="nx (LTI part)", ylabel="φ depth (width 87)")
    fig.colorbar(image, ax=ax, label="test NRMSE (mean over seeds; lower is better)")
    fig.suptitle("R2DN test NRMSE on F-16 over φ depth × state size")
    return _save(fig, path)


def cost_figure(summaries: list[Summary], path: Path) -> Path:
    """Test NRMSE against CPU seconds per epoch: R2DN lines over depth, REN's over nv."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    lines: dict[tuple[str, int], list[Summary]] = {}
    for m in summaries:
        key = ("ren", 0) if m.point.family == "ren" else ("r2dn", m.point.nx)
        lines.setdefault(key, []).append(m)
    for (family, nx), points in lines.items():
        x = [m.cpu_seconds for m in points]
        y = [m.nrmse.mean() for m in points]
        err = [m.nrmse.std() for m in points]
        if family == "ren":
            nvs = " / ".join(str(m.point.nv) for m in points)
            label = f"REN, nx = {points[0].point.nx}, nv = {nvs}"
            style = dict(color="tab:blue", marker="s", label=label)
            labels = [f"nv {m.point.nv}" for m in points]
        else:
            depths = " / ".join(str(m.point.depth) for m in points)
            label = f"R2DN, nx = {nx} ({points[0].lti}), φ depth {depths}"
            style = dict(color=COLOURS.get(nx, "tab:gray"), marker="o", label=label)
            labels = [f"d{m.point.depth}" for m in points]
        ax.errorbar(x, y, yerr=err, capsize=3, **style)
        for xi, yi, text in zip(x, y, labels, strict=True):
            ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    seconds = [m.cpu_seconds for m in summaries]
    ticks = [
        x for x in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if min(seconds) / 2 < x < 2 * max(seconds)
    ]
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="CPU seconds per training epoch (mean over epochs 2..N and seeds)",
           ylabel="test NRMSE (mean ± std over seeds)")  # fmt: skip
    ax.grid(which="both", alpha=0.3)
    ax.legend()
    fig.suptitle("F-16: accuracy against training cost")
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def section(results: list[dict[str, Any]], figures: Path, doc: Path) -> list[str]:
    """The report's section: notes, then per folder of runs its protocol, table and figures."""
    runs = [r for r in results if r["experiment"] == "expressivity"]
    lines = ["", f"## {TITLE}", ""]
    if not runs:
        return [*lines, "Not run."]
    notes = figures / "expressivity" / "notes.md"
    if notes.is_file():
        lines += [notes.read_text().strip(), ""]
    rel = figures.relative_to(doc.parent)
    for run_set in sorted({r["run_set"] for r in runs}):
        chosen = [r for r in runs if r["run_set"] == run_set]
        lines += [f"### Runs in `{rel}/{run_set}/`", ""]
        lines += run_set_section(chosen, figures / run_set.replace("/", "_"), doc)
    return lines


def run_set_section(runs: list[dict[str, Any]], stem: Path, doc: Path) -> list[str]:
    """Protocol, table, heat-map (``<stem>_heatmap.png``) and cost figure of one set of runs."""
    summaries = summarise(runs)
    grid_fields = {"seeds", "depths", "nx", "ren_nv"}  # shown by the table
    settings = sorted(
        {
            common.to_json({k: v for k, v in r["settings"].items() if k not in grid_fields})
            for r in runs
        }  # fmt: skip
    )
    lines = ["Protocol (`Settings`; the grid is in the table):", ""]
    lines += [f"```json\n{text.strip()}\n```" for text in settings]
    images = [
        heatmap(summaries, stem.with_name(f"{stem.name}_heatmap.png")),
        cost_figure(summaries, stem.with_name(f"{stem.name}_cost.png")),
    ]
    lines += ["", table(summaries), ""]
    return [*lines, *(f"![{p.stem}]({p.relative_to(doc.parent)})" for p in images), ""]


def _sizes(text: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``"1,2,4"`` → (1, 2, 4): positive integers."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"expected positive integers like '1,2,4'; got {text!r}")
    return sizes


def _sizes_option(help: str) -> tuple[Any, None]:
    return Annotated[str | None, typer.Option(parser=_sizes, help=help)], None


def settings(args: Any) -> Settings:
    """The preset the flags name (``--study``, ``--quick``, else the paper's), overridden by
    ``--epochs``, ``--seeds``, ``--depths``, ``--nx``, ``--ren-nv``, ``--decay-every`` and
    ``--dplr-from``."""
    if args.study and (args.quick or args.tiny):
        raise SystemExit("--study excludes --quick and --tiny; choose one")
    presets = PRESETS | ({"paper": PRESETS["study"]} if args.study else {})
    s = common.protocol(args, presets)
    grid_options = {"depths": args.depths, "nx": args.nx, "ren_nv": args.ren_nv}
    grid_options |= {"decay_every": args.decay_every, "dplr_from": args.dplr_from}
    return dataclasses.replace(s, **{k: v for k, v in grid_options.items() if v is not None})


def main(argv: list[str] | None = None) -> list[Path]:
    study = Annotated[bool, typer.Option(help="the shortened protocol of the study (docstring)")]
    root = Annotated[Path, typer.Option(help="folder of the F-16 CSVs")]
    dplr_from = Annotated[
        int | None, typer.Option(min=1, help="R2DNs of this nx or more take the DPLR LTI part")
    ]
    decay = Annotated[
        int | None, typer.Option(min=1, help="epochs between ×0.1 steps of the learning rate")
    ]
    args = common.parse_options(
        argv,
        __doc__.splitlines()[0],
        study=(study, False),
        depths=_sizes_option("φ depths of the R2DNs (default: the preset's)"),
        nx=_sizes_option("state sizes of the R2DNs (default: the preset's)"),
        ren_nv=_sizes_option("nv of the RENs (default: the preset's)"),
        decay_every=(decay, None),
        dplr_from=(dplr_from, None),
        f16_root=(root, f16.DEFAULT_ROOT),
    )
    s = settings(args)
    train, test, normalizer = f16.load(args.f16_root)
    data = (f16.head(train, s.train_steps), f16.head(test, s.test_steps), normalizer)
    points = [point for family in args.models for point in grid(family, s)]
    # Seeds innermost: one compilation per model serves all its seeds.
    return [run(point, seed, s, data, args.out) for point in points for seed in s.seeds]


if __name__ == "__main__":
    main()
