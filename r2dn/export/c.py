"""Export to C99: a header ``NAME.h`` and a source ``NAME.c`` with the weights as static consts.

The C step has no allocation and no dependency beyond libm, so it runs in a real-time loop
on an embedded computer::

    #include "NAME.h"
    NAME_state s;
    NAME_reset(&s);                /* the zero state */
    NAME_step(&s, u, y);           /* u[NAME_NU] in, y[NAME_NY] out */

It computes exactly the step of `r2dn.export.runtime` (the same arrays, in ``float`` or
``double``). `driver_source` writes a small ``main`` that runs a model over inputs read from
stdin and times each step with ``clock_gettime``; `compile_program` builds it with the system
C compiler (tests, benchmarks/latency.py).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from r2dn._files import atomic_write
from r2dn.export.arrays import Export, check_name, export_arrays
from r2dn.io import TrainedModel
from r2dn.models import AbstractRecurrentModel

#: ``dtype`` → the C type.
C_TYPES = {"float32": "float", "float64": "double"}

#: Each activation as a C expression of ``v``; ``F`` is the libm suffix (``f`` for float).
_ACTIVATIONS = {
    "relu": "v > 0 ? v : 0",
    "tanh": "tanh{F}(v)",
    "sigmoid": "1 / (1 + exp{F}(-v))",
    "softplus": "(v > 0 ? v : 0) + log1p{F}(exp{F}(-fabs{F}(v)))",
    "elu": "v > 0 ? v : expm1{F}(v)",
    "leaky_relu": "v >= 0 ? v : (real)0.01 * v",
    "identity": "v",
}

#: Options a user would build with for speed (benchmarks/latency.py uses them).
FAST_FLAGS = ("-O3", "-march=native")


def to_c(
    model: AbstractRecurrentModel | TrainedModel,
    out_dir: str | Path,
    *,
    name: str = "model",
    dtype: str | None = None,
) -> tuple[Path, Path]:
    """Write ``NAME.h`` and ``NAME.c`` to ``out_dir``; returns their paths.

    ``dtype`` is "float32" (C ``float``) or "float64" (``double``); default: the model's own.
    With a `TrainedModel` the step takes and returns physical units (its normaliser is
    applied), as `TrainedModel.predict` does.

    >>> import jax, r2dn, tempfile
    >>> model = r2dn.ContractingREN(2, 4, 8, 1, key=jax.random.key(0))
    >>> header, source = to_c(model, tempfile.mkdtemp(), name="ren", dtype="float64")
    >>> "void ren_step(ren_state *state, const double u[2], double y[1]);" in header.read_text()
    True
    """
    return write_c(export_arrays(model, dtype), out_dir, name)


def write_c(exported: Export, out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write the C files of already exported arrays (`to_c` without the export)."""
    check_name(name)
    out_dir = Path(out_dir)
    paths = out_dir / f"{name}.h", out_dir / f"{name}.c"
    for path, text in zip(
        paths, (header_source(exported, name), c_source(exported, name)), strict=True
    ):
        with atomic_write(path) as f:
            f.write(text.encode())
    return paths


def header_source(exported: Export, name: str) -> str:
    """The text of ``NAME.h``: what the model is, its sizes and the two functions."""
    sizes, real = exported.deployed.sizes, C_TYPES[exported.dtype]
    about = "".join(f" * {key}: {value}\n" for key, value in exported.description.items())
    guard = f"{name.upper()}_H_"
    return f"""/* {name}.h: a recurrent model exported by r2dn (C99, needs only libm).
 *
{about} *
 * Usage (no allocation; the state is all the memory a model instance needs):
 *     {name}_state s;
 *     {name}_reset(&s);             zero state
 *     {name}_step(&s, u, y);        u[{name.upper()}_NU] in, y[{name.upper()}_NY] out
 */
#ifndef {guard}
#define {guard}

#ifdef __cplusplus
extern "C" {{
#endif

#define {name.upper()}_NU {sizes["nu"]}
#define {name.upper()}_NX {sizes["nx"]}
#define {name.upper()}_NY {sizes["ny"]}

typedef {real} {name}_real;

typedef struct {{
    {real} x[{sizes["nx"]}];
}} {name}_state;

/* Set the state to zero (the state every r2dn simulation starts from). */
void {name}_reset({name}_state *state);

/* One time step: read u, write y, advance the state. */
void {name}_step({name}_state *state, const {real} u[{sizes["nu"]}], {real} y[{sizes["ny"]}]);

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""


def c_source(exported: Export, name: str) -> str:
    """The text of ``NAME.c``: the weights and the step of `r2dn.export.runtime` in C."""
    d = exported.deployed
    real = C_TYPES[exported.dtype]
    suffix = "f" if real == "float" else ""
    sizes = d.sizes
    nu, nx, ny, q1, qL = (sizes[k] for k in ("nu", "nx", "ny", "q1", "qL"))
    n_in = nx + q1 + ny
    weights = [
        _array("U", d.U, real),
        _array("offset", d.offset, real),
        _array("S", d.S, real),
        _array("Cy", d.Cy, real),
    ]
    if q1:
        weights += [_array("G", d.G, real), _array("Hy", d.Hy, real)]
    weights += [_array(f"M{k}", M, real) for k, M in enumerate(d.mids)]
    weights += [_array(f"b{k}", b, real) for k, b in enumerate(d.mid_biases)]
    if d.D11 is not None:  # only the strictly lower part, row by row
        rows = np.concatenate([d.D11[i, :i] for i in range(1, q1)] or [np.zeros(0)])
        if rows.size:
            weights.append(_array("D11", rows, real))
    weights += [_array(k, getattr(d, k), real) for k in ("u_mean", "u_std", "y_mean", "y_std")]
    sigma = _ACTIVATIONS[d.activation].format(F=suffix)

    phi = []
    if q1:
        phi += [
            f"    {real} z0[{q1}];",
            f"    for (int j = 0; j < {q1}; j++) z0[j] = in[{nx} + j];",
            f"    add_xM({nx}, {q1}, x, &G[0][0], z0);",
        ]
        if d.D11 is None:  # R2DN: hidden layers z ← σ(z) M_k + b_k, then h = σ(z)
            for k, M in enumerate(d.mids):
                p, q = M.shape
                phi += [
                    f"    for (int j = 0; j < {p}; j++) z{k}[j] = sigma(z{k}[j]);",
                    f"    {real} z{k + 1}[{q}];",
                    f"    for (int j = 0; j < {q}; j++) z{k + 1}[j] = b{k}[j];",
                    f"    add_xM({p}, {q}, z{k}, &M{k}[0][0], z{k + 1});",
                ]
            last = f"z{len(d.mids)}"
            phi += [f"    for (int j = 0; j < {qL}; j++) {last}[j] = sigma({last}[j]);"]
        else:  # REN: h_i = σ(z_i + Σ_{j<i} D11_ij h_j), in place, row by row
            last = "z0"
            phi += ["    z0[0] = sigma(z0[0]);"]
            phi += (
                [
                    f"    for (int i = 1, row = 0; i < {q1}; row += i, i++) {{",
                    f"        {real} v = z0[i];",
                    "        for (int j = 0; j < i; j++) v += D11[row + j] * z0[j];",
                    "        z0[i] = sigma(v);",
                    "    }",
                ]
                if q1 > 1
                else []
            )
        phi += [f"    const {real} *h = {last};"]
    h_terms = (
        [
            f"    add_xM({qL}, {ny}, h, &Hy[0][0], yy);",
            f"    add_xM({qL}, {nx}, h, &S[{nx}][0], xn);",
        ]
        if q1
        else []
    )
    body = "\n".join(
        [
            f"    {real} in[{n_in}], un[{nu}], yy[{ny}], xn[{nx}];",
            f"    const {real} *x = state->x;",
            f"    for (int i = 0; i < {nu}; i++) un[i] = (u[i] - u_mean[i]) / u_std[i];",
            f"    for (int j = 0; j < {n_in}; j++) in[j] = offset[j];",
            f"    add_xM({nu}, {n_in}, un, &U[0][0], in);",
            *phi,
            f"    for (int j = 0; j < {ny}; j++) yy[j] = in[{nx + q1} + j];",
            f"    add_xM({nx}, {ny}, x, &Cy[0][0], yy);",
            f"    for (int j = 0; j < {nx}; j++) xn[j] = in[j];",
            f"    add_xM({nx}, {nx}, x, &S[0][0], xn);",
            *h_terms,
            f"    for (int j = 0; j < {ny}; j++) y[j] = yy[j] * y_std[j] + y_mean[j];",
            f"    for (int j = 0; j < {nx}; j++) state->x[j] = xn[j];",
        ]
    )
    return f"""/* {name}.c: the step of the model described in {name}.h (generated by r2dn).
 *
 * Row vectors; x the state, u the normalised input (u - u_mean) / u_std:
 *     [e, c, y_u] = u U + offset,   z = x G + c,   h = phi(z),
 *     x+ = [x, h] S + e,            y = (x Cy + h Hy + y_u) * y_std + y_mean,
 * phi: {
        "hidden layers z <- sigma(z) M_k + b_k, then h = sigma(z)"
        if d.D11 is None
        else "the equilibrium h_i = sigma(z_i + sum_(j<i) D11_ij h_j), row by row"
    }.
 */
#include <math.h>

#include "{name}.h"

typedef {real} real;

{chr(10).join(weights)}

{f"static real sigma(real v) {{ return {sigma}; }}" if q1 else ""}

/* out[j] += sum_i x[i] M[i][j] for an n-by-m row-major M. */
static void add_xM(int n, int m, const real *restrict x, const real *restrict M,
                   real *restrict out) {{
    for (int i = 0; i < n; i++) {{
        const real xi = x[i];
        const real *row = M + (long)i * m;
        for (int j = 0; j < m; j++) out[j] += xi * row[j];
    }}
}}

void {name}_reset({name}_state *state) {{
    for (int i = 0; i < {nx}; i++) state->x[i] = 0;
}}

void {name}_step({name}_state *state, const real u[{nu}], real y[{ny}]) {{
{body}
}}
"""


def _literal(value: float, real: str) -> str:
    """A C literal that reads back as exactly ``value`` in ``real``."""
    if not np.isfinite(value):
        raise ValueError(f"cannot export a model with a non-finite weight ({value})")
    text = f"{value:.9g}" if real == "float" else f"{value:.17g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + ("f" if real == "float" else "")


def _array(name: str, array: np.ndarray, real: str) -> str:
    """``static const real NAME[m][n] = {…};`` with the values of ``array`` (1-D or 2-D)."""
    dims = "".join(f"[{n}]" for n in array.shape)
    rows = np.atleast_2d(array)
    lines = []
    for row in rows:
        values = [_literal(float(v), real) for v in row]
        chunks = [", ".join(values[i : i + 4]) for i in range(0, len(values), 4)]
        lines.append(
            "{" + ",\n     ".join(chunks) + "}" if array.ndim == 2 else ",\n    ".join(chunks)
        )
    inner = ",\n    ".join(lines)
    return f"static const real {name}{dims} = {{\n    {inner}\n}};"


def compiler() -> str | None:
    """The system C compiler (``cc``, ``gcc`` or ``clang`` on the PATH), or ``None``."""
    return next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)


def compile_program(
    sources: Sequence[str | Path], exe: str | Path, flags: Sequence[str] = FAST_FLAGS
) -> Path:
    """Compile and link C99 ``sources`` (with libm) into the program ``exe``.

    Warnings are errors (``-Wall -Wextra -pedantic -Werror``): the generated code must be clean.
    """
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (looked for cc, gcc and clang on the PATH)")
    command = [cc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", *flags]
    command += [*map(str, sources), "-o", str(exe), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return Path(exe)


def driver_source(name: str) -> str:
    """A ``main`` that runs model ``name`` from the zero state and times every step.

    ``./prog T [TIMES] < inputs > outputs``: raw ``name_real`` values, ``T×NU`` in and ``T×NY``
    out (row-major); with ``TIMES`` the nanoseconds of each step (``clock_gettime``, int64)
    are written there.
    """
    check_name(name)
    N = name.upper()
    return f"""#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "{name}.h"

int main(int argc, char **argv) {{
    if (argc < 2) {{
        fprintf(stderr, "usage: %s T [TIMES] < inputs > outputs\\n", argv[0]);
        return 2;
    }}
    long T = atol(argv[1]);
    {name}_real *u = malloc(sizeof *u * T * {N}_NU), *y = malloc(sizeof *y * T * {N}_NY);
    long long *ns = malloc(sizeof *ns * T);
    if (!u || !y || !ns) return 3;
    if (fread(u, sizeof *u, (size_t)(T * {N}_NU), stdin) != (size_t)(T * {N}_NU)) return 4;
    {name}_state s;
    {name}_reset(&s);
    struct timespec a, b;
    for (long t = 0; t < T; t++) {{
        clock_gettime(CLOCK_MONOTONIC, &a);
        {name}_step(&s, u + t * {N}_NU, y + t * {N}_NY);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns[t] = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    }}
    fwrite(y, sizeof *y, (size_t)(T * {N}_NY), stdout);
    if (argc > 2) {{
        FILE *f = fopen(argv[2], "wb");
        if (!f) return 5;
        fwrite(ns, sizeof *ns, (size_t)T, f);
        fclose(f);
    }}
    free(u);
    free(y);
    free(ns);
    return 0;
}}
"""
