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


def blas_threads(code: str, **env: str) -> list[int]:
    """BLAS pool sizes after ``code`` runs in a new interpreter with ``env`` added."""
    clean = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    script = "import json\nimport scipy.linalg.cython_lapack\n" + code + REPORT
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")
def test_blas_has_a_thread_per_core_until_r2dn_runs():
    """The premise: without r2dn's limit, OpenBLAS starts a thread per core."""
    assert max(blas_threads("import r2dn")) > 1


@pytest.mark.parametrize("entry", [SIMULATE, FIT], ids=["simulate", "fit"])
def test_simulate_and_fit_limit_blas_to_one_thread(entry):
    assert set(blas_threads(entry)) == {1}


def test_a_thread_count_the_user_chose_is_left_alone():
    code = "from r2dn._threads import limit_blas_threads\nlimit_blas_threads()\n"
    assert set(blas_threads(code, OPENBLAS_NUM_THREADS="2")) == {2}
