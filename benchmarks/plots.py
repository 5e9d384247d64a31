"""Figures of a benchmark run (matplotlib, Agg): time against parameters, batch and horizon."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"forward": "--", "gradient": "-"}


def plot_sweep(results: dict, folder: Path) -> Path:
    """Log-log time per call against parameter count for each family of the sweep."""
    sweep = results["sweep"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, family in enumerate(dict.fromkeys(r["family"] for r in sweep["rows"])):
        rows = [r for r in sweep["rows"] if r["family"] == family]
        slopes = sweep["loglog_slopes"].get(family, {})
        for kind, line in STYLE.items():
            label = f"{family} {kind}"
            if kind in slopes:
                label += f" (slope {slopes[kind]:.2f})"
            ax.loglog(
                [r["params"] for r in rows],
                [1e3 * r[kind]["median_s"] for r in rows],
                line,
                marker="o",
                color=f"C{i}",
                label=label,
            )
    ax.set(xlabel="parameters", ylabel="ms per call (median)")
    ax.set_title("Scaling sweep: batch 64, horizon 128", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, folder / "benchmarks_sweep.png")


def plot_scaling(results: dict, folder: Path) -> Path:
    """Time per call against batch size and horizon at the F-16 sizes."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, axis, fixed in zip(axes, ("batch", "horizon"), ("horizon 256", "batch 4"), strict=True):
        rows = results["scaling"][axis]
        for i, name in enumerate(dict.fromkeys(r["name"] for r in rows)):
            mine = [r for r in rows if r["name"] == name]
            for kind, line in STYLE.items():
                ax.loglog(
                    [r[axis] for r in mine],
                    [1e3 * r[kind]["median_s"] for r in mine],
                    line,
                    marker="o",
                    color=f"C{i}",
                    label=name if kind == "gradient" else None,
                )
        ax.set(xlabel=axis, ylabel="ms per call (median)")
        ax.set_title(f"F-16 sizes, {fixed} (solid: gradient, dashed: forward)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    return _save(fig, folder / "benchmarks_scaling.png")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    # Redraw the figures of a saved run: python benchmarks/plots.py benchmarks/results/full.json
    import json
    import sys

    results = json.loads(Path(sys.argv[1]).read_text())
    docs = Path(__file__).resolve().parent.parent / "docs"
    for written in (plot_sweep(results, docs), plot_scaling(results, docs)):
        print(f"wrote {written}")
