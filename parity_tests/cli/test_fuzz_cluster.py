"""``fuzz`` and ``reproduce`` through a Dask cluster on 127.0.0.1 (a ``dask scheduler`` and two
``dask worker`` processes started here): the same findings and figures as a run in this
process, the JSON naming the workers, and a worker killed mid-run losing nothing.

The workers preload ``parity_tests/fuzz_planted.py``, so the planted backend exists on them too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_planted import register  # parity_tests/, beside the conftest

from nnparity.cli import main

pytest.importorskip("distributed", reason="Dask distributed is not installed "
                    "(pip install nnparity[distributed])")

PRELOAD = Path(__file__).parents[1] / "fuzz_planted.py"
START_TIMEOUT = 60.0
SPECS = "40"  # seed 2 draws tanh, the planted bug's kind, into specs 11, 17, 24 and 31


def _dask(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for(predicate: Callable[[], object], what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen in {START_TIMEOUT:.0f} s")
        time.sleep(poll)


class Cluster:
    """A scheduler and its workers, each a process of its own session."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "scheduler.json"
        self.processes = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0",
                                "--no-dashboard", "--scheduler-file", str(self.file))]
        _wait_for(self.file.exists, "the scheduler")
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [self.add_worker(f"w{i}") for i in (1, 2)]

    def add_worker(self, name: str) -> subprocess.Popen[bytes]:
        worker = _dask("worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1",
                       "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name,
                       "--preload", str(PRELOAD))
        self.processes.append(worker)
        count = len(self.processes) - 1
        _wait_for(lambda: self.worker_count() >= count, f"worker {name}")
        return worker

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="10s", set_as_default=False)

    def worker_count(self) -> int:
        with self.client() as client:
            return len(client.scheduler_info()["workers"])

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch.setitem, monkeypatch.setattr)


def _fuzz(folder: Path, *extra: str) -> tuple[int, dict]:
    folder.mkdir()
    code = main(["fuzz", "--specs", SPECS, "--seed", "2", "--backends", "numpy,planted",
                 "--out", str(folder), "--json", str(folder / "fuzz.json"), *extra])
    return code, json.loads((folder / "fuzz.json").read_text())


def _findings(doc: dict) -> list[dict]:
    return [{k: v for k, v in f.items() if k != "file"} for f in doc["findings"]]


@pytest.mark.slow
def test_fuzz_on_the_cluster_equals_a_local_run(
        cluster: Cluster, planted: None, tmp_path: Path) -> None:
    local_code, local = _fuzz(tmp_path / "local")
    code, remote = _fuzz(tmp_path / "cluster", "--scheduler", cluster.address)
    assert code == local_code == 1
    assert _findings(remote) == _findings(local) and remote["findings"]
    assert {k: v for k, v in remote["summary"].items() if k != "seconds"} == \
        {k: v for k, v in local["summary"].items() if k != "seconds"}
    assert remote["setup"]["scheduler"] == cluster.address
    assert len(remote["setup"]["workers"]) == 2
    assert all(w.startswith("tcp://127.0.0.1:") for w in remote["setup"]["workers"])
    assert local["setup"]["workers"] == ["local"]


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(
        cluster: Cluster, planted: None, tmp_path: Path) -> None:
    _, local = _fuzz(tmp_path / "local")
    doomed = cluster.add_worker("doomed")
    killed: list[str] = []

    def kill_while_it_runs_a_task() -> None:
        with cluster.client() as client:
            address = next(a for a, w in client.scheduler_info()["workers"].items()
                           if w["name"] == "doomed")
            _wait_for(lambda: client.processing().get(address), "a task on the doomed worker",
                      poll=0.01)
            os.killpg(doomed.pid, signal.SIGKILL)
            killed.append(address)

    killer = threading.Thread(target=kill_while_it_runs_a_task)
    killer.start()
    code, remote = _fuzz(tmp_path / "cluster", "--scheduler", cluster.address)
    killer.join()
    assert killed and doomed.wait(timeout=10) == -signal.SIGKILL
    assert code == 1
    assert _findings(remote) == _findings(local)
    assert remote["summary"]["specs"] == int(SPECS)


@pytest.mark.slow
def test_reproduce_quick_on_the_cluster_gives_the_local_figures(
        cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    figures = []
    for extra in ([], ["--scheduler", cluster.address]):
        assert main(["reproduce", "--quick", "-k", "iris", *extra]) == 0
        out = capsys.readouterr().out
        figures.append([line for line in out.splitlines() if line.startswith("seed0")])
    assert figures[0] == figures[1] and len(figures[0]) == 2
