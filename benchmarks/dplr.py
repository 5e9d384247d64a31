"""Dense against diagonal-plus-low-rank (DPLR) LTI parts: ``python benchmarks/dplr.py [--quick]``.

Times direct → explicit plus `r2dn.simulate` of a contracting R2DN's LTI part, dense
(`r2dn.parameterizations.core.unit_gain_core`) and DPLR
(`r2dn.parameterizations.dplr.dplr_core`, ranks ``r = r_Y`` of 8 and 32), with the same LBDN φ:
forward, gradient (value and gradient of a sequence MSE with respect to the direct parameters),
compile times and XLA's temporary memory (``memory_analysis().temp_size_in_bytes``, a peak
estimate). Full run: nx ∈ {64, 256, 1024, 4096}, nv = 64, hidden (128, 128), batch 16, T 256;
dense points above ``--dense-max-nx`` are left out (their gradient takes minutes on a CPU).

Prints a table and writes ``benchmarks/results/dplr[_quick].json`` (``dplr_nx<sizes>.json`` for
``--sizes``; ``--min-rounds 1`` for minute-long calls, e.g. the dense part at nx = 4096).
``--f16`` instead times the F-16 study's R2DNs (docs/results.md: dense nx = 75 and DPLR r = 8
at nx ∈ {75, 256, 1024}, long-memory start, batch 4, T 256, the training gradient) in turns,
into ``dplr_f16.json``: the study's own seconds per epoch ran on a machine whose load moved from
run to run.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as benchmarks/run.py, before NumPy

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from timing import compile_call, race, sequence_functions  # noqa: E402

from r2dn import ContractingR2DN, ExplicitSystem, simulate  # noqa: E402
from r2dn.initializers import lecun_normal  # noqa: E402
from r2dn.networks.sandwich import LBDN  # noqa: E402
from r2dn.parameterizations import frobenius  # noqa: E402
from r2dn.parameterizations.core import unit_gain_core  # noqa: E402
from r2dn.parameterizations.dplr import DPLRFree, dplr_core, random_free  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ALPHA_BAR, EPS = 1.0, 1e-3
NU = NY = 2


class Thin(eqx.Module):
    """The thin matrices and φ that a dense and a DPLR LTI part share."""

    B1: jax.Array
    B2: jax.Array
    C1: jax.Array
    C2: jax.Array
    D12: jax.Array
    D21: jax.Array
    phi: LBDN

    def __init__(self, nx: int, nv: int, hidden: tuple[int, ...], key):
        keys = jax.random.split(key, 7)
        normal = lambda k, *shape: lecun_normal(k, shape, jnp.float32)  # noqa: E731
        self.B1, self.B2, self.C1 = (
            normal(keys[0], nx, nv),
            normal(keys[1], nx, NU),
            normal(keys[2], nv, nx),
        )
        self.C2, self.D12, self.D21 = (
            normal(keys[3], NY, nx),
            normal(keys[4], nv, NU),
            normal(keys[5], NY, nv),
        )
        self.phi = LBDN(nv, hidden, nv, key=keys[6])

    def system(self, A, B1, B2) -> ExplicitSystem:
        nx, nv = B1.shape
        zeros = lambda n: jnp.zeros(n, jnp.float32)  # noqa: E731
        return ExplicitSystem(
            A,
            B1,
            B2,
            self.C1,
            self.C2,
            self.D12,
            self.D21,
            jnp.zeros((NY, NU), jnp.float32),
            zeros(nx),
            zeros(nv),
            zeros(NY),
            self.phi.explicit(),
        )


class Dense(eqx.Module):
    X: jax.Array
    p: jax.Array
    Y: jax.Array
    thin: Thin

    def __init__(self, thin: Thin, key):
        nx = thin.B1.shape[0]
        k1, k2 = jax.random.split(key)
        self.X = lecun_normal(k1, (2 * nx, 2 * nx), jnp.float32)
        self.p, self.Y, self.thin = frobenius(self.X), lecun_normal(k2, (nx, nx), jnp.float32), thin

    def simulate(self, x0, u):
        t = self.thin
        core = unit_gain_core(
            self.X,
            self.p,
            self.Y,
            t.B1,
            t.B2,
            t.C1,
            alpha_bar=ALPHA_BAR,
            eps=EPS,
            margin_rule="relative",
        )
        return simulate(t.system(core.A, core.B1, core.B2), x0, u)


class Structured(eqx.Module):
    free: DPLRFree
    thin: Thin

    def simulate(self, x0, u):
        t = self.thin
        core = dplr_core(
            self.free, t.B1, t.B2, t.C1, alpha_bar=ALPHA_BAR, eps=EPS, margin_rule="relative"
        )
        return simulate(t.system(core.A, core.B1, core.B2), x0, u)


def compiled_calls(
    model, *, nx: int, batch: int, horizon: int, nu: int = NU, ny: int = NY
) -> tuple[dict, dict]:
    """Compile forward and gradient of one model: ``(calls, record of compile time, memory)``."""
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    x0 = jax.random.normal(k1, (batch, nx))
    u = jax.random.normal(k2, (batch, horizon, nu))
    target = jax.random.normal(k3, (batch, horizon, ny))
    params, forward, gradient = sequence_functions(model)
    compiled = {
        "forward": compile_call(forward, params, x0, u),
        "gradient": compile_call(gradient, params, x0, u, target),
    }
    record = {
        kind: {"compile_s": c.compile_s, "temp_bytes": c.temp_bytes} for kind, c in compiled.items()
    }
    return {kind: c.call for kind, c in compiled.items()}, record


def run(
    sizes, ranks, *, nv, hidden, batch, horizon, dense_max_nx, budget_s, min_rounds=5
) -> list[dict]:
    """Per nx, every subject compiled, then all timed in turns (the same load for each)."""
    rows = []
    for nx in sizes:
        thin = Thin(nx, nv, hidden, jax.random.key(0))
        subjects = {} if nx > dense_max_nx else {"dense": Dense(thin, jax.random.key(2))}
        for r in ranks:
            free = random_free(jax.random.key(3), nx, r, dtype=jnp.float32)
            subjects[f"DPLR r={r}"] = Structured(free, thin)
        calls, records = {}, {}
        for name, model in subjects.items():
            model_calls, records[name] = compiled_calls(model, nx=nx, batch=batch, horizon=horizon)
            calls.update({(name, kind): call for kind, call in model_calls.items()})
        timed = race(calls, budget_s=budget_s, min_rounds=min_rounds)
        for (name, kind), stats in timed.items():
            records[name][kind].update(stats)
        for name, record in records.items():
            rows.append({"nx": nx, "lti": name, **record})
            print(row_text(rows[-1]), flush=True)
    return rows


HEADER = "nx     LTI         fwd ms   grad ms   compile fwd/grad s   temp MiB fwd/grad"


def row_text(row: dict) -> str:
    f, g = row["forward"], row["gradient"]
    return (
        f"{row['nx']:<6} {row['lti']:<10} {1e3 * f['median_s']:8.2f} {1e3 * g['median_s']:9.2f}"
        f"   {f['compile_s']:8.2f} / {g['compile_s']:6.2f}"
        f"   {f['temp_bytes'] / 2**20:8.1f} / {g['temp_bytes'] / 2**20:8.1f}"
    )


def speedups(rows: list[dict]) -> list[str]:
    """Dense gradient time over each DPLR gradient time, per nx."""
    lines = []
    for nx in sorted({r["nx"] for r in rows}):
        at = {r["lti"]: r["gradient"]["median_s"] for r in rows if r["nx"] == nx}
        if "dense" in at:
            for name, t in at.items():
                if name != "dense":
                    lines.append(
                        f"nx={nx}: {name} gradient {at['dense'] / t:.1f}× faster than dense"
                    )
    return lines


#: The F-16 study's models (experiments/f16.py's R2DN sizes): name → (lti, rank, nx).
F16_MODELS = {
    "dense nx=75": ("dense", None, 75),
    "DPLR r=8 nx=75": ("dplr", 8, 75),
    "DPLR r=8 nx=256": ("dplr", 8, 256),
    "DPLR r=8 nx=1024": ("dplr", 8, 1024),
}


def run_f16(budget_s: float) -> list[dict]:
    """The F-16 study's R2DNs: forward and gradient at batch 4, T 256, all timed in turns."""
    calls, rows = {}, []
    for name, (lti, rank, nx) in F16_MODELS.items():
        model = ContractingR2DN(2, nx, 75, 3, hidden=(87, 87, 87), lti=lti, rank=rank,
                                init="long_memory", key=jax.random.key(0))  # fmt: skip
        model_calls, record = compiled_calls(model, nx=nx, batch=4, horizon=256, nu=2, ny=3)
        calls.update({(name, kind): call for kind, call in model_calls.items()})
        rows.append({"nx": nx, "lti": name, **record})
    stats = race(calls, budget_s=budget_s)
    for row in rows:
        for kind in ("forward", "gradient"):
            row[kind].update(stats[(row["lti"], kind)])
        print(row_text(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short timing")
    parser.add_argument("--dense-max-nx", type=int, default=1024, help="largest dense nx timed")
    parser.add_argument("--sizes", type=int, nargs="+", help="state sizes nx (default: the grid)")
    parser.add_argument("--f16", action="store_true", help="the F-16 study's models instead")
    parser.add_argument(
        "--min-rounds", type=int, default=5, help="timed rounds at least (1 for minute-long calls)"
    )
    args = parser.parse_args()
    if args.quick:
        grid = dict(sizes=(32, 128), ranks=(4,), nv=16, hidden=(32, 32), batch=4, horizon=32)
    else:
        grid = dict(
            sizes=(64, 256, 1024, 4096),
            ranks=(8, 32),
            nv=64,
            hidden=(128, 128),
            batch=16,
            horizon=256,
        )
    if args.sizes:
        grid["sizes"] = tuple(args.sizes)
    print(HEADER)
    if args.f16:
        rows = run_f16(budget_s=2.0)
        write(ROOT / "benchmarks" / "results" / "dplr_f16.json", {"models": F16_MODELS}, rows)
        return
    budget = 0.5 if args.quick else 2.0
    rows = run(**grid, dense_max_nx=args.dense_max_nx, budget_s=budget, min_rounds=args.min_rounds)
    print("\n".join(speedups(rows)))
    # A run of chosen sizes gets its own file, so the full grid's stays.
    sizes = "_nx" + "-".join(map(str, args.sizes)) if args.sizes else ""
    name = f"dplr{'_quick' if args.quick else ''}{sizes}.json"
    write(ROOT / "benchmarks" / "results" / name, grid, rows)


def write(path: Path, grid: dict, rows: list[dict]) -> None:
    devices = [str(d) for d in jax.devices()]
    path.write_text(json.dumps({"grid": grid, "devices": devices, "rows": rows}, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
