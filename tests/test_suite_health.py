"""The suite's own resource hygiene: what keeps a long ``make test`` worker alive and its
compilation cache bounded.

Each compiled XLA executable holds memory mappings; a worker that kept every one of them hit
Linux's per-process limit (``vm.max_map_count``) and crashed in XLA. The root ``conftest.py``
clears JAX's caches after each test module. The first test checks that clearing releases the
mappings, so that a JAX upgrade which stopped releasing them fails here, by name, instead of as
a segmentation fault at the end of a run; the second, that the tests' persistent compilation
cache is emptied past its limit, once, by the controller.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import conftest

MEMORY_MAPS = Path("/proc/self/maps")


def mappings() -> int:
    """How many memory mappings this process holds."""
    return MEMORY_MAPS.read_bytes().count(b"\n")


@pytest.mark.skipif(
    not MEMORY_MAPS.exists(), reason="memory mappings are counted from Linux's /proc"
)
def test_clearing_jax_caches_releases_the_mappings_of_compiled_code():
    jax.clear_caches()
    before = mappings()
    for n in range(1, 101):  # 100 shapes: 100 executables of their own
        jnp.sin(jnp.ones(n)).block_until_ready()
    grown = mappings() - before
    assert grown >= 100, f"100 compilations added only {grown} mappings: the check is blind"
    jax.clear_caches()
    left = mappings() - before
    assert left < grown / 5, (
        f"jax.clear_caches() released only {grown - left} of the {grown} mappings that 100 "
        "compilations added; the suite's workers will reach vm.max_map_count again "
        "(see conftest.py)"
    )


def test_the_compilation_cache_is_emptied_past_its_limit_by_the_controller_only(
    tmp_path, monkeypatch
):
    class Controller:  # pytest's config, as the controller (not an xdist worker) has it
        pass

    class Worker:
        workerinput: dict = {}

    cache = tmp_path / "jax"
    cache.mkdir()
    (cache / "entry").write_bytes(b"x" * 100)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(cache))
    monkeypatch.setattr(conftest, "CACHE_LIMIT_BYTES", 99)
    conftest.pytest_configure(Worker())
    assert cache.exists()
    monkeypatch.setattr(conftest, "CACHE_LIMIT_BYTES", 100)
    conftest.pytest_configure(Controller())
    assert cache.exists()  # at its limit: kept
    monkeypatch.setattr(conftest, "CACHE_LIMIT_BYTES", 99)
    conftest.pytest_configure(Controller())
    assert not cache.exists()
