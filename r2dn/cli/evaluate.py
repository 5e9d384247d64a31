"""``r2dn evaluate``: score a saved model on a dataset; write the metrics and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from r2dn.cli import data as data_sources
from r2dn.cli.common import (
    CommandError,
    DataOpt,
    F16RootOpt,
    InputsOpt,
    ModelPathArg,
    OutputsOpt,
    WashoutOpt,
    annotate_metrics,
    names,
    print_metrics,
    user_errors,
)
from r2dn.io import load_model
from r2dn.training import write_report


@user_errors
def command(
    model_path: ModelPathArg,
    data: DataOpt = None,
    f16_root: F16RootOpt = None,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="CSV file of test data (all of it is used).", show_default=False
        ),
    ] = None,
    inputs: InputsOpt = None,
    outputs: OutputsOpt = None,
    dt: Annotated[
        float | None,
        typer.Option(
            help="Sampling time of the CSV in seconds (default: the model's).", show_default=False
        ),
    ] = None,
    washout: WashoutOpt = 100,
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
    source = data_sources.source(data, csv_path)
    name = data_sources.name(source, csv_path)
    out = model_path.parent / f"evaluation-{name}" if out is None else out
    if (out / "metrics.json").exists() and not overwrite:
        raise CommandError(
            f"{out} already holds an evaluation; replace it with --overwrite or choose another "
            "--out"
        )
    trained = load_model(model_path)
    dataset = data_sources.evaluation_data(
        trained, source, f16_root, csv_path, names(inputs, "inputs"), names(outputs, "outputs"), dt
    )
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
    annotate_metrics(files[0], {"scored": scored})
    print_metrics(f"{model_path} on {source} data", summary)
    typer.echo("Wrote " + ", ".join(str(f) for f in files))
