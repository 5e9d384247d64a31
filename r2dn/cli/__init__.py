"""The ``r2dn`` command: fit, evaluate, simulate and certify models from the shell.

r2dn fit --gamma 5                # a Lipschitz R2DN on the embedded cascaded-tanks data
r2dn evaluate runs/fit/model.r2dn
r2dn simulate runs/fit/model.r2dn --csv inputs.csv --out outputs.csv
r2dn certify runs/fit/model.r2dn
r2dn export runs/fit/model.r2dn --to c --out deploy

Each command is a module of this package with a function ``command`` (typer reads its
options from the signature) and one line in `COMMANDS`.
The options shared by several commands are in `r2dn.cli.common`; options generated from
settings and constructors in `r2dn.cli.options`.
"""

from collections.abc import Callable

import typer

from r2dn._threads import limit_blas_threads
from r2dn.cli import certify, evaluate, export, fit, simulate

#: Command name → the function that runs it, in the order ``r2dn --help`` lists them.
COMMANDS: dict[str, Callable[..., None]] = {
    "fit": fit.command,
    "evaluate": evaluate.command,
    "simulate": simulate.command,
    "certify": certify.command,
    "export": export.command,
}

app = typer.Typer(
    help="Identify, evaluate, certify and export contracting, robust recurrent models (R2DN, REN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


@app.callback()
def _before_every_command() -> None:  # one BLAS thread: see r2dn._threads
    limit_blas_threads()


__all__ = ["COMMANDS", "app"]
