"""§1 of the paper: identify the F-16 ground vibration test with a contracting REN and R2DN.

Trains on levels 1, 3, 5, 7 (one batch of 4) by truncated BPTT (`r2dn.training.fit`), all
data z-scored with the level-4 statistics; tests by free simulation from the zero state over
levels 2, 4, 6 with a 100-step washout (NRMSE over all outputs, normalised units).

    python -m experiments.f16 --out runs/f16            # the paper's protocol
    python -m experiments.f16 --quick --out runs/f16    # minutes on a laptop

``--nx``, ``--lti`` and ``--rank`` change the R2DN's state size and LTI part (e.g. ``--lti dplr
--rank 8 --nx 1024``, the structured study of docs/results.md); ``--train-steps`` and
``--test-steps`` keep the first samples of each training and test record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NamedTuple

import jax.numpy as jnp
import numpy as np
import typer

from experiments import common
from r2dn.data import Normalizer, SequenceData, load_f16
from r2dn.metrics import nrmse
from r2dn.registry import ModelSpec
from r2dn.training import EpochReport, FitResult, TrainConfig, fit, full_precision

DEFAULT_ROOT = common.REPO.parent / "shared" / "data" / "f16gvt"
WASHOUT = 100
#: Steps of the first test record kept in the result, for the prediction figure.
SHOWN = 1_000


@dataclass(frozen=True)
class Settings:
    """Model sizes and training protocol; ``None`` steps = the whole records."""

    epochs: int
    seeds: tuple[int, ...]
    nx: int = 75
    ren_nv: int = 150
    r2dn_nv: int = 75
    hidden: tuple[int, ...] = (87, 87, 87)
    segment_length: int = 256
    train_steps: int | None = None
    test_steps: int | None = None
    lr: float = 1e-3
    decay_every: int = 20
    lti: str = "dense"
    rank: int | None = None


PRESETS = {
    "paper": Settings(epochs=70, seeds=tuple(range(10))),
    "quick": Settings(epochs=3, seeds=(0,), train_steps=4_096, test_steps=4_096),
    "tiny": Settings(
        epochs=2,
        seeds=(0,),
        nx=3,
        ren_nv=6,
        r2dn_nv=4,
        hidden=(8,),
        segment_length=64,
        train_steps=256,
        test_steps=200,
    ),
}


def spec(name: str, s: Settings) -> ModelSpec:
    """The paper's contracting REN or R2DN (relu, long-memory initialisation)."""
    sizes = dict(nu=2, nx=s.nx, ny=3, init="long_memory", activation="relu")
    if name == "ren":
        return ModelSpec("contracting-ren", sizes | dict(nv=s.ren_nv))
    r2dn = dict(nv=s.r2dn_nv, hidden=s.hidden, lti=s.lti, rank=s.rank)
    return ModelSpec("contracting-r2dn", sizes | r2dn)


def head(data: SequenceData, steps: int | None) -> SequenceData:
    """The first ``steps`` samples of every record (all of them if ``None``)."""
    if steps is None:
        return data
    return dataclasses.replace(data, u=data.u[:, :steps], y=data.y[:, :steps])


def load(root: Path) -> tuple[SequenceData, SequenceData, Normalizer]:
    """The F-16 training and validation records and the level-4 z-score, or a clear error."""
    if not root.is_dir():
        raise SystemExit(
            f"F-16 data folder {root} not found. Pass --f16-root pointing at the folder holding "
            "F16Data_FullMSine_Level*.csv (the nonlinearbenchmark.org F-16 GVT files)."
        )
    return load_f16(root)


class Trial(NamedTuple):
    """One model trained and tested by this module's protocol."""

    result: FitResult
    nrmse: float  # over the three validation records and all outputs, after the washout
    test: SequenceData  # the validation records, normalised
    y_hat: np.ndarray  # the free simulation of ``test`` (records, steps, outputs)

    def write(
        self, out: Path, experiment: str, name: str, seed: int, s: Settings, extra: dict
    ) -> Path:
        """The trial's record (`common.write_result`): its losses, epoch times and NRMSE."""
        history = self.result.state.history
        return common.write_result(
            out,
            experiment,
            name,
            seed,
            model=self.result.trained.model,
            settings=s,
            train_loss=history["train"],
            epoch_seconds=history["seconds"],
            test={"metric": "nrmse", "value": self.nrmse},
            extra=extra,
        )


def train_config(s: Settings, seed: int) -> TrainConfig:
    """The paper's training settings with the protocol's epochs, segments and learning rate."""
    return TrainConfig(
        epochs=s.epochs,
        segment_length=s.segment_length,
        lr=s.lr,
        decay_every=s.decay_every,
        washout=WASHOUT,
        seed=seed,
    )


def fit_and_test(
    model: ModelSpec,
    config: TrainConfig,
    data: tuple[SequenceData, SequenceData, Normalizer],
    *,
    callbacks: Sequence[Callable[[EpochReport], None]] = (),
    progress: bool = True,
) -> Trial:
    """Train ``model`` on the training records, then simulate it freely over the test records.

    ``data`` is ``(train, test, normalizer)`` as `load` returns it (or shortened by `head`).
    """
    train, test, normalizer = data
    result = fit(
        model, train, None, config, normalizer=normalizer, callbacks=callbacks, progress=progress
    )
    trained = result.trained.model
    scaled = normalizer.apply(test)
    with full_precision():
        _, y_hat = trained.simulate(
            trained.initial_state(scaled.batch), jnp.asarray(scaled.u, trained.dtype)
        )
    y_hat = np.asarray(y_hat)
    error = float(nrmse(scaled.y, y_hat, washout=WASHOUT, per_channel=False))
    return Trial(result, error, scaled, y_hat)


def run(name: str, seed: int, s: Settings, data, out: Path) -> Path:
    trial = fit_and_test(spec(name, s), train_config(s, seed), data)
    shown = slice(WASHOUT, WASHOUT + SHOWN)
    prediction = {
        "channel": trial.test.output_names[0],
        "y": trial.test.y[0, shown, 0].tolist(),
        "y_hat": trial.y_hat[0, shown, 0].tolist(),
    }
    return trial.write(out, "f16", name, seed, s, {"prediction": prediction})


#: Options that override the preset's `Settings` field of the same name (None: the preset's).
OVERRIDES = {
    "nx": Annotated[int | None, typer.Option(help="state size (default: the preset's)")],
    "lti": Annotated[str | None, typer.Option(help="the R2DN's LTI part: dense or dplr")],
    "rank": Annotated[int | None, typer.Option(help="rank of a DPLR LTI part")],
    "train_steps": Annotated[
        int | None, typer.Option(help="first samples of each training record")
    ],
    "test_steps": Annotated[int | None, typer.Option(help="first samples of each test record")],
}


def main(argv: list[str] | None = None) -> list[Path]:
    root = Annotated[Path, typer.Option(help="folder of the CSVs")]
    extra = {"f16_root": (root, DEFAULT_ROOT)} | {n: (a, None) for n, a in OVERRIDES.items()}
    args = common.parse_options(argv, __doc__.splitlines()[0], **extra)
    s = common.protocol(args, PRESETS)
    chosen = {name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None}
    s = dataclasses.replace(s, **chosen)
    train, test, normalizer = load(args.f16_root)
    data = (head(train, s.train_steps), head(test, s.test_steps), normalizer)
    return [run(name, seed, s, data, args.out) for name in args.models for seed in s.seeds]


if __name__ == "__main__":
    main()
