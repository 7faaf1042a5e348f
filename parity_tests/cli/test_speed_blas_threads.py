"""NumPy's BLAS threads in worker processes (``nnparity check --jobs``): the cores shared out."""

from __future__ import annotations

import os

from nnparity.parallel import BLAS_THREADS, blas_threads_per_worker


def test_each_worker_gets_its_share_of_the_cores_and_the_parent_is_restored():
    environ: dict[str, str] = {}
    with blas_threads_per_worker(2, environ):
        assert environ[BLAS_THREADS] == str(max(1, (os.cpu_count() or 1) // 2))
    assert BLAS_THREADS not in environ


def test_more_workers_than_cores_still_get_one_thread():
    environ: dict[str, str] = {}
    with blas_threads_per_worker(10 * (os.cpu_count() or 1), environ):
        assert environ[BLAS_THREADS] == "1"


def test_the_users_own_setting_is_kept():
    environ = {BLAS_THREADS: "7"}
    with blas_threads_per_worker(2, environ):
        assert environ[BLAS_THREADS] == "7"
    assert environ == {BLAS_THREADS: "7"}
