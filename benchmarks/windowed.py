"""Windowed against carried-state training on F-16: wall time to the same validation loss.

``python benchmarks/windowed.py [--quick] [--f16-root DIR] [--steps N] [--epochs E]``

All in one process, with the same model and data. The carried-state mode is the paper's F-16
protocol (`experiments/f16.py`: its contracting R2DN, truncated BPTT over segments of 256,
Adam at 10⁻³ decayed ×0.1 every 20 epochs; the records of levels 1, 3, 5, 7 z-scored with the
level-4 statistics) run for ``--epochs`` epochs, validated after each on the level-4 record
(free simulation from the zero state, 100 steps washout). Its best validation loss is the
**target** and its time is the time to the epoch that reached it. Each windowed mode (zero
state with a burn-in, and the learned encoder) then trains the same model from the same
initialisation until its validation loss reaches the target, or until it has used
``--budget`` times the CPU time of the carried mode's whole run (not reached). The ratio is
windowed time over carried time, in wall seconds and in CPU seconds (all threads; the better
measure on a shared machine, whose load moves the wall times). The same ratios are given for
easier targets too: the best loss the carried mode had reached after each fifth of its epochs.

Every mode is compiled first by a one-epoch run that is not timed (the compile time is
reported apart: a fixed cost, independent of record length and epochs); times include
validation and everything else `fit` does. Every epoch's validation loss and times are kept
(the time-to-accuracy curves). ``--steps`` keeps the first that many samples of every record
(training and validation) to fit a smaller budget; ``--quick``: the experiments' tiny model,
2,048 samples, 3 epochs.

Prints a table and writes ``benchmarks/results/windowed_f16[_quick].json``.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as benchmarks/run.py, before NumPy

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import typer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the experiments package
from sysid import hardware  # noqa: E402

from experiments import common, f16  # noqa: E402
from r2dn.data import SequenceData  # noqa: E402
from r2dn.registry import ModelSpec  # noqa: E402
from r2dn.training import TrainConfig, fit  # noqa: E402

RESULTS = Path(__file__).parent / "results"


class _Stop(Exception):
    """Raised by the callback when the target is reached or the time budget spent."""


def timed_fit(
    spec: ModelSpec,
    data: tuple[SequenceData, SequenceData, Any],
    config: TrainConfig,
    target: float | None = None,
    budget_seconds: float | None = None,
) -> list[dict[str, float]]:
    """Train; after every epoch record its validation loss and wall and CPU seconds so far.

    Stops at the first epoch whose validation loss is at most ``target``, or once the CPU
    time exceeds ``budget_seconds``.
    """
    train, validation, normalizer = data
    curve: list[dict[str, float]] = []
    wall, cpu = time.perf_counter(), time.process_time()

    def watch(report) -> None:
        curve.append(
            dict(
                epoch=report.epoch,
                validation=float(report.validation_loss),
                wall=time.perf_counter() - wall,
                cpu=time.process_time() - cpu,
            )
        )
        if target is not None and report.validation_loss <= target:
            raise _Stop
        if budget_seconds is not None and curve[-1]["cpu"] > budget_seconds:
            raise _Stop

    with contextlib.suppress(_Stop):
        fit(spec, train, validation, config, normalizer=normalizer, progress=False,
            callbacks=[watch])  # fmt: skip
    return curve


def reached(curve: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first point of ``curve`` at or below ``target``, or None."""
    return next((point for point in curve if point["validation"] <= target), None)


def levels(curves: dict[str, list[dict[str, float]]], epochs: int) -> list[dict[str, Any]]:
    """Time to easier targets: the carried mode's best loss after each fifth of its epochs.

    For each target, every mode's wall and CPU seconds to reach it and their ratios to the
    carried mode's (None where a mode did not reach it).
    """
    carried = curves["carried (TBPTT)"]
    rows = []
    for epoch in sorted({max(1, round(epochs * k / 5)) for k in range(1, 6)}):
        target = min(p["validation"] for p in carried if p["epoch"] <= epoch)
        base = reached(carried, target)
        row: dict[str, Any] = dict(carried_epoch=epoch, target=target)
        for mode, curve in curves.items():
            hit = reached(curve, target)
            row[mode] = None if hit is None else dict(
                epoch=hit["epoch"], wall=hit["wall"], cpu=hit["cpu"],
                wall_ratio=hit["wall"] / base["wall"], cpu_ratio=hit["cpu"] / base["cpu"],
            )  # fmt: skip
        rows.append(row)
    return rows


def setup(
    quick: bool,
    root: Path,
    steps: int | None,
    epochs: int | None,
    window: int = 128,
    decay_every: int | None = None,
):
    """(description, spec, data, carried config, windowed configs) of the comparison.

    ``decay_every``: the windowed modes' learning-rate decay, in epochs (default: the carried
    mode's).
    """
    settings = f16.PRESETS["tiny" if quick else "paper"]
    steps = 2048 if quick and steps is None else steps
    train, tests, normalizer = f16.load(root)
    validation = f16.head(tests, steps)
    validation = dataclasses.replace(validation, u=validation.u[1:2], y=validation.y[1:2])
    data = (f16.head(train, steps), validation, normalizer)
    carried = TrainConfig(
        epochs=epochs or (3 if quick else settings.epochs),
        segment_length=settings.segment_length,
        lr=settings.lr,
        decay_every=settings.decay_every,
        washout=f16.WASHOUT,
    )
    # Short windows, more of them per step than the carried mode's 4 records (the batch is what
    # a CPU or the devices spread), and a learning rate 3× the carried mode's: chosen by a pilot
    # on the first 16,384 samples, 20 carried epochs (to the carried mode's best loss, batch 64
    # at 1e-3 took 1.4× its CPU time, batch 16 at 3e-3 about half). An epoch is about one pass
    # over the samples, as in the carried mode, so the learning rate decays after as many.
    windowed = dict(mode="windowed", epochs=10_000, window_length=window, batch_size=16, lr=3e-3)
    if decay_every is not None:
        windowed["decay_every"] = decay_every
    configs = {
        "windowed, burn-in": dataclasses.replace(carried, burn_in=window // 4, **windowed),
        "windowed, encoder": dataclasses.replace(
            carried, burn_in=8, initial_state="encoder", encoder_context=32, **windowed
        ),
    }
    length = data[0].length
    name = (
        f"F-16, levels 1, 3, 5, 7 train (first {length} samples of each), "
        f"level 4 validates (first {validation.length})"
    )
    return name, f16.spec("r2dn", settings), data, carried, configs


def compare(
    quick: bool,
    root: Path,
    steps: int | None,
    epochs: int | None,
    budget: float,
    window: int,
    decay_every: int | None = None,
):
    """Run the comparison; return the record written to the JSON."""
    name, spec, data, carried, configs = setup(quick, root, steps, epochs, window, decay_every)
    modes = {"carried (TBPTT)": carried} | configs
    compile_seconds = {}
    for mode, config in modes.items():  # compile every mode (not timed)
        cold = timed_fit(spec, data, dataclasses.replace(config, epochs=1))[0]["wall"]
        warm = timed_fit(spec, data, dataclasses.replace(config, epochs=1))[0]["wall"]
        compile_seconds[mode] = cold - warm
    curves = {"carried (TBPTT)": timed_fit(spec, data, carried)}
    target = min(p["validation"] for p in curves["carried (TBPTT)"])
    base = reached(curves["carried (TBPTT)"], target)
    for mode, config in configs.items():
        budget_seconds = budget * curves["carried (TBPTT)"][-1]["cpu"]
        curves[mode] = timed_fit(spec, data, config, target, budget_seconds)
    rows = []
    for mode, curve in curves.items():
        hit = reached(curve, target)
        rows.append(
            dict(
                mode=mode,
                reached=hit is not None,
                epochs=(hit or curve[-1])["epoch"],
                wall=None if hit is None else hit["wall"],
                cpu=None if hit is None else hit["cpu"],
                best_validation=min(p["validation"] for p in curve),
                wall_ratio=None if hit is None else hit["wall"] / base["wall"],
                cpu_ratio=None if hit is None else hit["cpu"] / base["cpu"],
                compile_seconds=compile_seconds[mode],
            )
        )
    return dict(
        data=name,
        levels=levels(curves, carried.epochs),
        spec=spec.to_dict(),
        target=target,
        budget=budget,
        configs={mode: config.to_dict() for mode, config in modes.items()},
        rows=rows,
        curves=curves,
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        hardware=hardware(),
    )


def show(record: dict[str, Any]) -> None:
    print(f"\n{record['data']}; target: the carried mode's best validation loss "
          f"{record['target']:.4g}\n")  # fmt: skip
    print("| mode | epochs | wall s to target | CPU s to target | best validation "
          "| wall ratio | CPU ratio | compile s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in record["rows"]:
        if r["reached"]:
            times = f"{r['wall']:.1f} | {r['cpu']:.1f}"
            ratios = f"{r['wall_ratio']:.2f} | {r['cpu_ratio']:.2f}"
        else:
            times, ratios = "not reached | —", "— | —"
        print(f"| {r['mode']} | {r['epochs']} | {times} | {r['best_validation']:.4g} "
              f"| {ratios} | {r['compile_seconds']:.1f} |")  # fmt: skip
    modes = [r["mode"] for r in record["rows"][1:]]
    print("\nEasier targets (the carried mode's best after some of its epochs), CPU ratio "
          "(wall ratio) to reach them:\n")  # fmt: skip
    print("| carried epochs | target | " + " | ".join(modes) + " |")
    print("|---|---|" + "---|" * len(modes))
    for level in record["levels"]:
        cells = [
            "not reached" if level[m] is None
            else f"{level[m]['cpu_ratio']:.2f} ({level[m]['wall_ratio']:.2f})"
            for m in modes
        ]  # fmt: skip
        print(f"| {level['carried_epoch']} | {level['target']:.4g} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the comparison, print it and write the JSON."""
    options: dict[str, Any] = {}
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command(help=__doc__.splitlines()[0])
    def command(
        quick: Annotated[bool, typer.Option(help="tiny model, 2,048 samples, 3 epochs")] = False,
        f16_root: Annotated[Path, typer.Option(help="folder of the F-16 CSVs")] = f16.DEFAULT_ROOT,
        steps: Annotated[
            int | None, typer.Option(help="samples kept of every record (default: all)")
        ] = None,
        epochs: Annotated[
            int | None, typer.Option(help="carried-state epochs (default: the paper's 70)")
        ] = None,
        window_length: Annotated[
            int, typer.Option(help="windowed: steps per window (burn-in mode: a quarter burn-in)")
        ] = 128,
        budget: Annotated[
            float,
            typer.Option(help="windowed CPU-time limit, × the carried mode's whole run"),
        ] = 1.5,
        decay_every: Annotated[
            int | None,
            typer.Option(
                help="windowed: learning-rate decay ×0.1 every this many epochs "
                "(default: the carried mode's)"
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(help="the JSON file (default: results/windowed_f16[_wW][_decayD].json)"),
        ] = None,
    ) -> None:
        options.update(locals())

    common.invoke(app, argv)
    if not options:  # --help
        return {}
    record = compare(
        options["quick"],
        options["f16_root"],
        options["steps"],
        options["epochs"],
        options["budget"],
        options["window_length"],
        options["decay_every"],
    )
    show(record)
    window = "" if options["window_length"] == 128 else f"_w{options['window_length']}"
    if options["decay_every"] is not None:
        window += f"_decay{options['decay_every']}"
    window += "_quick" if options["quick"] else ""
    path = options["out"] or RESULTS / f"windowed_f16{window}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
