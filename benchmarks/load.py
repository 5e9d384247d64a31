"""The F-16 R2DN's gradient with the other core busy: ``python benchmarks/load.py [--quick]``.

Direct → explicit calls LAPACK (LU, Cholesky) through SciPy's OpenBLAS. With a thread per core,
each call waits for a descheduled thread when another process holds a core. r2dn limits BLAS
to one thread where it runs (`r2dn._threads.limit_blas_threads`); this benchmark times the
gradient (batch 4, horizon 256, as in run.py) idle and with a busy loop on another core, with
the protection (1 BLAS thread) and without it (a thread per core, OpenBLAS's default).
Writes ``benchmarks/results/load{,_quick}.json``.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
from threadpoolctl import threadpool_limits
from timing import compile_call, race, sequence_functions

from r2dn import ContractingR2DN

ROOT = Path(__file__).resolve().parent.parent
F16 = {"nu": 2, "nx": 75, "nv": 75, "ny": 3, "hidden": (87, 87, 87)}


def gradient_call(batch: int = 4, horizon: int = 256):
    nu, nx, nv, ny, hidden = F16.values()
    model = ContractingR2DN(nu, nx, nv, ny, hidden=hidden, key=jax.random.key(0))
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    x0 = jax.random.normal(k1, (batch, nx))
    u = jax.random.normal(k2, (batch, horizon, nu))
    target = jax.random.normal(k3, (batch, horizon, ny))
    params, _, gradient = sequence_functions(model)
    return compile_call(gradient, params, x0, u, target).call


def time_gradient(call, threads: int, budget_s: float) -> dict:
    with threadpool_limits(limits=threads, user_api="blas"):
        return race({"gradient": call}, budget_s=budget_s)["gradient"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budget")
    args = parser.parse_args()
    budget = 2.0 if args.quick else 10.0
    call = gradient_call()
    default_threads = os.cpu_count() or 1
    modes = {"protected (1 BLAS thread)": 1, f"unprotected ({default_threads})": default_threads}
    results = {}
    for load in ("idle", "other core busy"):
        busy = None
        if load != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for mode, threads in modes.items():
                results[f"{load}, {mode}"] = time_gradient(call, threads, budget)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    idle = results[f"idle, {next(iter(modes))}"]["median_s"]
    print("F-16 R2DN gradient (batch 4, horizon 256): median and min ms, ratio to idle protected")
    for name, r in results.items():
        ratio = r["median_s"] / idle
        print(f"  {name:45s} {1e3 * r['median_s']:8.1f} {1e3 * r['min_s']:8.1f}  {ratio:5.2f}×")
    out = ROOT / "benchmarks" / "results" / f"load{'_quick' if args.quick else ''}.json"
    record = {
        "cpu_count": default_threads,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "results": results,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
