"""Per-step latency at batch 1 of an exported model: the C step, the NumPy step and JAX.

What a real-time loop sees: one step ``(x, u) ↦ (x⁺, y)`` at a time. Each step is timed on
its own and the median and the 99th percentile over the steps are reported:

- C: the exported model (`r2dn.export.to_c`) built with ``cc -O3 -march=native``, as a user
  would build it for this machine, and timed inside a small C driver with ``clock_gettime``
  around each step (`r2dn.export.c.driver_source`; the two clock reads, some 20-40 ns, are
  included);
- NumPy: the exported ``step`` (`r2dn.export.to_numpy`), timed with ``time.perf_counter_ns``;
- JAX: ``jax.jit`` of `r2dn.simulation.step` with the explicit matrices closed over (formed
  once), called with ``block_until_ready``.

Models (float32 unless ``--dtype float64``): the demo's Lipschitz R2DN (r2dn/demo.py), and the
F-16 sizes of the paper (experiments/f16.py): an R2DN with nx = nv = 75 and hidden layers
(87, 87, 87), and a REN with nx = 75, nv = 150.

    python benchmarks/latency.py            # 10⁵ steps each (a few minutes, mostly NumPy REN)
    python benchmarks/latency.py --quick    # 10⁴ C steps, 2·10³ Python steps (seconds)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import r2dn
from r2dn import simulation
from r2dn.certificates import to_dtype
from r2dn.export.arrays import export_arrays
from r2dn.export.c import FAST_FLAGS, compile_program, compiler, driver_source, write_c
from r2dn.export.runtime import Model
from r2dn.export.to_numpy import npz_arrays

RESULTS = Path(__file__).parent / "results"

#: name → (spec kind, constructor arguments): the demo and the paper's F-16 sizes.
MODELS = {
    "demo R2DN": (
        "lipschitz-r2dn",
        dict(nu=1, nx=8, nv=16, ny=1, hidden=[32, 32], gamma=5.0),
    ),
    "F-16 R2DN": ("contracting-r2dn", dict(nu=2, nx=75, nv=75, ny=3, hidden=[87, 87, 87])),
    "F-16 REN": ("contracting-ren", dict(nu=2, nx=75, nv=150, ny=3)),
}


def stats_us(ns: np.ndarray) -> dict[str, float]:
    """Median and 99th percentile in microseconds."""
    return {"median_us": float(np.median(ns)) / 1e3, "p99_us": float(np.percentile(ns, 99)) / 1e3}


def time_c(exported, u: np.ndarray, folder: Path) -> dict[str, float]:
    write_c(exported, folder, "net")
    (folder / "main.c").write_text(driver_source("net"))
    exe = compile_program([folder / "net.c", folder / "main.c"], folder / "net", FAST_FLAGS)
    times = folder / "times.bin"
    subprocess.run([exe, str(len(u)), times], input=u.tobytes(), capture_output=True, check=True)
    return stats_us(np.fromfile(times, dtype=np.int64))


def time_python(step, x, u: np.ndarray) -> dict[str, float]:
    """Time ``x, y = step(x, u_t)`` per step; ``step`` returns arrays that are ready."""
    ns = np.empty(len(u), dtype=np.int64)
    for t, u_t in enumerate(u):
        start = time.perf_counter_ns()
        x, _ = step(x, u_t)
        ns[t] = time.perf_counter_ns() - start
    return stats_us(ns)


def jax_step(model):
    sys = model.explicit()
    step = jax.jit(lambda x, u: simulation.step(sys, x, u))

    def run(x, u):
        return jax.block_until_ready(step(x, u))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (seconds)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    c_steps, py_steps = (10_000, 2_000) if args.quick else (100_000, 100_000)
    if compiler() is None:
        raise SystemExit("no C compiler (cc, gcc or clang) on the PATH")
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)

    rows = {}
    for name, (kind, kwargs) in MODELS.items():
        model = to_dtype(r2dn.ModelSpec(kind, kwargs).build(jax.random.key(0)), args.dtype)
        exported = export_arrays(model, args.dtype)
        rng = np.random.default_rng(0)
        u = rng.normal(size=(c_steps, model.nu)).astype(args.dtype)
        with tempfile.TemporaryDirectory() as folder:
            c = time_c(exported, u, Path(folder))
        numpy_model = Model(npz_arrays(exported))
        numpy = time_python(numpy_model.step, numpy_model.reset(), u[:py_steps])
        jax_ = time_python(jax_step(model), model.initial_state(), u[:py_steps])
        rows[name] = {"kind": kind, **kwargs, "C": c, "NumPy": numpy, "JAX": jax_}
        print(f"{name}: C {c['median_us']:.2f} µs, NumPy {numpy['median_us']:.1f} µs, "
              f"JAX {jax_['median_us']:.1f} µs", flush=True)  # fmt: skip

    cc_version = subprocess.run([compiler(), "--version"], capture_output=True, text=True)
    result = {
        "dtype": args.dtype,
        "c_steps": c_steps,
        "python_steps": py_steps,
        "compiler": cc_version.stdout.splitlines()[0],
        "flags": list(FAST_FLAGS),
        "cpu": _cpu(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "models": rows,
        "r2dn_vs_ren_in_c": rows["F-16 REN"]["C"]["median_us"]
        / rows["F-16 R2DN"]["C"]["median_us"],
    }
    print()
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    out = (
        RESULTS
        / f"latency{'_quick' if args.quick else ''}{'_f64' * (args.dtype != 'float32')}.json"
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")


def table(result: dict) -> str:
    """The latency table (Markdown), as in docs/export.md."""
    lines = [
        f"| model ({result['dtype']}, batch 1) | C median | C p99 | NumPy median | NumPy p99 "
        "| JAX median | JAX p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in result["models"].items():
        cells = [
            f"{row[t][s]:.2f} µs" for t in ("C", "NumPy", "JAX") for s in ("median_us", "p99_us")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        f"\nF-16 REN / F-16 R2DN step time in C: {result['r2dn_vs_ren_in_c']:.2f}× "
        f"({result['compiler']}, {' '.join(result['flags'])}; {result['cpu']})"
    )
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
