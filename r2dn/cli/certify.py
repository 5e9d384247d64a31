"""``r2dn certify``: check a saved model's certificate."""

from __future__ import annotations

from typing import Annotated

import jax
import typer

from r2dn.cli.common import ModelPathArg, SeedOpt, print_checks, user_errors
from r2dn.io import load_model
from r2dn.training import certify


@user_errors
def command(
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
    if not print_checks(checks):
        raise typer.Exit(1)
