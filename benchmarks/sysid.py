"""Certified R2DNs and a GRU on the field's identification benchmarks, beside published results.

``python benchmarks/sysid.py [--quick] [--benchmarks silverbox,cascaded-tanks] [--seeds 0,1,2]``

For each benchmark (`r2dn.data.benchmarks`: official split, initialisation window and unit)
and seed, three models are trained by the same code (`r2dn.training.fit`, windowed mode with
the learned initial-state encoder): a Lipschitz R2DN, a contracting R2DN and the unconstrained
GRU of ``experiments/references.py`` with about as many parameters as the Lipschitz R2DN. Each
is scored by free simulation from the zero state over every test record, with the RMSE of
`Benchmark.rmse` (the steps after the benchmark's window, in its unit); the R2DNs' certificates
are checked (`r2dn.certificates.check_lmi`). Training time and hardware are recorded.

The model kept is the one of the best validation loss (free simulation of a held-out part of
the training record, never of a test set). ``--max-minutes`` stops a run after that much
CPU time (of all threads, at an epoch's end; CPU time rather than wall time, so that a run on
a shared machine does the same work) and keeps its best model so far; the JSON says so.

Writes ``benchmarks/results/sysid_<benchmark>[_quick].json`` after every run (a rerun
replaces the runs of the same model and seed) and prints the table of all results there
beside the published numbers (`PUBLISHED`). ``--report`` prints the table without training.
EMPS and coupled electric drives run only when ``--root`` holds their files; F-16 is left
to ``experiments/f16.py``.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as benchmarks/run.py, before NumPy

import dataclasses  # noqa: E402
import datetime  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import typer  # noqa: E402
from jaxtyping import Array, Float, PRNGKeyArray  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: experiments
from experiments import common  # noqa: E402
from experiments.references import GRU, PlainR2DN, count_parameters, width_for  # noqa: E402
from r2dn.certificates import check_lmi  # noqa: E402
from r2dn.data import DownloadError, Normalizer, SequenceData  # noqa: E402
from r2dn.data import benchmarks as bench  # noqa: E402
from r2dn.io import TrainedModel, save_model  # noqa: E402
from r2dn.registry import MODELS, ModelSpec  # noqa: E402
from r2dn.training import TrainConfig, fit  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MODEL_KINDS = ("lipschitz-r2dn", "contracting-r2dn", "reference-gru")
#: Run only when ``--models`` names them; a column of the table when they have runs.
OPTIONAL_KINDS = ("reference-plain-r2dn",)
CERTIFIED = ("lipschitz-r2dn", "contracting-r2dn")


class Reference(eqx.Module):
    """An unconstrained network of ``experiments/references.py`` as a model `fit` trains.

    Built by `reference_gru` and `reference_plain_r2dn`, the kinds "reference-gru" and
    "reference-plain-r2dn" that this script adds to `r2dn.registry.MODELS`.

    >>> model = reference_gru(1, 4, 0, 1, key=jax.random.key(0))
    >>> model.simulate(model.initial_state(2), jnp.zeros((2, 5, 1)))[1].shape
    (2, 5, 1)
    """

    net: GRU | PlainR2DN
    nu: int = eqx.field(static=True)
    ny: int = eqx.field(static=True)

    @property
    def nx(self) -> int:
        return self.net.nx

    @property
    def dtype(self) -> jnp.dtype:
        return jax.tree.leaves(eqx.filter(self.net, eqx.is_inexact_array))[0].dtype

    def initial_state(self, *batch: int) -> Float[Array, "*batch nx"]:
        return jnp.zeros((*batch, self.nx), dtype=self.dtype)

    def simulate(
        self, x0: Float[Array, "B nx"], u: Float[Array, "B T nu"]
    ) -> tuple[Float[Array, "B nx"], Float[Array, "B T ny"]]:
        return self.net.simulate(x0, u)


def reference_gru(
    nu: int, nx: int, nv: int, ny: int, feedthrough=None, *, key: PRNGKeyArray
) -> Reference:
    """A GRU of width ``nx``; ``nv`` and ``feedthrough`` (which every spec carries) are unused."""
    return Reference(GRU(nu, nx, ny, key=key), nu, ny)


def reference_plain_r2dn(
    nu: int,
    nx: int,
    nv: int,
    ny: int,
    hidden: tuple[int, ...] = (64,),
    feedthrough=None,
    *,
    key: PRNGKeyArray,
) -> Reference:
    """The R2DN's structure with free weights and no certificate (φ: an MLP of ``hidden``).

    >>> reference_plain_r2dn(1, 3, 4, 1, hidden=(8, 8), key=jax.random.key(0)).nx
    3
    """
    if len(set(hidden)) != 1:
        raise ValueError(f"the plain R2DN's MLP has equal hidden widths; got {hidden}")
    return Reference(PlainR2DN(nu, nx, nv, ny, hidden[0], len(hidden), key=key), nu, ny)


MODELS.setdefault("reference-gru", reference_gru)  # the registry's extension point
MODELS.setdefault("reference-plain-r2dn", reference_plain_r2dn)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Sizes and training settings for one benchmark.

    Attributes:
        nx, nv, hidden: the R2DNs' state size, nonlinear-block size and hidden widths.
        gamma: the Lipschitz R2DN's bound, in the z-scored units `fit` trains in.
        config: the training settings (the seed is set per run).
        validation: the last this many samples of the training record validate (not trained
            on); 0: validate on the whole training record (too short to split).
        samples: quick runs: keep only the first this many samples of every record.
        init: the R2DNs' initialisation, "random" or "long_memory" (``A ≈ ᾱI``).
        activation: the R2DNs' activation in φ (`r2dn.networks.ACTIVATIONS`).
    """

    nx: int
    nv: int
    hidden: tuple[int, ...]
    gamma: float
    config: TrainConfig
    validation: int
    samples: int | None = None
    init: str = "random"
    activation: str = "relu"


def _windowed(**settings: Any) -> TrainConfig:
    """Windowed training with the encoder and restore of the best validation loss."""
    base = dict(
        mode="windowed",
        initial_state="encoder",
        restore_best=True,
        clip=None,
        washout=50,
        encoder_width=64,
        encoder_depth=2,
    )
    return TrainConfig(**(base | settings))


#: The shortened protocol of Silverbox and Wiener–Hammerstein (1,200 optimiser steps).
_SHORTENED = _windowed(
    epochs=60,
    steps_per_epoch=20,
    window_length=256,
    batch_size=32,
    burn_in=16,
    encoder_context=64,
    lr=3e-3,
    decay_every=40,
    decay_rate=0.3,
)

#: The protocols of the results in ``docs/sysid.md``. Cascaded tanks: 1,024 samples, trained
#: in full. Silverbox and Wiener–Hammerstein: shortened to what two shared CPU cores allow
#: (see the docs), 250-step windows from the whole training record.
PROTOCOLS: dict[str, Protocol] = {
    "cascaded-tanks": Protocol(
        nx=8,
        nv=16,
        hidden=(32, 32),
        gamma=5.0,
        config=_windowed(
            epochs=300,
            steps_per_epoch=8,
            window_length=128,
            batch_size=32,
            burn_in=8,
            encoder_context=32,
            lr=3e-3,
            decay_every=200,
            decay_rate=0.3,
        ),
        validation=0,
    ),
    "silverbox": Protocol(
        nx=8,
        nv=32,
        hidden=(64, 64),
        gamma=20.0,
        config=_SHORTENED,
        validation=6000,
    ),
    "wiener-hammerstein": Protocol(
        nx=16,
        nv=32,
        hidden=(64, 64),
        gamma=20.0,
        config=_SHORTENED,
        validation=10000,
    ),
    "emps": Protocol(
        nx=8,
        nv=16,
        hidden=(32, 32),
        gamma=20.0,
        config=_windowed(epochs=60, steps_per_epoch=20, window_length=256, burn_in=16),
        validation=2000,
    ),
    "ced": Protocol(
        nx=4,
        nv=16,
        hidden=(32,),
        gamma=10.0,
        config=_windowed(
            epochs=300, steps_per_epoch=4, window_length=64, batch_size=16, encoder_context=8
        ),
        validation=0,
    ),
}

#: ``--quick``: tiny models, a few steps, the first 512 samples of every record.
QUICK = Protocol(
    nx=2,
    nv=4,
    hidden=(8,),
    gamma=5.0,
    config=_windowed(
        epochs=2,
        steps_per_epoch=2,
        window_length=32,
        batch_size=4,
        burn_in=4,
        encoder_context=8,
        encoder_width=8,
        encoder_depth=1,
    ),
    validation=128,
    samples=512,
)

CHAMPNEYS = (
    "Champneys, Beintema, Tóth, Schoukens, Rogers: Baseline results for selected nonlinear "
    "system identification benchmarks, IFAC SYSID 2024 (arXiv:2405.10779; code: "
    "nonlinear_baselines), GRU"
)
#: Published test RMSEs in each benchmark's unit: (method, value, source).
PUBLISHED: dict[str, dict[str, list[tuple[str, float, str]]]] = {
    "silverbox": {
        "multisine": [("GRU", 1.49, CHAMPNEYS)],
        "arrow_full": [("GRU", 2.80, CHAMPNEYS)],
        "arrow_no_extrapolation": [("GRU", 0.95, CHAMPNEYS)],
    },
    "wiener-hammerstein": {
        "test": [
            ("GRU", 3.97, CHAMPNEYS),
            (
                "dynoNet",
                1.2,
                "Forgione, Piga: dynoNet: a neural network architecture for learning dynamical "
                "systems, Int. J. Adapt. Control Signal Process. 2021",
            ),
            ("best published", 0.28, "as quoted in issue 12 (source not verified offline)"),
        ]
    },
    "cascaded-tanks": {
        "test": [
            ("GRU", 0.396, CHAMPNEYS),
            (
                "SUBNET (median)",
                0.30,
                "Beintema, Schoukens, Tóth: Deep subspace encoders for nonlinear system "
                "identification, Automatica 2023",
            ),
        ]
    },
}


def longer(protocol: Protocol, epochs: int) -> Protocol:
    """``protocol`` with ``epochs`` epochs, its learning-rate decay stretched in proportion."""
    config = protocol.config
    decay = config.decay_every
    if decay is not None:
        decay = max(1, round(decay * epochs / config.epochs))
    config = dataclasses.replace(config, epochs=epochs, decay_every=decay)
    return dataclasses.replace(protocol, config=config)


def hardware() -> dict[str, Any]:
    """The CPU (model, cores), JAX's backend and devices, and the load when asked."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        model = names[0] if names else model
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _first(data: SequenceData, samples: int | None) -> SequenceData:
    return data if samples is None else data.time_slice(0, min(samples, data.length))


def prepared(name: str, protocol: Protocol, root: Path | None) -> bench.Benchmark:
    """The benchmark, cut to ``protocol.samples`` per record in quick runs."""
    loaded = bench.load(name, root) if root is not None else bench.load(name, download=False)
    if protocol.samples is None:
        return loaded
    return dataclasses.replace(
        loaded,
        train=_first(loaded.train, protocol.samples),
        test={k: _first(v, protocol.samples) for k, v in loaded.test.items()},
    )


def split(train: SequenceData, validation: int) -> tuple[SequenceData, SequenceData]:
    """(trained on, validates): the last ``validation`` samples held out, or all for both."""
    if validation == 0:
        return train, train
    return train.split(train.length - validation)


def spec_for(kind: str, protocol: Protocol, nu: int, ny: int) -> ModelSpec:
    """The model of ``kind``; the GRU's width gives the Lipschitz R2DN's parameter count, the
    plain R2DN has the R2DNs' sizes."""
    sizes = dict(nu=nu, nv=protocol.nv, ny=ny)
    r2dn = dict(sizes, nx=protocol.nx, hidden=list(protocol.hidden))
    if protocol.init != "random":  # the defaults, left out of the specs as before
        r2dn["init"] = protocol.init
    if protocol.activation != "relu":
        r2dn["activation"] = protocol.activation
    if kind == "lipschitz-r2dn":
        return ModelSpec(kind, r2dn | dict(gamma=protocol.gamma))
    if kind == "contracting-r2dn":
        return ModelSpec(kind, r2dn)
    if kind == "reference-plain-r2dn":
        return ModelSpec(kind, dict(sizes, nx=protocol.nx, hidden=list(protocol.hidden)))
    target = count_parameters(ModelSpec("lipschitz-r2dn", r2dn | dict(gamma=1.0)).skeleton())
    width = width_for(lambda w: reference_gru(nu, w, 0, ny, key=jax.random.key(0)), target)
    return ModelSpec(kind, dict(sizes, nx=width))


class _OutOfTime(Exception):
    """Raised by the callback when a run's time budget is spent."""


def extrapolation(
    benchmark: bench.Benchmark, predictions: dict[str, np.ndarray]
) -> dict[str, float] | None:
    """Silverbox: how the arrow's tail, beyond the no-extrapolation part, is predicted.

    The full arrow is the no-extrapolation arrow followed by a tail whose amplitude exceeds
    the training record's. Returns the tail's RMSE (in the benchmark's unit), the tail's
    largest measured amplitude over the training record's, and the largest predicted
    amplitude there over the measured one (above 1: the model overshoots). None for a
    benchmark without these test sets.
    """
    if not {"arrow_full", "arrow_no_extrapolation"} <= set(benchmark.test):
        return None
    start = benchmark.test["arrow_no_extrapolation"].length
    y = np.asarray(benchmark.test["arrow_full"].y)[:, start:]
    y_pred = np.asarray(predictions["arrow_full"])[:, start:]
    measured = float(np.max(np.abs(y)))
    return {
        "tail_rmse": float(benchmark.scale * np.sqrt(np.mean((y_pred - y) ** 2))),
        "measured_over_training": measured / float(np.max(np.abs(benchmark.train.y))),
        "predicted_over_measured": float(np.max(np.abs(y_pred))) / measured,
    }


def train_and_score(
    benchmark: bench.Benchmark,
    kind: str,
    protocol: Protocol,
    seed: int,
    max_seconds: float | None = None,
    model_file: Path | None = None,
) -> dict[str, Any]:
    """Train one model on ``benchmark`` and score it on every test set.

    ``model_file``: also save the trained model there (`r2dn.io.save_model`).
    """
    train, validation = split(benchmark.train, protocol.validation)
    spec = spec_for(kind, protocol, train.nu, train.ny)
    config = dataclasses.replace(protocol.config, seed=seed)
    normalizer = Normalizer.fit(train)
    best: dict[str, Any] = {}
    started, cpu_started = time.perf_counter(), time.process_time()

    def keep_best(report) -> None:
        if report.validation_loss is not None and report.validation_loss < best.get("loss", np.inf):
            best.update(loss=report.validation_loss, model=report.model, epoch=report.epoch)
        best["epochs"] = report.epoch
        if report.epoch % 10 == 0:
            print(f"  epoch {report.epoch}: validation {report.validation_loss:.4g}", flush=True)
        if max_seconds is not None and time.process_time() - cpu_started > max_seconds:
            raise _OutOfTime

    load_before = hardware()["load_average"]
    try:
        fit(spec, train, validation, config, normalizer=normalizer, progress=False,
            callbacks=[keep_best])  # fmt: skip
        stopped = "epochs"
    except _OutOfTime:
        stopped = "time budget"
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    trained = TrainedModel(
        best["model"], spec, normalizer, train.dt, train.input_names, train.output_names
    )
    if model_file is not None:
        save_model(model_file, trained)
    predictions = {name: trained.predict(test.u) for name, test in benchmark.test.items()}
    rmse = {name: float(benchmark.rmse(name, y)[0]) for name, y in predictions.items()}
    certificate = None
    if kind in CERTIFIED:
        report = check_lmi(trained.model)
        certificate = dict(report._asdict(), holds=bool(report.holds))
    return {
        "model": kind,
        "seed": seed,
        "spec": spec.to_dict(),
        "parameters": count_parameters(trained.model),
        "config": config.to_dict(),
        "epochs": best["epochs"],
        "best_epoch": best["epoch"],
        "best_validation_loss": best["loss"],
        "stopped": stopped,
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "rmse": rmse,
        "extrapolation": extrapolation(benchmark, predictions),
        "unit": benchmark.unit,
        "certificate": certificate,
        "model_file": None if model_file is None else str(model_file),
        "load_average_before": load_before,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def results_path(out: Path, name: str, quick: bool) -> Path:
    return out / f"sysid_{name}{'_quick' if quick else ''}.json"


def record(path: Path, name: str, benchmark: bench.Benchmark, run: dict[str, Any]) -> None:
    """Add ``run`` to the results file (replacing a run of the same model and seed).

    Processes that write the same file take turns (a lock file beside it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _record(path, name, benchmark, run)


def _record(path: Path, name: str, benchmark: bench.Benchmark, run: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    runs = [
        r for r in data.get("runs", []) if (r["model"], r["seed"]) != (run["model"], run["seed"])
    ]
    data = {
        "benchmark": name,
        "unit": benchmark.unit,
        "window": benchmark.window,
        "test_sets": list(benchmark.test),
        "reference": benchmark.reference,
        "published": PUBLISHED.get(name, {}),
        "hardware": hardware(),
        "runs": runs + [run],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


#: The table's column titles.
TITLES = {
    "lipschitz-r2dn": "Lipschitz R2DN",
    "contracting-r2dn": "contracting R2DN",
    "reference-gru": "GRU (ours)",
    "reference-plain-r2dn": "plain R2DN (ours, no certificate)",
}


def table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per benchmark and test set: each model's RMSEs over seeds, and the published.

    Every row has an entry for each of `MODEL_KINDS` and for each of `OPTIONAL_KINDS` that
    has runs in ``results``.
    """
    trained = {r["model"] for data in results for r in data["runs"]}
    kinds = MODEL_KINDS + tuple(k for k in OPTIONAL_KINDS if k in trained)
    rows = []
    for data in results:
        for test in data["test_sets"]:
            row = {"benchmark": data["benchmark"], "test": test, "unit": data["unit"]}
            for kind in kinds:
                runs = [r for r in data["runs"] if r["model"] == kind]
                values = [r["rmse"][test] for r in runs]
                row[kind] = {
                    "mean": float(np.mean(values)) if values else None,
                    "min": float(np.min(values)) if values else None,
                    "std": float(np.std(values)) if values else None,
                    "seeds": len(values),
                    "certified": all(r["certificate"]["holds"] for r in runs)
                    if kind in CERTIFIED and runs
                    else None,
                    "certified_runs": sum(
                        bool(r["certificate"] and r["certificate"]["holds"]) for r in runs
                    ),
                    "seconds": float(np.mean([r["train_seconds"] for r in runs])) if runs else None,
                }
            row["published"] = data["published"].get(test, [])
            rows.append(row)
    return rows


def _cell(entry: dict[str, Any]) -> str:
    if not entry["seeds"]:
        return "—"
    text = f"{entry['mean']:.3g} ± {entry['std']:.2g} (best {entry['min']:.3g}, n={entry['seeds']})"
    if entry["certified"] is False:
        text += f" ✗ certified {entry['certified_runs']}/{entry['seeds']}"
    return text


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of `table` in Markdown, with the published numbers."""
    kinds = [k for k in TITLES if rows and k in rows[0]]
    titles = "".join(f"{TITLES[k]} | " for k in kinds)
    lines = [
        f"| benchmark | test set | unit | {titles}published |",
        "|---|---|---|" + "---|" * (len(kinds) + 1),
    ]
    for r in rows:
        published = "; ".join(f"{m} {v:g}" for m, v, _ in r["published"]) or "—"
        cells = " | ".join(_cell(r[k]) for k in kinds)
        lines.append(f"| {r['benchmark']} | {r['test']} | {r['unit']} | {cells} | {published} |")
    return "\n".join(lines)


def available(name: str, root: Path | None) -> str | None:
    """None if the benchmark's files can be read without a download, else why not."""
    try:
        bench.load(name, root) if root is not None else bench.load(name, download=False)
    except (FileNotFoundError, DownloadError) as error:
        return str(error).splitlines()[0]
    return None


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse the options, train what they ask for, print and return the table's rows."""
    options: dict[str, Any] = {}
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command(help=__doc__.splitlines()[0])
    def command(
        benchmarks: Annotated[
            str, typer.Option(help="comma-separated, of " + ", ".join(PROTOCOLS))
        ] = "cascaded-tanks,silverbox,wiener-hammerstein",
        seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
        models: Annotated[
            str, typer.Option(help="comma-separated, of " + ", ".join(MODEL_KINDS + OPTIONAL_KINDS))
        ] = ",".join(MODEL_KINDS),
        quick: Annotated[
            bool, typer.Option(help="tiny models, 2 epochs, one seed, 512 samples per record")
        ] = False,
        root: Annotated[
            Path | None, typer.Option(help="folder holding the benchmark files")
        ] = SHARED,
        epochs: Annotated[
            int | None,
            typer.Option(help="override the protocol's (its learning-rate decay in proportion)"),
        ] = None,
        init: Annotated[
            str | None,
            typer.Option(help="the R2DNs' initialisation: random (the protocols') or long_memory"),
        ] = None,
        nx: Annotated[int | None, typer.Option(help="override the protocol's state size")] = None,
        nv: Annotated[int | None, typer.Option(help="override the protocol's φ size")] = None,
        hidden: Annotated[
            str | None, typer.Option(help="override φ's hidden widths, comma-separated")
        ] = None,
        activation: Annotated[
            str | None, typer.Option(help="the R2DNs' activation (default relu)")
        ] = None,
        max_minutes: Annotated[
            float | None,
            typer.Option(help="stop each run after this much CPU time (minutes, all threads)"),
        ] = None,
        out: Annotated[Path, typer.Option(help="folder for the JSON")] = RESULTS,
        save_models: Annotated[
            bool, typer.Option(help="also save every trained model in OUT/models")
        ] = False,
        report: Annotated[bool, typer.Option(help="print the table of saved results only")] = False,
    ) -> None:
        options.update(locals())

    common.invoke(app, argv)
    if not options:  # --help
        return []
    names = [n.strip() for n in options["benchmarks"].split(",") if n.strip()]
    kinds = [k.strip() for k in options["models"].split(",") if k.strip()]
    known = MODEL_KINDS + OPTIONAL_KINDS
    bad = [n for n in names if n not in PROTOCOLS] + [k for k in kinds if k not in known]
    if bad or not names or not kinds:
        raise SystemExit(
            f"unknown benchmark or model {bad}; benchmarks: {list(PROTOCOLS)}, "
            f"models: {list(known)}"
        )
    seeds = [0] if options["quick"] else [int(s) for s in options["seeds"].split(",")]
    root = options["root"] if options["root"] and Path(options["root"]).is_dir() else None
    out, quick = options["out"], options["quick"]
    max_seconds = None if options["max_minutes"] is None else 60 * options["max_minutes"]
    results = []
    for name in names:
        path = results_path(out, name, quick)
        reason = available(name, root)
        if reason is not None:
            print(f"skipping {name}: its files are not available ({reason})", flush=True)
            continue
        protocol = QUICK if quick else PROTOCOLS[name]
        if options["epochs"] is not None:
            protocol = longer(protocol, options["epochs"])
        overrides = {k: options[k] for k in ("init", "nx", "nv", "activation")}
        if options["hidden"] is not None:
            overrides["hidden"] = tuple(int(h) for h in options["hidden"].split(","))
        protocol = dataclasses.replace(
            protocol, **{k: v for k, v in overrides.items() if v is not None}
        )
        if not options["report"]:
            benchmark = prepared(name, protocol, root)
            for seed in seeds:
                for kind in kinds:
                    model_file = (
                        out / "models" / f"{name}_{kind}_seed{seed}.r2dn"
                        if options["save_models"]
                        else None
                    )
                    run = train_and_score(benchmark, kind, protocol, seed, max_seconds, model_file)
                    record(path, name, benchmark, run)
                    print(
                        f"{name} {kind} seed {seed}: RMSE {run['rmse']} {run['unit']}, "
                        f"{run['epochs']} epochs ({run['stopped']}), "
                        f"{run['train_seconds']:.0f} s ({run['train_cpu_seconds']:.0f} s CPU), "
                        f"certificate "
                        f"{None if run['certificate'] is None else run['certificate']['holds']}",
                        flush=True,
                    )
        if path.is_file():
            results.append(json.loads(path.read_text()))
    rows = table(results)
    print("\n" + markdown(rows) + "\n")
    for data in results:
        for test, entries in data["published"].items():
            for method, value, source in entries:
                print(f"- {data['benchmark']} {test}: {method} {value:g} {data['unit']}: {source}")
    return rows


if __name__ == "__main__":
    main()
