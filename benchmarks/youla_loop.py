"""A real-time loop in C: the Youla controller of the paper's experiment, exported, with the plant.

The controller ``Q`` (the paper's contracting R2DN: nx = 10, nv = 100, hidden (140,)×4, tanh;
`experiments.youla.spec`) is exported with `r2dn.export.to_c` and closed around the plant
``T(z)`` of `r2dn.examples.youla` in a C program: per step, ``ỹ = −T w``, ``ũ = clip(Q(ỹ))``,
``z = T w + T ũ``, for 10⁵ steps of piecewise-constant disturbances. The closed-loop cost
``mean |z| + 10⁻⁴ mean ũ²`` must equal that of `r2dn.examples.youla.closed_loop` in JAX (same
dtype) to within float32 round-off; the loop rate is the steps per second of the whole C loop.

    python benchmarks/youla_loop.py                      # 10⁵ steps, the paper's Q (as built)
    python benchmarks/youla_loop.py --model Q.r2dn       # a trained Q saved with r2dn.save_model
    python benchmarks/youla_loop.py --quick              # a small Q, 10⁴ steps
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np

import r2dn
from r2dn.examples import youla
from r2dn.export.c import C_TYPES, FAST_FLAGS, compile_program, compiler, to_c

RESULTS = Path(__file__).parent / "results"


def loop_source(name: str, real: str) -> str:
    """A C ``main``: the closed loop with the exported controller ``name`` over ``w`` (stdin).

    Prints the cost, the seconds of the loop and the steps per second.
    """
    with jax.enable_x64(True):
        a, b, c = (np.asarray(M).ravel() for M in youla.plant(np.float64))

    def values(v):
        return ", ".join(repr(float(x)) for x in v)

    return f"""#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "{name}.h"

typedef {real} real;
static const real TA[4] = {{{values(a)}}}, TB[2] = {{{values(b)}}}, TC[2] = {{{values(c)}}};

int main(int argc, char **argv) {{
    if (argc != 2) return 2;
    long steps = atol(argv[1]);
    real *w = malloc(sizeof *w * steps);
    if (!w || fread(w, sizeof *w, (size_t)steps, stdin) != (size_t)steps) return 4;
    real xd[2] = {{0, 0}}, xu[2] = {{0, 0}};   /* T's state under w and under u */
    {name}_state q;
    {name}_reset(&q);
    double sum_abs_z = 0, sum_u2 = 0;
    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long t = 0; t < steps; t++) {{
        real Tw = TC[0] * xd[0] + TC[1] * xd[1], Tu = TC[0] * xu[0] + TC[1] * xu[1];
        real y = -Tw, u;
        {name}_step(&q, &y, &u);
        if (u > {youla.U_MAX!r}) u = {youla.U_MAX!r};
        if (u < -{youla.U_MAX!r}) u = -{youla.U_MAX!r};
        real z = Tw + Tu;
        sum_abs_z += z < 0 ? -z : z;
        sum_u2 += (double)u * u;
        real d0 = TA[0] * xd[0] + TA[1] * xd[1] + TB[0] * w[t];
        real d1 = TA[2] * xd[0] + TA[3] * xd[1] + TB[1] * w[t];
        real u0 = TA[0] * xu[0] + TA[1] * xu[1] + TB[0] * u;
        real u1 = TA[2] * xu[0] + TA[3] * xu[1] + TB[1] * u;
        xd[0] = d0; xd[1] = d1; xu[0] = u0; xu[1] = u1;
    }}
    clock_gettime(CLOCK_MONOTONIC, &stop);
    double seconds = (stop.tv_sec - start.tv_sec) + 1e-9 * (stop.tv_nsec - start.tv_nsec);
    double cost = sum_abs_z / steps + {youla.CONTROL_WEIGHT!r} * sum_u2 / steps;
    printf("%.17g %.17g\\n", cost, seconds);
    free(w);
    return 0;
}}
"""


def c_closed_loop(policy, w: np.ndarray, folder: Path, dtype: str) -> tuple[float, float]:
    """Cost and loop seconds of the C loop with ``policy`` over disturbances ``w (T,)``."""
    to_c(policy, folder, name="youla_q", dtype=dtype)
    (folder / "loop.c").write_text(loop_source("youla_q", C_TYPES[dtype]))
    exe = compile_program([folder / "youla_q.c", folder / "loop.c"], folder / "loop", FAST_FLAGS)
    out = subprocess.run(
        [exe, str(len(w))], input=w.astype(dtype).tobytes(), capture_output=True, check=True
    )
    cost, seconds = map(float, out.stdout.split())
    return cost, seconds


def jax_cost(policy, w: np.ndarray) -> float:
    """The closed-loop cost of `r2dn.examples.youla.closed_loop`, in the policy's dtype."""
    _, z, u = jax.jit(youla.closed_loop)(policy, w[None, :, None].astype(policy.dtype))
    return float(youla.cost(z, u))


def main() -> None:
    from experiments.youla import PRESETS, spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small Q and 10⁴ steps")
    parser.add_argument("--model", type=Path, help="a trained Q (r2dn.save_model)")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    if compiler() is None:
        raise SystemExit("no C compiler (cc, gcc or clang) on the PATH")
    steps = args.steps or (10_000 if args.quick else 100_000)
    if args.model:
        policy = r2dn.load_model(args.model).model
    else:
        policy = spec("r2dn", PRESETS["tiny" if args.quick else "paper"]).build(jax.random.key(0))
    dtype = np.dtype(policy.dtype).name
    w = np.asarray(youla.disturbances(jax.random.key(1), 1, steps))[0, :, 0]
    with tempfile.TemporaryDirectory() as folder:
        c_cost, seconds = c_closed_loop(policy, w, Path(folder), dtype)
    reference = jax_cost(policy, w)
    result = {
        "controller": f"{type(policy).__name__} nx={policy.nx} nv={policy.nv}",
        "dtype": dtype,
        "steps": steps,
        "cost_c": c_cost,
        "cost_jax": reference,
        "relative_difference": abs(c_cost - reference) / abs(reference),
        "loop_rate_hz": steps / seconds,
        "step_us": 1e6 * seconds / steps,
        "flags": list(FAST_FLAGS),
    }
    for key, value in result.items():
        print(f"{key:>20s}: {value}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"youla_loop{'_quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
