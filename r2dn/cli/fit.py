"""``r2dn fit``: train a model on measured data; write it with its metrics and plots.

Its training options are `r2dn.training.TrainConfig`'s fields and its model options the
model constructors' arguments (`r2dn.cli.model`), generated with their defaults and help.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import jax
import numpy as np
import typer

from r2dn.cli import data as data_sources
from r2dn.cli.common import (
    MODEL_FILE,
    BenchmarkOpt,
    BenchmarkRootOpt,
    CommandError,
    DataOpt,
    DtOpt,
    F16RootOpt,
    InputsOpt,
    OutputsOpt,
    RowsOpt,
    annotate_metrics,
    names,
    print_checks,
    print_metrics,
    user_errors,
)
from r2dn.cli.model import gamma_for_normalized, model_kwargs, model_options
from r2dn.cli.options import dataclass_options, given_on_command_line, with_options
from r2dn.data import Normalizer
from r2dn.io import save_model
from r2dn.registry import MODELS, ModelSpec
from r2dn.training import CHECKPOINT, TrainConfig, certify, evaluate, fit, write_report
from r2dn.training.evaluate import predict

ModelKind = Literal[tuple(MODELS)]  # type: ignore[valid-type]
TRAINING = dataclass_options(TrainConfig)
MODEL = model_options()


@with_options(TRAINING, MODEL)
@user_errors
def command(
    ctx: typer.Context,
    data: DataOpt = None,
    f16_root: F16RootOpt = None,
    benchmark: BenchmarkOpt = None,
    benchmark_root: BenchmarkRootOpt = None,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="CSV file of training data (header row of column names).",
            show_default=False,
        ),
    ] = None,
    val_csv: Annotated[
        Path | None,
        typer.Option(
            help="CSV file of validation data, same columns as --csv. Default: the last "
            "--val-fraction of --csv.",
            show_default=False,
        ),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            help="Fraction at the end of --csv (or of the --benchmark's training records) held "
            "out for validation, in [0, 1); 0 trains on all of it without validation."
        ),
    ] = 0.25,
    inputs: InputsOpt = None,
    outputs: OutputsOpt = None,
    dt: DtOpt = None,
    rows: RowsOpt = None,
    model: Annotated[ModelKind, typer.Option(help="Model kind.")] = "lipschitz-r2dn",
    gamma_physical: Annotated[
        float | None,
        typer.Option(
            help="Lipschitz bound in physical units (instead of --gamma): the model gets "
            "γ = γ_phys · min σ_u / max σ_y, the standard deviations of the normalised signals.",
            show_default=False,
        ),
    ] = None,
    qsr_file: Annotated[
        Path | None,
        typer.Option(
            help="Supply rate (Q, S, R) for robust models: a .npz or JSON file with matrices Q "
            "(ny×ny), S (nu×ny) and R (nu×nu).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Run directory: checkpoint, model.r2dn, metrics.json, plots.")
    ] = Path("runs/fit"),
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the run checkpointed in --out; give the same options as when it "
            "started (only --epochs may change)."
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Start afresh even if --out already holds a run.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    check: Annotated[
        bool, typer.Option("--certify/--no-certify", help="Check the certificate at the end.")
    ] = True,
    **options: Any,
) -> None:
    """Train a model on measured input/output data; write it with its metrics and plots."""
    config = TrainConfig(**{o.name: options[o.name] for o in TRAINING})
    _check_out(out, resume, overwrite)
    source = data_sources.source(data, csv_path, benchmark)
    if rows is not None and source != "csv":
        raise CommandError("--rows applies to --csv data")
    if source is None:
        if val_csv is not None:
            raise CommandError(
                "--val-csv goes with --csv; a --benchmark validates on the last --val-fraction "
                "of its training records"
            )
        bench = data_sources.load_benchmark(benchmark, benchmark_root)
        train, validation, description = data_sources.benchmark_training_data(
            bench, benchmark_root, val_fraction
        )
        normalizer, source = None, benchmark
    else:
        train, validation, normalizer, description = data_sources.training_data(
            source, f16_root, csv_path, val_csv, names(inputs, "inputs"),
            names(outputs, "outputs"), dt, val_fraction, data_sources.parse_rows(rows),
        )  # fmt: skip
    both = set(train.input_names) & set(train.output_names)
    if both:
        typer.secho(
            f"Warning: {sorted(both)} are both inputs and outputs; the model then only learns "
            "to pass them through.",
            fg="yellow",
            err=True,
        )
    normalizer = Normalizer.fit(train) if normalizer is None else normalizer
    values = {o.name: options[o.name] for o in MODEL}
    given = {o.name for o in MODEL if given_on_command_line(ctx, o.name)}
    if gamma_physical is not None:
        if "gamma" in given:
            raise CommandError("give --gamma or --gamma-physical, not both")
        values["gamma"] = gamma_for_normalized(gamma_physical, normalizer)
        given.add("gamma")
        description["gamma_physical"] = gamma_physical
    kwargs = model_kwargs(model, train.nu, train.ny, values, given, qsr_file)
    spec = ModelSpec(model, kwargs)
    typer.echo(
        f"Training a {model} {kwargs} on {source} data: {train.batch} record(s) × "
        f"{train.length} steps, {train.nu} input(s) → {train.ny} output(s)."
    )
    try:
        result = fit(
            spec,
            train,
            validation,
            config,
            normalizer=normalizer,
            run_dir=out,
            resume=resume,
            metadata={"data": description},
            progress=progress,
        )
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (`fit` raises TrainingInterrupted)
        if (out / CHECKPOINT).is_file():
            advice = (
                f"the last completed epoch is checkpointed in {out / CHECKPOINT}; rerun the same "
                "command with --resume"
                + (" instead of --overwrite" if overwrite else "")
                + " to continue"
            )
        else:
            advice = "no epoch was completed, so nothing was saved; rerun the command to start"
        typer.secho(f"Interrupted: {advice}.", fg="yellow", err=True)
        raise typer.Exit(130) from None
    state = result.state
    scored, part = (validation, "validation") if validation is not None else (train, "training")
    # The model first: a full disk must not cost the model for the sake of its plots.
    y_hat = predict(result.trained, scored)
    summary = evaluate(result.trained, scored, config.washout, y_hat=y_hat)
    trained = dataclasses.replace(result.trained, metrics={part: summary})
    model_file = save_model(out / MODEL_FILE, trained)
    _, files = write_report(
        trained, scored, out, washout=config.washout, history=state.history, y_hat=y_hat
    )
    seconds = state.history["seconds"]
    annotate_metrics(
        files[0],
        {
            "scored": part,
            "data": description,
            "model": spec.to_dict(),
            "training": config.to_dict(),
            "epochs": state.epoch,
            "training_seconds": sum(seconds),
            "stop_reason": state.stop_reason,
        },
    )
    files.insert(0, model_file)
    typer.echo(
        f"Trained {state.epoch} epochs in {sum(seconds):.1f} s, validation and checkpoints "
        f"included ({np.mean(seconds[1:] or seconds):.3g} s per epoch after the first, which "
        "compiles)."
    )
    if state.stop_reason:
        typer.echo(f"Stopped: {state.stop_reason}.")
    print_metrics(part.capitalize(), summary)
    typer.echo("Wrote " + ", ".join(str(f) for f in files))
    if check and not print_checks(certify(trained.model, key=jax.random.key(config.seed))):
        raise typer.Exit(1)


def _check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to replace a run unless told, and a run folder that cannot be written."""
    if resume and overwrite:
        raise CommandError("--resume and --overwrite exclude each other")
    if not resume and not overwrite and (out / CHECKPOINT).exists():
        raise CommandError(
            f"{out} already holds a run; continue it with --resume, replace it with "
            "--overwrite, or choose another --out"
        )
    if not resume and not overwrite and (out / MODEL_FILE).exists():
        raise CommandError(
            f"{out} already holds a model ({MODEL_FILE}); replace it with --overwrite or choose "
            "another --out"
        )
    if overwrite:  # an interrupted new run must not leave the old one's files to resume
        for stale in (out / MODEL_FILE, out / CHECKPOINT):
            stale.unlink(missing_ok=True)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create the run folder --out {out}: {error}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write to the run folder --out {out}; choose another --out")
