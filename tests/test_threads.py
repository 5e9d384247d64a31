"""r2dn limits BLAS to one thread where it runs, unless the user chose a thread count.

Each case runs in a fresh interpreter: the limit is process-wide and set once.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r2dn._threads import USER_SETTINGS

ROOT = Path(__file__).resolve().parent.parent

SIMULATE = """
import jax, jax.numpy as jnp
from r2dn import ContractingR2DN
model = ContractingR2DN(1, 2, 1, 1, key=jax.random.key(0))
model.simulate(model.initial_state(), jnp.ones((5, 1)))
"""
FIT = """
from r2dn import ModelSpec, fit
try:  # no records: an error, raised after the limit was set
    fit(ModelSpec("contracting-r2dn", dict(nu=1, nx=2, nv=2, ny=1)), [], progress=False)
except (ValueError, TypeError, IndexError):
    pass
"""
REPORT = """
from threadpoolctl import threadpool_info
print(json.dumps([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]))
"""


def blas_threads(code: str, **env: str) -> list[list[int]]:
    """BLAS pool sizes at each ``REPORT`` in ``code``, run in a new interpreter with ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", "import json\nimport scipy.linalg.cython_lapack\n" + code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("[")]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")
def test_blas_has_a_thread_per_core_until_simulate_runs():
    """The premise (OpenBLAS starts a thread per core), then r2dn's limit."""
    before, after = blas_threads("import r2dn\n" + REPORT + SIMULATE + REPORT)
    assert max(before) > 1 and set(after) == {1}


def test_fit_limits_blas_to_one_thread():
    assert set(blas_threads(FIT + REPORT)[0]) == {1}


def test_a_thread_count_the_user_chose_is_left_alone():
    code = "from r2dn._threads import limit_blas_threads\nlimit_blas_threads()\n" + REPORT
    assert set(blas_threads(code, OPENBLAS_NUM_THREADS="2")[0]) == {2}
