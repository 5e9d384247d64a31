"""The command line and result files shared by the paper's experiments (`experiments/*.py`).

Each experiment runs a protocol (the paper's by default, or ``--quick``) for the models and
seeds asked for, and writes one JSON file per (model, seed) with `write_result`; the report
(`experiments/report.py`) reads them back with `load_results`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import platform
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Protocol

import equinox as eqx
import jax
import numpy as np
import optax
import typer

from r2dn.certificates import check_lmi
from r2dn.models import AbstractRecurrentModel
from r2dn.training.engine import Epoch, Schedule, Trainee, run_epochs

REPO = Path(__file__).resolve().parent.parent
MODELS = ("ren", "r2dn")


class Preset(Protocol):
    """What every experiment's protocol has: the number of epochs and the seeds."""

    epochs: int
    seeds: tuple[int, ...]


def parse_options(
    argv: Sequence[str] | None,
    description: str,
    *,
    models: Sequence[str] = MODELS,
    **extra: tuple[Any, Any],
) -> SimpleNamespace:
    """Parse the command line with typer: the options of every experiment, plus ``extra``.

    ``--models`` chooses among ``models`` (all by default). ``extra`` maps a parameter name to
    ``(Annotated[type, typer.Option(...)], default)``.
    Returns the values by name (``quick``, ``tiny``, ``seeds``, ``epochs``, ``models``,
    ``out`` and the extras). A bad option prints typer's message and exits with status 2.
    """
    values: dict[str, Any] = {}

    def command(**kwargs: Any) -> None:
        values.update(kwargs)

    options = [("out", Out, inspect.Parameter.empty), ("quick", Quick, False),
               ("tiny", Tiny, False), ("seeds", Seeds, None), ("epochs", Epochs, None),
               ("models", models_option(tuple(models)), ",".join(models))]  # fmt: skip
    options += [(name, annotation, default) for name, (annotation, default) in extra.items()]
    command.__signature__ = inspect.Signature(
        [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for n, a, d in options
        ]  # fmt: skip
    )
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(help=description)(command)
    invoke(app, argv)
    if not values:  # --help was shown
        raise SystemExit(0)
    if values["quick"] and values["tiny"]:
        raise SystemExit("--quick and --tiny exclude each other; choose one")
    return SimpleNamespace(**values)


def invoke(app: typer.Typer, argv: Sequence[str] | None) -> None:
    """Run a one-command typer ``app`` on ``argv`` (default: the command line) and return.

    Unlike ``app()``, success does not exit the interpreter (experiments are also called from
    Python); a usage error prints typer's message and exits with status 2.
    """
    try:
        app(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as stop:
        if stop.code:
            raise


def protocol(args: SimpleNamespace, presets: Mapping[str, Any]) -> Any:
    """The preset the flags name ("paper", "quick" or "tiny"), with ``--epochs``/``--seeds``."""
    name = "tiny" if args.tiny else "quick" if args.quick else "paper"
    chosen = presets[name]
    if args.epochs is not None:
        chosen = dataclasses.replace(chosen, epochs=args.epochs)
    if args.seeds is not None:
        chosen = dataclasses.replace(chosen, seeds=tuple(args.seeds))
    return chosen


def parse_seeds(text: str | list[int]) -> list[int]:
    """``"0-9"`` → 0..9; ``"0,3,5"`` → [0, 3, 5]."""
    if isinstance(text, list):  # already parsed
        return text
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise typer.BadParameter(
            f"seeds must be a range like '0-9' or a list like '0,3,5' of non-negative integers; "
            f"got {text!r}"
        )
    return seeds


def parse_models(text: str | tuple[str, ...], choices: Sequence[str] = MODELS) -> tuple[str, ...]:
    """Comma-separated model names, each one of ``choices``."""
    if isinstance(text, tuple):  # already parsed
        return text
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in choices]
    if not names or unknown:
        raise typer.BadParameter(
            f"models must be a comma-separated list from {', '.join(choices)}; got {text!r}"
        )
    return names


Out = Annotated[Path, typer.Option(help="folder for the JSON results")]
Quick = Annotated[
    bool,
    typer.Option(
        help="few epochs, one seed, reduced data: a smoke run of minutes, not a reproduction"
    ),
]
Tiny = Annotated[bool, typer.Option(help="tiny sizes, for the tests only")]
# The annotations name what is typed; `parser` turns it into a list or tuple.
Seeds = Annotated[
    str | None,
    typer.Option(parser=parse_seeds, help="e.g. '0-9' or '0,3,5' (default: protocol)"),
]
Epochs = Annotated[int | None, typer.Option(min=1, help="override the protocol's number of epochs")]


def models_option(choices: tuple[str, ...]) -> Any:
    """The ``--models`` option of an experiment whose models are ``choices``."""
    return Annotated[
        str,
        typer.Option(
            parser=functools.partial(parse_models, choices=choices),
            help=f"comma-separated, from {','.join(choices)!r}",
        ),
    ]


def train(
    model: AbstractRecurrentModel,
    optimizer: optax.GradientTransformation,
    epoch: Callable[[int], Epoch],
    *,
    epochs: int,
    steps: int,
    unit: str,
) -> tuple[AbstractRecurrentModel, list[float], list[float]]:
    """Train ``model`` through the library's engine; returns it, epoch losses and seconds.

    ``epoch(e)`` is the work of epoch ``e`` (`r2dn.training.engine.Epoch`): the experiment's
    loss and its batches. The engine adds the NaN guard, SIGINT/SIGTERM handling and progress.
    """
    trainee = Trainee(model, optimizer.init(eqx.filter(model, eqx.is_inexact_array)))
    run_epochs(trainee, optimizer, epoch, Schedule(epochs=epochs, steps=steps, unit=unit))
    history = trainee.state.history
    return trainee.model, history["train"], history["seconds"]


def parameter_count(model: AbstractRecurrentModel) -> int:
    """The number of trainable scalars."""
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return int(sum(leaf.size for leaf in leaves))


def seconds_per_epoch(seconds: Sequence[float]) -> float:
    """Mean wall-clock time of epochs 2..N (epoch 1 holds the compilation); epoch 1 if alone."""
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))


def certificate(model: AbstractRecurrentModel) -> dict[str, Any]:
    """`check_lmi` of a trained model, in float64: largest LMI eigenvalue, smallest of P."""
    report = check_lmi(model)
    return {
        "max_eigenvalue": report.max_eigenvalue,
        "min_eigenvalue_P": report.min_eigenvalue_P,
        "holds": report.holds,
    }


def write_result(
    out: Path,
    experiment: str,
    model_name: str,
    seed: int,
    *,
    model: AbstractRecurrentModel,
    settings: Any,
    train_loss: Sequence[float],
    epoch_seconds: Sequence[float],
    test: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<out>/<experiment>_<model>_seed<seed>.json`` with the run's record and checks.

    Fields: the settings, per-epoch training loss and wall-clock seconds, `seconds_per_epoch`,
    the test metric(s), `parameter_count`, the `certificate` check and the hardware.
    """
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "experiment": experiment,
        "model": model_name,
        "seed": seed,
        "settings": dataclasses.asdict(settings),
        "parameters": parameter_count(model),
        "train_loss": [float(v) for v in train_loss],
        "epoch_seconds": [float(v) for v in epoch_seconds],
        "seconds_per_epoch": seconds_per_epoch(epoch_seconds),
        "test": dict(test),
        "certificate": certificate(model),
        "hardware": {
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "processor": platform.processor() or platform.machine(),
        },
    } | dict(extra or {})
    path = out / f"{experiment}_{model_name}_seed{seed}.json"
    path.write_text(to_json(record))
    return path


def to_json(record: Mapping[str, Any]) -> str:
    """Indented JSON with lists of numbers kept on one line (the curves stay compact)."""
    text = json.dumps(record, indent=1)
    return re.sub(r"\[[-+0-9.eE,\s]*\]", lambda m: re.sub(r"\s+", "", m.group()), text) + "\n"


def load_results(directory: Path) -> list[dict[str, Any]]:
    """Every result JSON under ``directory``, sorted by path.

    Each record gains ``run_set``: the folder holding it, relative to ``directory`` (one
    folder per invocation of an experiment, so runs of different protocols stay apart).
    """
    directory = Path(directory)
    return [
        json.loads(p.read_text()) | {"run_set": str(p.parent.relative_to(directory))}
        for p in sorted(directory.rglob("*_seed*.json"))
    ]
