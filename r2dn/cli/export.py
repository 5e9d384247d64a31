"""``r2dn export``: write a saved model's step as standalone C99 or NumPy code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from r2dn.cli.common import CommandError, ModelPathArg, user_errors
from r2dn.export import DTYPES, TARGETS
from r2dn.export.arrays import check_name
from r2dn.io import load_model

Target = Literal[tuple(TARGETS)]  # type: ignore[valid-type]
Dtype = Literal[DTYPES]  # type: ignore[valid-type]


@user_errors
def command(
    model_path: ModelPathArg,
    to: Annotated[
        Target,
        typer.Option(
            help="What to write: 'c' (NAME.h and NAME.c, C99 with only libm) or 'numpy' "
            "(NAME.py and NAME.npz, needing only NumPy)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the files to (created if needed).")],
    dtype: Annotated[
        Dtype | None,
        typer.Option(
            help="Floating-point type of the exported step (C float or double). Default: the "
            "model's own.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Name of the files and prefix of the C functions (NAME_step, NAME_reset). "
            "Default: the model file's name, e.g. 'model' for model.r2dn.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export a saved model's step (physical units in and out) to run without JAX."""
    name = name or "".join(c if c.isalnum() else "_" for c in model_path.stem)
    check_name(name)
    writable_folder(out)
    trained = load_model(model_path)
    paths = TARGETS[to](trained, out, name=name, dtype=dtype)
    typer.echo(f"{model_path}: {trained.spec.kind} {trained.spec.kwargs}")
    typer.echo(f"Wrote {', '.join(str(p) for p in paths)}")


def writable_folder(out: Path) -> None:
    """Create ``out`` if needed; a `CommandError` if it is a file or cannot be written."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; give a folder to write the exported files to")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create the folder --out {out} ({error.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write to the folder --out {out} (permission denied)")
