"""The solver tests run their BLAS single-threaded: their linear algebra is tiny (b ≤ 50 here),
and OpenBLAS's second thread only waits for a core. With a busy second core (another test worker,
a background job) L-BFGS-B at b = 50 took 6-21 s instead of 0.8-1.5 s per hard instance."""

import pytest

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # not a test dependency: without it the tests are slower, never different
    threadpool_limits = None


@pytest.fixture(scope="package", autouse=True)
def _one_blas_thread():
    if threadpool_limits is None:
        yield
        return
    import numpy  # noqa: F401  (threadpoolctl limits the BLAS libraries loaded when it is called:
    import scipy.linalg  # noqa: F401  numpy's and scipy's own OpenBLAS)

    with threadpool_limits(limits=1, user_api="blas"):
        yield
