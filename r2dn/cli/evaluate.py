"""``r2dn evaluate``: score a saved model on a dataset; write the metrics and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from r2dn.cli import data as data_sources
from r2dn.cli.common import (
    BenchmarkOpt,
    BenchmarkRootOpt,
    CommandError,
    DataOpt,
    F16RootOpt,
    InputsOpt,
    ModelPathArg,
    OutputsOpt,
    RowsOpt,
    annotate_metrics,
    names,
    print_metrics,
    user_errors,
)
from r2dn.data import Benchmark
from r2dn.io import TrainedModel, load_model
from r2dn.training import write_report
from r2dn.training.evaluate import predict


@user_errors
def command(
    model_path: ModelPathArg,
    data: DataOpt = None,
    f16_root: F16RootOpt = None,
    benchmark: BenchmarkOpt = None,
    benchmark_root: BenchmarkRootOpt = None,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="CSV file of test data (all of it, or --rows).", show_default=False
        ),
    ] = None,
    rows: RowsOpt = None,
    inputs: InputsOpt = None,
    outputs: OutputsOpt = None,
    dt: Annotated[
        float | None,
        typer.Option(
            help="Sampling time of the CSV in seconds (default: the model's).", show_default=False
        ),
    ] = None,
    washout: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Initial steps of each record left out of every metric (the transient from "
            "the model's zero initial state). Default: 100, or the --benchmark's window.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for metrics.json and the prediction plots (default: "
            "'evaluation-<data>' next to the model file, named after the CSV file or benchmark).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier evaluation in the --out folder.")
    ] = False,
) -> None:
    """Evaluate a saved model on a dataset (its validation part for the benchmarks)."""
    source = data_sources.source(data, csv_path, benchmark)
    name = benchmark if source is None else data_sources.name(source, csv_path)
    if rows is not None and source != "csv":
        raise CommandError("--rows applies to --csv data")
    out = model_path.parent / f"evaluation-{name}" if out is None else out
    if (out / "metrics.json").exists() and not overwrite:
        raise CommandError(
            f"{out} already holds an evaluation; replace it with --overwrite or choose another "
            "--out"
        )
    trained = load_model(model_path)
    if source is None:
        bench = data_sources.load_benchmark(benchmark, benchmark_root)
        _benchmark_report(trained, model_path, bench, benchmark_root, washout, out)
        return
    washout = 100 if washout is None else washout
    dataset = data_sources.evaluation_data(
        trained, source, f16_root, csv_path, names(inputs, "inputs"), names(outputs, "outputs"),
        dt, data_sources.parse_rows(rows),
    )  # fmt: skip
    if trained.dt is not None and dataset.dt != trained.dt:
        typer.secho(
            f"Warning: the data are sampled every {dataset.dt} s but the model was trained at "
            f"{trained.dt} s; its dynamics assume the latter.",
            fg="yellow",
            err=True,
        )
    summary, files = write_report(trained, dataset, out, washout=washout)
    scored = {"source": source, "name": name, "model": str(model_path.resolve())}
    if csv_path is not None:
        scored["csv"] = str(csv_path.resolve())
        scored["rows"] = data_sources.parse_rows(rows)
    annotate_metrics(files[0], {"scored": scored})
    print_metrics(f"{model_path} on {source} data", summary)
    typer.echo("Wrote " + ", ".join(str(f) for f in files))


def _benchmark_report(
    trained: TrainedModel,
    model_path: Path,
    bench: Benchmark,
    root: Path | None,
    washout: int | None,
    out: Path,
) -> None:
    """Score every test set of ``bench`` as the benchmark does; a report folder per test set.

    Each test record is simulated whole from the zero state; the RMSE (`Benchmark.rmse`) is
    in the benchmark's unit, after its window. ``out/metrics.json`` holds them all; the usual
    metrics and plots (washout: ``washout``, default the window) go to ``out/<test set>/``.
    """
    washout = bench.window if washout is None else washout
    rmse, files = {}, []
    for test, data in bench.test.items():
        y_hat = predict(trained, data)
        rmse[test] = bench.rmse(test, y_hat).tolist()
        files += write_report(trained, data, out / test, washout=washout, y_hat=y_hat)[1]
    metrics = {
        "scored": {
            "source": "benchmark",
            "name": bench.name,
            "root": None if root is None else str(root.resolve()),
            "model": str(model_path.resolve()),
        },
        "benchmark": {
            "rmse": rmse,
            "unit": bench.unit,
            "window": bench.window,
            "output_names": list(trained.output_names),
            "reference": bench.reference,
        },
    }
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    typer.echo(f"{model_path} on the {bench.name} benchmark (RMSE after its {bench.window}-step "
               f"window, in {bench.unit}):")  # fmt: skip
    for test, values in rmse.items():
        typer.echo(f"  {test:>24s}: " + ", ".join(f"{v:.4g}" for v in values))
    typer.echo("Wrote " + ", ".join(str(f) for f in [path, *files]))
