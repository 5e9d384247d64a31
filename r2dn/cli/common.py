"""What the commands share: user errors, options every data command takes, printing."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from r2dn._files import atomic_write
from r2dn.data import benchmarks
from r2dn.io import FileFormatError
from r2dn.training import Check, TrainingDiverged

MODEL_FILE = "model.r2dn"
DataSource = Literal["cascaded-tanks", "f16", "csv"]

DataOpt = Annotated[
    DataSource | None,
    typer.Option(
        help="Data: the embedded cascaded-tanks benchmark, the F-16 ground vibration test "
        "(--f16-root) or a CSV file (--csv). Default: csv if --csv is given, else cascaded-tanks.",
        show_default=False,
    ),
]
BenchmarkName = Literal[benchmarks.names()]  # type: ignore[valid-type]
BenchmarkOpt = Annotated[
    BenchmarkName | None,
    typer.Option(
        help="A standard benchmark with its official split (instead of --data/--csv): fit "
        "trains on its training records (the last --val-fraction validates); evaluate scores "
        "every test set as the benchmark does (free simulation of each whole record, RMSE after "
        "its initialisation window, in its unit).",
        show_default=False,
    ),
]
BenchmarkRootOpt = Annotated[
    Path | None,
    typer.Option(
        help="Folder holding the --benchmark's files (e.g. the unpacked official archive). "
        "Default: the r2dn cache ($R2DN_CACHE or ~/.cache/r2dn), downloading them if needed.",
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
RowsOpt = Annotated[
    str | None,
    typer.Option(
        help="Data rows of the CSV to use, START:STOP (counted from 0 after the header, STOP "
        "excluded; either may be left out), e.g. 0:100000. Default: all.",
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


def user_errors(command: Callable) -> Callable:
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


def names(text: str | None, what: str) -> list[str] | None:
    """Comma-separated column names, or None if the option was not given."""
    if text is None:
        return None
    found = [name.strip() for name in text.split(",") if name.strip()]
    if not found:
        raise CommandError(f"--{what} needs at least one column name, e.g. --{what} a,b")
    return found


def print_metrics(title: str, summary: Mapping[str, Any]) -> None:
    typer.echo(f"{title} (washout {summary['washout']} steps):")
    per_channel = summary["per_channel"]
    for i, name in enumerate(summary["output_names"]):
        typer.echo(
            f"  {name:>16s}: RMSE {per_channel['rmse'][i]:.4g}   NRMSE "
            f"{per_channel['nrmse'][i]:.4g}   fit {per_channel['fit_percent'][i]:.1f} %"
        )


def print_checks(checks: list[Check]) -> bool:
    """Print each certificate check; whether all passed."""
    typer.echo("Certificate checks:")
    for check in checks:
        verdict = typer.style(
            "PASS" if check.passed else "FAIL", fg="green" if check.passed else "red"
        )
        typer.echo(f"  {verdict}  {check.name}: {check.value:.4g} (needs {check.requirement})")
    return all(check.passed for check in checks)


def annotate_metrics(path: Path, notes: Mapping[str, Any]) -> None:
    """Add ``notes`` (what was scored, with which settings) to the metrics JSON at ``path``."""
    metrics = json.loads(path.read_text()) | dict(notes)
    with atomic_write(path) as f:
        f.write((json.dumps(metrics, indent=2, allow_nan=False) + "\n").encode())
