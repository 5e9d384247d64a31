"""The ``r2dn`` command: fit, evaluate, simulate and certify models from the shell.

r2dn fit                          # a Lipschitz R2DN on the embedded cascaded-tanks data
r2dn evaluate runs/fit/model.r2dn
r2dn simulate runs/fit/model.r2dn --csv inputs.csv --out outputs.csv
r2dn certify runs/fit/model.r2dn
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import inspect
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import jax
import numpy as np
import typer

from r2dn._files import atomic_write
from r2dn.data import Normalizer, SequenceData, load_cascaded_tanks, load_csv, load_f16
from r2dn.io import FileFormatError, TrainedModel, load_model, save_model
from r2dn.registry import MODELS, ModelSpec
from r2dn.training import (
    CHECKPOINT,
    Check,
    TrainConfig,
    TrainingDiverged,
    certify,
    evaluate,
    fit,
    write_report,
)
from r2dn.training.evaluate import predict

app = typer.Typer(
    help="Identify, evaluate and certify contracting, robust recurrent models (R2DN, REN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MODEL_FILE = "model.r2dn"
DataSource = Literal["cascaded-tanks", "f16", "csv"]
ModelKind = Literal[tuple(MODELS)]  # type: ignore[valid-type]

# Options shared by several commands.
DataOpt = Annotated[
    DataSource | None,
    typer.Option(
        help="Data: the embedded cascaded-tanks benchmark, the F-16 ground vibration test "
        "(--f16-root) or a CSV file (--csv). Default: csv if --csv is given, else cascaded-tanks.",
        show_default=False,
    ),
]
F16RootOpt = Annotated[
    Path | None,
    typer.Option(
        help="Folder holding the F-16 benchmark CSVs (F16Data_FullMSine_Level*.csv). Default: "
        "the r2dn cache ($R2DN_CACHE or ~/.cache/r2dn), downloading the benchmark if needed.",
        show_default=False,
    ),
]
CsvOpt = Annotated[
    Path | None,
    typer.Option(help="CSV file with a header row of column names.", show_default=False),
]
InputsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated input column names of the CSV, e.g. 'u1,u2' (default for a saved "
        "model: the names it was trained with).",
        show_default=False,
    ),
]
OutputsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated output column names of the CSV, e.g. 'y' (default for a saved "
        "model: the names it was trained with).",
        show_default=False,
    ),
]
DtOpt = Annotated[
    float | None,
    typer.Option(help="Sampling time of the CSV data in seconds.", show_default=False),
]
WashoutOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Initial steps of each record left out of validation and of every metric (the "
        "transient from the model's zero initial state).",
    ),
]
ModelPathArg = Annotated[
    Path, typer.Argument(help="A model file written by 'r2dn fit' (model.r2dn).")
]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def _user_errors(command: Callable) -> Callable:
    """Report bad input as a one-line error instead of a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (CommandError, FileNotFoundError, FileFormatError, ValueError) as error:
            typer.secho(f"Error: {error}", fg="red", err=True)
            raise typer.Exit(2) from None
        except TrainingDiverged as error:
            typer.secho(f"Training diverged: {error}", fg="red", err=True)
            raise typer.Exit(3) from None

    return run


def _names(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise CommandError(f"--{what} needs at least one column name, e.g. --{what} a,b")
    return names


def _source(data: DataSource | None, csv_path: Path | None) -> DataSource:
    if data is None:
        return "csv" if csv_path is not None else "cascaded-tanks"
    if (data == "csv") != (csv_path is not None):
        raise CommandError("--csv PATH and --data csv go together")
    return data


def _read_csv(path: Path, inputs, outputs, dt: float | None) -> SequenceData:
    if inputs is None or outputs is None:
        raise CommandError("CSV data needs --inputs and --outputs (comma-separated column names)")
    if dt is None:
        raise CommandError("CSV data needs --dt, the sampling time in seconds")
    return load_csv(path, inputs, outputs, dt=dt)


def _split_tail(data: SequenceData, fraction: float) -> tuple[SequenceData, SequenceData]:
    """The first ``1 - fraction`` of every record for training, the rest for validation."""
    cut = round(data.length * (1 - fraction))
    if not 0 < cut < data.length:
        raise CommandError(f"--val-fraction {fraction} leaves no data to train or to validate on")

    def part(s: slice) -> SequenceData:
        return dataclasses.replace(data, u=data.u[:, s], y=data.y[:, s])

    return part(slice(0, cut)), part(slice(cut, None))


def _training_data(
    source: DataSource,
    f16_root: Path | None,
    csv_path: Path | None,
    val_csv: Path | None,
    inputs: list[str] | None,
    outputs: list[str] | None,
    dt: float | None,
    val_fraction: float,
) -> tuple[SequenceData, SequenceData, Normalizer | None, dict[str, Any]]:
    """Training and validation data, a normaliser if the source prescribes one, a description."""
    if source == "cascaded-tanks":
        train, validation = load_cascaded_tanks()
        return train, validation, None, {"source": source}
    if source == "f16":
        train, validation, normalizer = load_f16(f16_root)
        root = None if f16_root is None else str(f16_root.resolve())
        return train, validation, normalizer, {"source": source, "root": root}
    data = _read_csv(csv_path, inputs, outputs, dt)
    description = {
        "source": source,
        "csv": str(csv_path.resolve()),
        "inputs": inputs,
        "outputs": outputs,
        "dt": dt,
    }
    if val_csv is not None:
        validation = _read_csv(val_csv, inputs, outputs, dt)
        return data, validation, None, description | {"val_csv": str(val_csv.resolve())}
    train, validation = _split_tail(data, val_fraction)
    return train, validation, None, description | {"val_fraction": val_fraction}


def _model_kwargs(
    kind: str,
    nu: int,
    ny: int,
    nx: int,
    nv: int,
    hidden: str,
    activation: str,
    init: str,
    alpha_bar: float,
    gamma: float | None,
    qsr_file: Path | None,
) -> dict[str, Any]:
    """Constructor arguments of ``kind`` from the command-line options it accepts."""
    accepted = inspect.signature(MODELS[kind]).parameters
    kwargs: dict[str, Any] = dict(
        nu=nu, nx=nx, nv=nv, ny=ny, activation=activation, init=init, alpha_bar=alpha_bar
    )
    if "hidden" in accepted:
        try:
            kwargs["hidden"] = [int(n) for n in hidden.split(",") if n.strip()]
        except ValueError:
            raise CommandError(
                f"--hidden must be comma-separated integers; got {hidden!r}"
            ) from None
    if "gamma" in accepted:
        if gamma is None:
            raise CommandError(f"a {kind} model needs --gamma, its Lipschitz bound")
        kwargs["gamma"] = gamma
    elif gamma is not None:
        raise CommandError(f"--gamma applies to Lipschitz models only, not to {kind}")
    if {"Q", "S", "R"} <= set(accepted):
        if qsr_file is None:
            raise CommandError(f"a {kind} model needs --qsr-file with the matrices Q, S and R")
        kwargs |= _read_qsr(qsr_file)
    elif qsr_file is not None:
        raise CommandError(f"--qsr-file applies to (Q, S, R) models only, not to {kind}")
    return kwargs


def _read_qsr(path: Path) -> dict[str, list]:
    """Q, S, R from a ``.npz`` archive or a JSON object of nested lists."""
    if not path.is_file():
        raise FileNotFoundError(f"no (Q, S, R) file at {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            matrices = {key: archive[key] for key in archive.files}
    else:
        try:
            matrices = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise CommandError(f"{path} is neither .npz nor valid JSON: {error}") from None
    missing = [key for key in "QSR" if key not in matrices]
    if missing:
        raise CommandError(f"{path} lacks the matrices {missing}; it needs Q, S and R")
    return {key: np.asarray(matrices[key], dtype=float).tolist() for key in "QSR"}


def _print_metrics(title: str, summary: dict[str, Any]) -> None:
    typer.echo(f"{title} (washout {summary['washout']} steps):")
    per_channel = summary["per_channel"]
    for i, name in enumerate(summary["output_names"]):
        typer.echo(
            f"  {name:>16s}: RMSE {per_channel['rmse'][i]:.4g}   NRMSE "
            f"{per_channel['nrmse'][i]:.4g}   fit {per_channel['fit_percent'][i]:.1f} %"
        )


def _print_checks(checks: list[Check]) -> bool:
    typer.echo("Certificate checks:")
    for check in checks:
        verdict = typer.style(
            "PASS" if check.passed else "FAIL", fg="green" if check.passed else "red"
        )
        typer.echo(f"  {verdict}  {check.name}: {check.value:.4g} (needs {check.requirement})")
    return all(check.passed for check in checks)


@app.command("fit")
@_user_errors
def fit_command(
    data: DataOpt = None,
    f16_root: F16RootOpt = None,
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
        typer.Option(min=0, max=1, help="Fraction at the end of --csv held out for validation."),
    ] = 0.25,
    inputs: InputsOpt = None,
    outputs: OutputsOpt = None,
    dt: DtOpt = None,
    model: Annotated[ModelKind, typer.Option(help="Model kind.")] = "lipschitz-r2dn",
    nx: Annotated[int, typer.Option(min=1, help="Number of states.")] = 16,
    nv: Annotated[
        int, typer.Option(min=1, help="Width of the nonlinear channel (φ's input).")
    ] = 16,
    hidden: Annotated[
        str, typer.Option(help="Hidden widths of the R2DN's network φ, comma-separated.")
    ] = "32,32",
    activation: Annotated[str, typer.Option(help="Activation of φ (relu, tanh, ...).")] = "relu",
    init: Annotated[
        Literal["long_memory", "random"],
        typer.Option(help="Initialisation: long_memory (A ≈ I, the paper's) or random."),
    ] = "long_memory",
    alpha_bar: Annotated[
        float, typer.Option(min=0, max=1, help="Contraction rate ᾱ in (0, 1].")
    ] = 1.0,
    gamma: Annotated[
        float | None,
        typer.Option(help="Lipschitz bound γ (required for Lipschitz models).", show_default=False),
    ] = None,
    qsr_file: Annotated[
        Path | None,
        typer.Option(
            help="Supply rate (Q, S, R) for robust models: a .npz or JSON file with matrices Q "
            "(ny×ny), S (nu×ny) and R (nu×nu).",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training data.")] = 100,
    lr: Annotated[float, typer.Option(help="Initial learning rate.")] = 1e-3,
    decay_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Multiply the learning rate by --decay-rate every this many epochs.",
            show_default=False,
        ),
    ] = None,
    decay_rate: Annotated[float, typer.Option(help="Factor of each learning-rate decay.")] = 0.1,
    optimizer: Annotated[
        str, typer.Option(help="Optax optimiser by name (adam, adamw, sgd, lion, ...).")
    ] = "adam",
    clip: Annotated[
        float | None,
        typer.Option(help="Gradient clipping threshold; 0 disables clipping."),
    ] = 10.0,
    clip_mode: Annotated[
        Literal["elementwise", "global_norm"],
        typer.Option(help="Clip each gradient entry (optax.clip) or the global norm."),
    ] = "elementwise",
    segment_length: Annotated[
        int, typer.Option(min=1, help="Steps per segment of truncated backpropagation.")
    ] = 256,
    validate_every: Annotated[
        int, typer.Option(min=1, help="Validate every this many epochs.")
    ] = 1,
    washout: WashoutOpt = 100,
    patience: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Stop early after this many epochs without validation improvement.",
            show_default=False,
        ),
    ] = None,
    restore_best: Annotated[
        bool, typer.Option(help="Keep the model of the best validation loss, not the last.")
    ] = False,
    seed: SeedOpt = 0,
    devices: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Devices to split the batch of records over. Default: as many as "
            "divide the batch.",
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
) -> None:
    """Train a model on measured input/output data; write it with its metrics and plots."""
    if resume and overwrite:
        raise CommandError("--resume and --overwrite exclude each other")
    if not resume and not overwrite and (out / CHECKPOINT).exists():
        raise CommandError(
            f"{out} already holds a run; continue it with --resume, replace it with "
            "--overwrite, or choose another --out"
        )
    source = _source(data, csv_path)
    names = _names(inputs, "inputs"), _names(outputs, "outputs")
    train, validation, normalizer, description = _training_data(
        source, f16_root, csv_path, val_csv, *names, dt, val_fraction
    )
    kwargs = _model_kwargs(
        model, train.nu, train.ny, nx, nv, hidden, activation, init, alpha_bar, gamma, qsr_file
    )
    spec = ModelSpec(model, kwargs)
    config = TrainConfig(
        epochs=epochs,
        segment_length=segment_length,
        lr=lr,
        decay_every=decay_every,
        decay_rate=decay_rate,
        optimizer=optimizer,
        clip=clip or None,
        clip_mode=clip_mode,
        validate_every=validate_every,
        washout=washout,
        patience=patience,
        restore_best=restore_best,
        seed=seed,
        devices=devices,
    )
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
    except KeyboardInterrupt:
        if (out / CHECKPOINT).is_file():
            advice = (
                f"the last completed epoch is checkpointed in {out / CHECKPOINT}; rerun the same "
                "command with --resume to continue"
            )
        else:
            advice = "no epoch was completed, so nothing was saved; rerun the command to start"
        typer.secho(f"Interrupted: {advice}.", fg="yellow", err=True)
        raise typer.Exit(130) from None
    history = result.state.history
    # The model first: a full disk must not cost the model for the sake of its plots.
    y_hat = predict(result.trained, validation)
    summary = evaluate(result.trained, validation, config.washout, y_hat=y_hat)
    trained = dataclasses.replace(result.trained, metrics={"validation": summary})
    model_file = save_model(out / MODEL_FILE, trained)
    _, files = write_report(
        trained, validation, out, washout=config.washout, history=history, y_hat=y_hat
    )
    files.insert(0, model_file)
    seconds = history["seconds"]
    typer.echo(
        f"Trained {result.state.epoch} epochs in {sum(seconds):.1f} s "
        f"({np.mean(seconds[1:] or seconds):.3g} s per epoch after the first, which compiles)."
    )
    if result.state.stop_reason:
        typer.echo(f"Stopped: {result.state.stop_reason}.")
    _print_metrics("Validation", summary)
    typer.echo("Wrote " + ", ".join(str(f) for f in files))
    if check and not _print_checks(certify(trained.model, key=jax.random.key(seed))):
        raise typer.Exit(1)


def _evaluation_data(
    trained: TrainedModel,
    source: DataSource,
    f16_root: Path | None,
    csv_path: Path | None,
    inputs: list[str] | None,
    outputs: list[str] | None,
    dt: float | None,
) -> SequenceData:
    if source == "cascaded-tanks":
        return load_cascaded_tanks()[1]
    if source == "f16":
        return load_f16(f16_root)[1]
    return _read_csv(
        csv_path,
        inputs or list(trained.input_names),
        outputs or list(trained.output_names),
        trained.dt if dt is None else dt,
    )


@app.command("evaluate")
@_user_errors
def evaluate_command(
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
            help="Folder for metrics.json and the prediction plots (default: 'evaluation' next "
            "to the model file).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier evaluation in the --out folder.")
    ] = False,
) -> None:
    """Evaluate a saved model on a dataset (its validation part for the benchmarks)."""
    out = model_path.parent / "evaluation" if out is None else out
    if (out / "metrics.json").exists() and not overwrite:
        raise CommandError(
            f"{out} already holds an evaluation; replace it with --overwrite or choose another "
            "--out"
        )
    trained = load_model(model_path)
    source = _source(data, csv_path)
    names = _names(inputs, "inputs"), _names(outputs, "outputs")
    dataset = _evaluation_data(trained, source, f16_root, csv_path, *names, dt)
    summary, files = write_report(trained, dataset, out, washout=washout)
    _print_metrics(f"{model_path} on {source} data", summary)
    typer.echo("Wrote " + ", ".join(str(f) for f in files))


@app.command("simulate")
@_user_errors
def simulate_command(
    model_path: ModelPathArg,
    csv_path: Annotated[
        Path, typer.Option("--csv", help="CSV file of inputs in physical units, header row first.")
    ],
    out: Annotated[Path, typer.Option(help="CSV file to write the simulated outputs to.")],
    inputs: InputsOpt = None,
) -> None:
    """Simulate a saved model from the zero state on inputs read from a CSV file."""
    for name, path in (("model file", model_path), ("input CSV", csv_path)):
        if out.resolve() == path.resolve():
            raise CommandError(f"--out {out} is the {name}; write the outputs to another file")
    trained = load_model(model_path)
    columns = _names(inputs, "inputs") or list(trained.input_names)
    u = _read_columns(csv_path, columns)
    bad = np.argwhere(~np.isfinite(u))
    if len(bad):
        row, col = bad[0]
        raise CommandError(
            f"{csv_path}: {len(bad)} input value(s) are NaN or infinite, the first in column "
            f"{columns[col]!r} on line {row + 2}; a model cannot be simulated through a gap"
        )
    y = trained.predict(u)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(trained.output_names)
    writer.writerows(y.tolist())
    with atomic_write(out) as f:  # a full disk leaves no truncated CSV behind
        f.write(table.getvalue().encode())
    typer.echo(f"Wrote {len(y)} steps of {', '.join(trained.output_names)} to {out}")


def _read_columns(path: Path, columns: list[str]) -> np.ndarray:
    """The named numeric columns of a CSV file with a header row, shape ``(T, len(columns))``."""
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = [name.strip() for name in next(rows, [])]
        missing = [name for name in columns if name not in header]
        if missing:
            raise CommandError(f"{path} has no column(s) {missing}; its columns are {header}")
        index = [header.index(name) for name in columns]
        try:
            values = [[float(row[i]) for i in index] for row in rows if row]
        except (ValueError, IndexError) as error:
            raise CommandError(f"{path}: a row is not numeric or is too short ({error})") from None
    if not values:
        raise CommandError(f"{path} has a header but no data rows")
    return np.asarray(values)


@app.command("certify")
@_user_errors
def certify_command(
    model_path: ModelPathArg,
    seed: SeedOpt = 0,
    search_steps: Annotated[
        int, typer.Option(min=1, help="Gradient-ascent steps of the adversarial gain search.")
    ] = 300,
) -> None:
    """Check a saved model's certificate: the LMI in float64, contraction, and its gain bound.

    Exits with code 1 if any check fails.
    """
    trained = load_model(model_path)
    typer.echo(f"{model_path}: {trained.spec.kind} {trained.spec.kwargs}")
    checks = certify(trained.model, key=jax.random.key(seed), search_steps=search_steps)
    if not _print_checks(checks):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
