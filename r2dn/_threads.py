"""One BLAS thread for the small LAPACK calls of direct → explicit, set where r2dn runs.

jaxlib runs the LU, Cholesky and triangular solves of direct → explicit through the LAPACK of
SciPy's OpenBLAS, whose pool has a thread per core. On these small matrices a second thread
gains nothing, and when another process holds a core every call waits for the descheduled
thread: the F-16 R2DN's gradient took ~9× longer with the other core busy (docs/benchmarks.md).
`limit_blas_threads` is called by r2dn's entry points (`r2dn.simulation.simulate`, `fit`, the
command line), so users need not set ``OPENBLAS_NUM_THREADS=1`` themselves.
"""

import os

from threadpoolctl import threadpool_limits

#: Environment variables by which a user chooses BLAS threads; if any is set, r2dn leaves them.
USER_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_done = False


def limit_blas_threads() -> None:
    """Limit every loaded BLAS pool to one thread, once per process (a no-op after that).

    Leaves them alone if the user chose a thread count through `USER_SETTINGS`. XLA's own
    matrix products do not use these pools, so nothing else in r2dn slows down.

    >>> limit_blas_threads()
    >>> from threadpoolctl import threadpool_info
    >>> import os
    >>> any(k in os.environ for k in USER_SETTINGS) or all(
    ...     p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    True
    """
    global _done
    if _done:
        return
    _done = True
    if any(name in os.environ for name in USER_SETTINGS):
        return
    import scipy.linalg.cython_lapack  # noqa: F401  (loads the OpenBLAS that jaxlib calls)

    threadpool_limits(limits=1, user_api="blas")
