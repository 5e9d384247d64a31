"""Speed benchmarks of R2DN (and RENs, once they land): ``python benchmarks/run.py [--quick]``.

Times the forward pass (``jit`` of a simulation) and the gradient (``jit`` of the value and
gradient of a sequence MSE with respect to the *direct* parameters, so direct → explicit is
included), after compilation, which is timed apart. Sections:

1. ``f16``: the paper's F-16 sizes (batch 4, horizon 256); the R2DN, the same R2DN with φ
   hidden from `simulate` (its generic scan), an unconstrained GRU and an unconstrained
   R2DN-shaped scan as reference points.
2. ``sweep_point`` (full run only): the same forms of the R2DN at the widest point of the
   sweep (batch 64), where memory traffic rather than per-step overhead limits the speed.

Only public entry points are timed (no private name of r2dn is patched), so a refactor of
`r2dn.simulation` cannot break the benchmark. The before/after rows of each past speed-up are
recorded results in docs/benchmarks.md, measured with the code of their time.
3. ``sweep``: the paper's scaling sweep (batch 64, horizon 128): time against parameter count
   and the fitted log-log slope.
4. ``scaling``: the F-16 model against batch size and horizon.
5. ``breakdown``: where the R2DN's gradient time goes at the F-16 sizes (direct → explicit
   against the simulation), beside the REN's, and the machine's matmul throughput, against
   which the sweep's widest points are compared.

Prints tables, writes ``benchmarks/results/{full,quick}.json`` and, for a full run, the plots
in ``docs/``. ``--quick`` uses reduced grids and fewer repeats.

The dense against diagonal-plus-low-rank LTI parts at large state (nx up to 4096, forward,
gradient, memory and compile time) is its own script, ``python benchmarks/dplr.py [--quick]``
(`DPLR_COMMAND`; minutes more: the dense gradient at nx = 1024 alone takes seconds per call),
with its table in docs/benchmarks.md; a run here ends by naming it.
"""

import os

# Before NumPy loads OpenBLAS. Direct → explicit runs LU and Cholesky factorisations through
# jaxlib's LAPACK kernels on OpenBLAS threads; for these small matrices a second thread gains
# nothing, and when other processes hold the cores each call can stall for ~0.2 s.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from plots import plot_scaling, plot_sweep  # noqa: E402
from timing import compile_call, race, recompiles_on_new_values, sequence_functions  # noqa: E402
from tqdm import tqdm  # noqa: E402
from variants import FixedExplicit, GenericScan, Segmented  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: experiments
from experiments.references import GRU, PlainR2DN, count_parameters, width_for  # noqa: E402
from r2dn import ContractingR2DN  # noqa: E402

#: The structured (DPLR) benchmark, a script of its own (see the module docstring).
DPLR_COMMAND = "python benchmarks/dplr.py"

try:
    from r2dn import ContractingREN
except ImportError:  # RENs have not landed in this checkout: their rows are left out.
    ContractingREN = None

ROOT = Path(__file__).resolve().parent.parent
F16 = {"nu": 2, "nx": 75, "nv": 75, "ny": 3, "hidden": (87, 87, 87)}
SWEEP_WIDTHS = (8, 16, 24, 32, 48, 64, 80, 96)
SWEEP_REN_NV = (20, 30, 40, 60, 80, 100, 128, 200)
BATCHES = (1, 4, 16, 64, 256, 1024)
HORIZONS = (16, 64, 256, 1024, 4096)
SWEEP_BATCH, SWEEP_HORIZON = 64, 128

NOW = "R2DN (fused scan)"
GRU_NAME, PLAIN_NAME = "GRU", "plain R2DN-shaped (same #params)"


def data(model, nu: int, ny: int, batch: int, horizon: int, key):
    k1, k2, k3 = jax.random.split(key, 3)
    x0 = jax.random.normal(k1, (batch, model.nx))
    u = jax.random.normal(k2, (batch, horizon, nu))
    return x0, u, jax.random.normal(k3, (batch, horizon, ny))


def measure(subjects: dict, *, nu: int, ny: int, batch: int, horizon: int, budget_s: float):
    """Compile forward and gradient of every subject, then time them all in turns."""
    calls, records = {}, {}
    for name, model in subjects.items():
        x0, u, target = data(model, nu, ny, batch, horizon, jax.random.key(1))
        params, forward, gradient = sequence_functions(model)
        compiled = {
            "forward": compile_call(forward, params, x0, u),
            "gradient": compile_call(gradient, params, x0, u, target),
        }
        records[name] = {"params": count_parameters(model), "batch": batch, "horizon": horizon}
        for kind, c in compiled.items():
            records[name][kind] = {"compile_s": c.compile_s, "temp_bytes": c.temp_bytes}
            calls[name, kind] = c.call
    for (name, kind), stats in race(calls, budget_s=budget_s).items():
        records[name][kind].update(stats)
    return records


def r2dn_forms(r2dn) -> dict:
    """The R2DN as `simulate` runs it, and with φ hidden from it (its generic scan)."""
    return {NOW: r2dn, "R2DN, φ opaque: generic scan": GenericScan(r2dn)}


def f16_models(key) -> dict:
    """The R2DN at the paper's F-16 sizes in each of its forms, and the reference networks."""
    nu, nx, nv, ny, hidden = F16.values()
    r2dn = ContractingR2DN(nu, nx, nv, ny, hidden=hidden, key=key)
    n = count_parameters(r2dn)
    gru_width = width_for(lambda w: GRU(nu, w, ny, key=key), n)
    plain_width = width_for(lambda w: PlainR2DN(nu, nx, nv, ny, w, len(hidden), key=key), n)
    subjects = {
        **r2dn_forms(r2dn),
        GRU_NAME: GRU(nu, gru_width, ny, key=key),
        PLAIN_NAME: PlainR2DN(nu, nx, nv, ny, plain_width, len(hidden), key=key),
        "plain R2DN-shaped (same sizes)": PlainR2DN(
            nu, nx, nv, ny, hidden[0], len(hidden), key=key
        ),
    }
    if ContractingREN is not None:
        subjects["REN nx=75, nv=150"] = ContractingREN(nu, nx, 150, ny, key=key)
    return subjects


def run_f16(budget_s: float) -> dict:
    subjects = f16_models(jax.random.key(0))
    records = measure(subjects, nu=F16["nu"], ny=F16["ny"], batch=4, horizon=256, budget_s=budget_s)
    x0, u, target = data(subjects[NOW], F16["nu"], F16["ny"], 4, 256, jax.random.key(2))
    recompiles = recompiles_on_new_values(subjects[NOW], x0, u, target)
    return {"records": records, "recompiles_on_new_parameter_values": recompiles}


def run_sweep_point(budget_s: float) -> dict:
    """Every form of the R2DN at the sweep's widest point: batch 64, six layers of 96."""
    r2dn = ContractingR2DN(1, 1, 16, 1, hidden=(96,) * 6, key=jax.random.key(0))
    return measure(
        r2dn_forms(r2dn), nu=1, ny=1, batch=SWEEP_BATCH, horizon=SWEEP_HORIZON, budget_s=budget_s
    )


def run_sweep(widths, ren_nv, budget_s: float) -> dict:
    """R2DN nv=16 with six hidden layers of each width (and RENs), nx = nu = ny = 1."""
    runs = [("R2DN", w) for w in widths]
    runs += [("REN", nv) for nv in ren_nv if ContractingREN is not None]
    rows = []
    for family, size in tqdm(runs, desc="sweep", leave=False):
        key = jax.random.key(size)
        if family == "REN":
            model = ContractingREN(1, 1, size, 1, activation="tanh", key=key)
        else:
            model = ContractingR2DN(1, 1, 16, 1, hidden=(size,) * 6, key=key)
            # Every explicit weight is used once per row and step in a multiply-add.
            flops_per_row_step = 2 * count_parameters(model.explicit())
        record = measure(
            {family: model},
            nu=1,
            ny=1,
            batch=SWEEP_BATCH,
            horizon=SWEEP_HORIZON,
            budget_s=budget_s,
        )
        if family != "REN":
            record[family]["forward_flops"] = flops_per_row_step * SWEEP_BATCH * SWEEP_HORIZON
        rows.append({"family": family, "size": size, **record[family]})
    slopes = {}
    for family in dict.fromkeys(row["family"] for row in rows):
        mine = [row for row in rows if row["family"] == family]
        if len(mine) > 1:
            x = np.log([row["params"] for row in mine])
            slopes[family] = {
                kind: float(np.polyfit(x, np.log([row[kind]["median_s"] for row in mine]), 1)[0])
                for kind in ("forward", "gradient")
            }
    return {"rows": rows, "loglog_slopes": slopes}


def run_breakdown(budget_s: float) -> dict:
    """The R2DN's gradient at the F-16 sizes split into its two halves, and the REN's.

    The halves: the gradient of direct → explicit alone (a VJP with a cotangent of ones), and
    the gradient of the simulation from a fixed explicit system. Their sum is about the whole;
    the REN's gradient over the simulation's bounds the R2DN/REN ratio that any speed-up of
    direct → explicit could reach.
    """
    nu, nx, nv, ny, hidden = F16.values()
    key = jax.random.key(0)
    r2dn = ContractingR2DN(nu, nx, nv, ny, hidden=hidden, key=key)
    x0, u, target = data(r2dn, nu, ny, 4, 256, jax.random.key(1))
    params, static = eqx.partition(r2dn, eqx.is_inexact_array)
    system_params, simulate, system_gradient = sequence_functions(FixedExplicit(r2dn.explicit()))

    def explicit_sum(params):
        leaves = jax.tree.leaves(eqx.combine(params, static).explicit())
        return sum(jnp.sum(leaf) for leaf in leaves)

    compiled = {
        "R2DN gradient": compile_call(sequence_functions(r2dn)[2], params, x0, u, target),
        "direct → explicit, gradient": compile_call(jax.grad(explicit_sum), params),
        "simulation, gradient": compile_call(system_gradient, system_params, x0, u, target),
        "simulation, forward": compile_call(simulate, system_params, x0, u),
    }
    if ContractingREN is not None:
        ren_params, _, ren_gradient = sequence_functions(ContractingREN(nu, nx, 150, ny, key=key))
        compiled["REN gradient"] = compile_call(ren_gradient, ren_params, x0, u, target)
    stats = race({name: c.call for name, c in compiled.items()}, budget_s=budget_s)
    return {"records": stats, "matmul_gflops": matmul_gflops(budget_s)}


def matmul_gflops(budget_s: float, n: int = 1024) -> float:
    """The machine's float32 matmul throughput (GFLOP/s, median): an ``n × n`` product."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    product = compile_call(jnp.matmul, a, a)
    seconds = race({"matmul": product.call}, budget_s=budget_s)["matmul"]["median_s"]
    return 2 * n**3 / seconds / 1e9


def run_scaling(batches, horizons, budget_s: float) -> dict:
    """The F-16 R2DN and the two references against batch size and horizon."""
    f16 = f16_models(jax.random.key(0))
    subjects = {"R2DN": f16[NOW], GRU_NAME: f16[GRU_NAME], PLAIN_NAME: f16[PLAIN_NAME]}
    out = {"batch": [], "horizon": []}
    grid = [("batch", b, 256) for b in batches] + [("horizon", 4, T) for T in horizons]
    for axis, batch, horizon in tqdm(grid, desc="scaling", leave=False):
        these = dict(subjects)
        if axis == "horizon":
            length = 2 ** round(np.log2(np.sqrt(horizon)))
            these["R2DN, checkpointed segments"] = Segmented(subjects["R2DN"], length)
        records = measure(
            these, nu=F16["nu"], ny=F16["ny"], batch=batch, horizon=horizon, budget_s=budget_s
        )
        out[axis].extend({"name": name, **record} for name, record in records.items())
    return out


def machine() -> dict:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def table(rows: list[list], header: list[str]) -> str:
    """Fixed-width text table; the first column left-aligned, numbers to three digits."""
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        first, *rest = r
        lines.append(
            "  ".join(
                [first.ljust(widths[0])]
                + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
            )
        )
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def ms(stats: dict, key: str = "median_s") -> float:
    return 1e3 * stats[key]


def forms_table(records: dict, title: str) -> list[str]:
    """One row per network; 'grad ×' is its gradient time over the R2DN's now."""
    now = records[NOW]["gradient"]["median_s"]
    rows = [
        [
            name,
            r["params"],
            ms(r["forward"]),
            ms(r["gradient"]),
            ms(r["gradient"], "min_s"),
            r["gradient"]["median_s"] / now,
            r["forward"]["compile_s"] + r["gradient"]["compile_s"],
        ]
        for name, r in records.items()
    ]
    header = ["network", "params", "fwd ms", "grad ms", "grad min", "grad ×", "compile s"]
    return [title, table(rows, header)]


def report(results: dict) -> str:
    f16 = results["f16"]["records"]
    out = forms_table(f16, "F-16 sizes, batch 4, horizon 256 (median over rounds; min apart)")
    for name in (PLAIN_NAME, GRU_NAME):
        for kind in ("gradient", "forward"):
            ratios = [f16[NOW][kind][k] / f16[name][kind][k] for k in ("median_s", "min_s")]
            out.append(f"R2DN {kind} / {name}: {ratios[0]:.2f} (of minima: {ratios[1]:.2f})")
    out.append(
        f"recompiles when only parameter values change: "
        f"{results['f16']['recompiles_on_new_parameter_values']}"
    )
    if "sweep_point" in results:
        title = "Sweep's widest R2DN (nv=16, 6 layers of 96), batch 64, horizon 128"
        out += ["", *forms_table(results["sweep_point"], title)]
    sweep = results["sweep"]
    rows = [
        [
            r["family"],
            r["size"],
            r["params"],
            ms(r["forward"]),
            ms(r["gradient"]),
            gflops(r.get("forward_flops"), r["forward"]),
            gflops(3 * r.get("forward_flops", 0), r["gradient"]),
        ]
        for r in sweep["rows"]
    ]
    out += [
        "",
        "Scaling sweep, batch 64, horizon 128 (median ms; GFLOP/s counting 2 flops per explicit "
        "weight per row and step, 3x that for the gradient)",
        table(
            rows, ["network", "width/nv", "params", "fwd ms", "grad ms", "fwd GF/s", "grad GF/s"]
        ),
    ]
    out += [
        f"log-log slope of time vs parameters, {family}: forward {s['forward']:.3f}, "
        f"gradient {s['gradient']:.3f}"
        for family, s in sweep["loglog_slopes"].items()
    ]
    for axis in ("batch", "horizon"):
        rows = [
            [
                r["name"],
                r[axis],
                ms(r["forward"]),
                ms(r["gradient"]),
                r["gradient"]["temp_bytes"] / 2**20,
            ]
            for r in results["scaling"][axis]
        ]
        out += [
            "",
            f"F-16 sizes against {axis} (median ms; gradient scratch memory MiB)",
            table(rows, ["network", axis, "fwd ms", "grad ms", "grad MiB"]),
        ]
    out += ["", *breakdown_table(results["breakdown"])]
    return "\n".join(out)


def gflops(flops: float | None, stats: dict) -> str:
    return "-" if not flops else f"{flops / stats['median_s'] / 1e9:.3g}"


def breakdown_table(breakdown: dict) -> list[str]:
    """The R2DN's gradient in halves; the REN/R2DN ratio each half allows."""
    records = breakdown["records"]
    ren = records.get("REN gradient", {}).get("median_s")
    rows = [
        [name, ms(r), ms(r, "min_s"), "-" if ren is None else f"{ren / r['median_s']:.3g}"]
        for name, r in records.items()
    ]
    return [
        "Where the R2DN's gradient goes, F-16 sizes, batch 4, horizon 256",
        table(rows, ["call", "median ms", "min ms", "REN grad ÷ this"]),
        f"float32 matmul throughput of this machine (1024 x 1024): "
        f"{breakdown['matmul_gflops']:.3g} GFLOP/s",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced grids, fewer repeats")
    quick = parser.parse_args().quick
    budget_s = 0.5 if quick else 2.0
    results = {"machine": machine(), "quick": quick, "load_before": os.getloadavg()}
    sections = tqdm(total=4 if quick else 5, desc="benchmarks")
    results["f16"] = run_f16(budget_s)
    sections.update()
    if not quick:
        results["sweep_point"] = run_sweep_point(budget_s)
        sections.update()
    results["sweep"] = run_sweep(
        SWEEP_WIDTHS[::3] if quick else SWEEP_WIDTHS,
        SWEEP_REN_NV[::3] if quick else SWEEP_REN_NV,
        budget_s,
    )
    sections.update()
    results["scaling"] = run_scaling(
        BATCHES[::2] if quick else BATCHES, HORIZONS[::2] if quick else HORIZONS, budget_s
    )
    sections.update()
    results["breakdown"] = run_breakdown(budget_s)
    sections.update()
    sections.close()
    results["load_after"] = os.getloadavg()
    print(report(results))
    print(f"\nDense against DPLR LTI parts at large state: {DPLR_COMMAND} (docs/benchmarks.md)")
    path = ROOT / "benchmarks" / "results" / f"{'quick' if quick else 'full'}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {path.relative_to(ROOT)}")
    if not quick:
        for written in (plot_sweep(results, ROOT / "docs"), plot_scaling(results, ROOT / "docs")):
            print(f"wrote {written.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
