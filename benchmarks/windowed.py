"""Windowed against carried-state training: wall time to the same validation loss, in one run.

``python benchmarks/windowed.py [--quick] [--f16-root DIR]``

The carried-state mode (`TrainConfig(mode="carried")`, the paper's truncated BPTT) trains for a
fixed number of epochs; its best validation loss is the target. The windowed mode (burn-in,
and the learned encoder) then trains from the same initialisation until its validation loss
reaches the target, or until its epoch budget runs out. Wall time includes compilation,
validation and everything else `fit` does; each mode's time is to the epoch that first reached
the target. Data: the embedded cascaded-tanks records (default) or the F-16 benchmark (levels
1, 3, 5, 7 to train, level 4 to validate; the first ``--f16-steps`` samples of each).

Prints a table and writes ``benchmarks/results/windowed[_quick].json``.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as benchmarks/run.py, before NumPy

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402

from r2dn.data import SequenceData, load_cascaded_tanks, load_f16  # noqa: E402
from r2dn.registry import ModelSpec  # noqa: E402
from r2dn.training import TrainConfig, fit  # noqa: E402

RESULTS = Path(__file__).parent / "results"


class _Reached(Exception):
    """Raised by the callback that sees the target validation loss reached."""


def _timed_fit(spec, train, validation, config, target=None):
    """(best validation loss, seconds to the epoch that reached ``target`` or the best, epochs)."""
    started, seen = time.perf_counter(), []

    def watch(report):
        if report.validation_loss is not None:
            seen.append((report.validation_loss, time.perf_counter() - started, report.epoch))
            if target is not None and report.validation_loss <= target:
                raise _Reached

    with contextlib.suppress(_Reached):
        fit(spec, train, validation, config, progress=False, callbacks=[watch])
    if target is not None:
        hits = [s for s in seen if s[0] <= target]
        if not hits:
            return min(s[0] for s in seen), None, seen[-1][2]
        return hits[0]
    return min(seen)


def cases(quick: bool, f16_root: Path | None, f16_steps: int):
    """(data name, spec, train, validation, carried config, windowed configs)."""
    if f16_root is None:
        train, validation = load_cascaded_tanks()
        spec = ModelSpec(
            "lipschitz-r2dn", dict(nu=1, nx=8, nv=16, ny=1, hidden=[32, 32], gamma=5.0)
        )
        carried = TrainConfig(epochs=150 if quick else 600, segment_length=256, lr=3e-3, washout=50)
        windowed = dict(window_length=128, batch_size=32, burn_in=32, steps_per_epoch=4)
        name = "cascaded tanks (embedded, 1,024 samples)"
    else:
        full, val, _ = load_f16(f16_root, download=False)
        cut = slice(0, f16_steps)
        train = SequenceData(
            full.u[:, cut], full.y[:, cut], full.dt, full.input_names, full.output_names
        )
        validation = SequenceData(
            val.u[1:2, cut], val.y[1:2, cut], val.dt, val.input_names, val.output_names
        )
        spec = ModelSpec(
            "lipschitz-r2dn", dict(nu=2, nx=16, nv=32, ny=3, hidden=[64, 64], gamma=20.0)
        )
        carried = TrainConfig(epochs=10 if quick else 30, segment_length=1024, lr=1e-3, washout=100)
        # As many samples per step as the carried mode (4 records × 1024 = 16 windows × 256).
        windowed = dict(
            window_length=256, batch_size=16, burn_in=64, steps_per_epoch=f16_steps // 1024
        )
        name = f"F-16 (first {f16_steps} samples of levels 1, 3, 5, 7; level 4 validates)"
    budget = 3 * carried.epochs
    configs = {
        "windowed, burn-in": dataclasses.replace(
            carried, mode="windowed", epochs=budget, **windowed
        ),
        "windowed, encoder": dataclasses.replace(
            carried,
            mode="windowed",
            epochs=budget,
            initial_state="encoder",
            encoder_context=32,
            **windowed,
        ),
    }
    return name, spec, train, validation, carried, configs


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs (minutes on a laptop)")
    p.add_argument("--f16-root", type=Path, help="folder of the F-16 CSVs (else cascaded tanks)")
    p.add_argument("--f16-steps", type=int, default=8192, help="samples per F-16 record used")
    args = p.parse_args(argv)
    name, spec, train, validation, carried, configs = cases(
        args.quick, args.f16_root, args.f16_steps
    )
    target, base_seconds, base_epoch = _timed_fit(spec, train, validation, carried)
    rows = [
        dict(
            mode="carried (TBPTT)",
            epochs=base_epoch,
            seconds=base_seconds,
            validation=target,
            ratio=1.0,
            reached=True,
        )
    ]
    for mode, config in configs.items():
        loss, seconds, epoch = _timed_fit(spec, train, validation, config, target)
        rows.append(
            dict(
                mode=mode,
                epochs=epoch,
                seconds=seconds,
                validation=loss,
                ratio=None if seconds is None else seconds / base_seconds,
                reached=seconds is not None,
            )
        )
    print(f"\n{name}; target: the carried mode's best validation loss {target:.4g}\n")
    print("| mode | epochs | seconds to target | validation loss | time ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        seconds = "not reached" if r["seconds"] is None else f"{r['seconds']:.1f}"
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"| {r['mode']} | {r['epochs']} | {seconds} | {r['validation']:.4g} | {ratio} |")
    record = {
        "data": name,
        "spec": spec.to_dict(),
        "carried": carried.to_dict(),
        "windowed": {mode: c.to_dict() for mode, c in configs.items()},
        "rows": rows,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hardware": {
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = ("_f16" if args.f16_root else "") + ("_quick" if args.quick else "")
    (RESULTS / f"windowed{suffix}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
