"""``r2dn simulate``: run a saved model on inputs from a CSV file; write the outputs as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from r2dn._files import atomic_write
from r2dn.cli.common import CommandError, InputsOpt, ModelPathArg, names, user_errors
from r2dn.data import load_inputs
from r2dn.io import load_model


@user_errors
def command(
    model_path: ModelPathArg,
    csv_path: Annotated[
        Path, typer.Option("--csv", help="CSV file of inputs in physical units, header row first.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="CSV file to write to: columns step, time (in seconds) and "
            "<output>_predicted for each output of the model."
        ),
    ],
    inputs: InputsOpt = None,
) -> None:
    """Simulate a saved model from the zero state on inputs read from a CSV file."""
    for name, path in (("model file", model_path), ("input CSV", csv_path)):
        if out.resolve() == path.resolve():
            raise CommandError(f"--out {out} is the {name}; write the outputs to another file")
    trained = load_model(model_path)
    columns = names(inputs, "inputs") or list(trained.input_names)
    u = load_inputs(csv_path, columns)
    y = np.asarray(trained.predict(u))
    steps = np.arange(len(y))
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["step", "time", *(f"{name}_predicted" for name in trained.output_names)])
    writer.writerows(
        [int(k), repr(float(k * trained.dt)), *row]
        for k, row in zip(steps, y.tolist(), strict=True)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as f:  # a full disk leaves no truncated CSV behind
        f.write(table.getvalue().encode())
    typer.echo(f"Wrote {len(y)} steps of {', '.join(trained.output_names)} to {out}")
