"""NumPy's BLAS threads in worker processes (``nnparity check --jobs``, ``nnparity reproduce
--jobs``): the cores shared out. Two processes on two cores with OpenBLAS' default of a thread
per core each took 9.8-10.0 s for three ThreeNet epochs, 1.9-2.0 s with one thread each."""

from __future__ import annotations

import multiprocessing
import os

from nnparity.cli import main
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


def test_reproduce_starts_its_workers_with_their_share(monkeypatch):
    """The workers are spawned while the pool is made: the environment then is theirs."""
    seen = []

    class Spying:
        def __init__(self, method: str) -> None:
            self.context = multiprocessing.get_context(method)

        def Pool(self, *args, **kwargs):  # multiprocessing's name
            seen.append(os.environ.get(BLAS_THREADS))
            return self.context.Pool(*args, **kwargs)

    monkeypatch.setattr("nnparity.training.reproduce.get_context", Spying)
    monkeypatch.delenv(BLAS_THREADS, raising=False)
    assert main(["reproduce", "-k", "^seed000-iris$", "--seeds", "2", "--jobs", "2"]) == 0
    assert seen == [str(max(1, (os.cpu_count() or 1) // 2))]
    assert BLAS_THREADS not in os.environ
