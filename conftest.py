"""Shared test helpers (tests and doctests): random supply rates, parameter scaling, and a
synthetic copy of the F-16 benchmark files.

The suite runs with 64-bit floats enabled, because certificates are checked in float64;
tests of float32 behaviour pass ``dtype=jnp.float32`` (the library default) explicitly.
"""

import os
import shutil
from pathlib import Path

# The suite's models are tiny and each is compiled once, so LLVM's optimisation of the
# generated code costs more than it saves: at level 0 test_dplr.py took 101 s instead of 142 s
# and test_r2dn.py 138 s instead of 190 s (one core each, side by side). The level changes how
# fast the code runs, not what it computes (up to rounding); the docs build, `make demo` and
# the wheel check run at XLA's default. Set before JAX starts its backend; subprocesses of
# tests inherit it.
XLA_TEST_FLAG = "--xla_backend_optimization_level=0"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_TEST_FLAG}".strip()

# Most of the suite's time is XLA compiling its many small models. JAX's persistent cache
# (entries keyed by the compiled program and the flags, so a changed program never reuses a
# stale one) makes every run after the first faster; it lives in .pytest_cache (removed by
# `make clean`); the environment carries it to the subprocesses of the command-line tests.
# pytest_configure empties it past CACHE_LIMIT_BYTES (a run adds ~64 MB after a code change).
# JAX's own limit lists the whole folder at every write, which made a cold run about twice as
# slow (extrapolated from a run stopped at 58 %). A cold run with this cache: 9 min 43 s, as
# without it (9 min 44 s); the next run: 3 min 40 s.
PERSISTENT_CACHE = {
    "jax_compilation_cache_dir": str(Path(__file__).parent / ".pytest_cache" / "jax"),
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": -1,
}
for option, value in PERSISTENT_CACHE.items():
    os.environ.setdefault(option.upper(), str(value))

CACHE_LIMIT_BYTES = 2**30

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from r2dn.parameterizations import StrictContraction, SupplyRate  # noqa: E402

jax.config.update("jax_enable_x64", True)
# JAX reads those variables when it is first imported; set them again in case a plugin or an
# earlier conftest imported it before this file ran.
for option, value in PERSISTENT_CACHE.items():
    jax.config.update(option, type(value)(os.environ[option.upper()]))


def pytest_configure(config: pytest.Config) -> None:
    """Empty the persistent compilation cache past its limit (once, before the workers start)."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller has done it
        return
    cache = Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    if cache.is_dir() and sum(f.stat().st_size for f in cache.iterdir()) > CACHE_LIMIT_BYTES:
        shutil.rmtree(cache)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module.

    Every executable XLA compiles holds memory mappings of its own, and a worker of the suite
    compiles tens of thousands (hundreds of model sizes, each op of each eager call). Kept
    for the whole run, one worker's mappings reached Linux's per-process limit
    (``vm.max_map_count``, 65,530 by default; 65,428 measured) near the end of ``make test``,
    and XLA crashed with a segmentation fault in its next compilation. Cleared after each
    module, a worker peaks at 19,000 mappings and 3.6 GB (5.4 GB before); modules share little
    compiled code (13 min 7 s clearing after each module, 13 min 13 s clearing only past half
    the limit, one run each on the same machine).
    ``tests/test_suite_health.py`` checks that clearing releases the mappings.
    """
    yield
    jax.clear_caches()


def random_supply(rng: np.random.Generator, nu: int, ny: int) -> SupplyRate:
    """A random valid (Q, S, R): Q ≺ 0 and R − S Q⁻¹ Sᵀ ≻ 0 by construction."""
    A = rng.normal(size=(ny, ny))
    Q = -(A @ A.T + 0.1 * np.eye(ny))
    S = 0.5 * rng.normal(size=(nu, ny))
    B = rng.normal(size=(nu, nu))
    R = S @ np.linalg.solve(Q, S.T) + B @ B.T + 0.1 * np.eye(nu)
    return SupplyRate(Q, S, (R + R.T) / 2)


def scale_parameters(model, scale: float, contraction_scale: float):
    """Multiply every free array by ``scale``, and strict-contraction parameters by their own.

    Cayley contractions approach the unit sphere as O(ε) at zero and O(1/s²) at scale s, so
    beyond a scale of a few their certified margin is below what float64 can resolve; they are
    scaled separately over the range where the check is meaningful.
    """
    is_contraction = lambda x: isinstance(x, StrictContraction)  # noqa: E731

    def scale_leaf(x):
        if is_contraction(x):
            return jax.tree.map(lambda a: a * contraction_scale, x)
        return x * scale if eqx.is_inexact_array(x) else x

    return jax.tree.map(scale_leaf, model, is_leaf=is_contraction)


# The official F-16 files' names and columns (what the experiments must read); Fs is the
# sampling rate, given in every row as in the real files.
F16_FILES = [f"F16Data_FullMSine_Level{k}.csv" for k in (1, 3, 5, 7)] + [
    f"F16Data_FullMSine_Level{k}_Validation.csv" for k in (2, 4, 6)
]
F16_COLUMNS = ("Force", "Voltage", "Acceleration1", "Acceleration2", "Acceleration3", "Fs")


def write_f16_files(root: Path, rows: int = 300) -> Path:
    """The seven F-16 CSVs in ``root``, with the benchmark's columns and random rows."""
    rng = np.random.default_rng(0)
    header = ",".join(f'"{c}"' for c in F16_COLUMNS)
    for name in F16_FILES:
        values = np.column_stack([rng.normal(size=(rows, 5)), np.full(rows, 400.0)])
        (root / name).write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in values))
    return root
