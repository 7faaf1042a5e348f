"""Each row of ``nnparity bench``'s epoch and CNN tables timed in a process of its own.

A user trains with one framework per process (``nnparity train --backend NAME``); a benchmark
that ran every framework in one process measured something else: after TensorFlow's and JAX's
steps their thread pools keep running, and on the process CPU clock every later row paid for
them (measured on a 2-core machine, one process for all four backends against one per backend:
the reference's CNN step 0.131 s against 0.105 s, torch's 0.134 s against 0.108 s, the NumPy
matmul peak 72.6 against 85.6 GFLOP/s). So each row is a child process (:func:`serve`, run as
``python -m nnparity.bench.rows``) that imports only its own framework, pins glibc's allocator as
``train`` does, builds its workload, runs its first step (reported on its own) and the warm-up,
then times one run of the workload each time the parent asks. The parent asks the rows in turn,
round after round, so a slow moment of a loaded machine hits every row alike, and keeps each
row's best round.

Workloads: ``epoch BENCH ROWS`` (one epoch of MLP benchmark number BENCH on ROWS synthetic rows),
``step`` (one Adam step of the notes' CNN) and ``matmul`` (one 2048^2 float32 NumPy matmul, the
peak's unit); each with the row's name (a backend or a loop).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial

from nnparity.errors import InputError
from nnparity.parallel import die_with_parent

READY = "ready"
RUN = "run"


@dataclass(frozen=True)
class Row:
    """One row of a table: ``name`` (a backend or loop) running ``workload`` (with its
    arguments), timed on ``clock``."""

    name: str
    workload: tuple[str, ...]
    clock: str


def _workload(row: Row) -> Callable[[int | None], object]:
    """``run(limit)``: the row's unit of work (``limit``: the first steps only, a warm-up)."""
    from nnparity.bench import speed

    kind, *rest = row.workload
    if kind == "epoch":
        bench = speed.MLP_BENCHMARKS[int(rest[0])]
        return speed.mlp_epoch(bench, row.name, speed.mlp_batches(int(rest[1]), bench.batch))
    if kind == "step":
        step = speed.cnn_step(row.name)
        return lambda limit=None: [step() for _ in range(1 if limit is None else limit)]
    if kind == "matmul":
        product = speed.square_matmul()
        return lambda limit=None: product()
    raise ValueError(f"unknown workload {kind!r}")


def serve(row: Row) -> None:
    """The child's side: build the workload, report the first step's seconds (wall) after
    ``READY``, warm up, then answer each ``RUN`` line with one timed run's seconds."""
    from nnparity.allocator import pin_allocator
    from nnparity.backends.determinism import apply_determinism
    from nnparity.bench.speed import CLOCKS, WARMUP_STEPS

    die_with_parent()
    apply_determinism()  # threads from $NNPARITY_THREADS, as the parent was set up
    pin_allocator()
    run = _workload(row)
    started = time.perf_counter()
    run(1)
    first = time.perf_counter() - started
    run(WARMUP_STEPS)
    print(f"{READY} {first!r}", flush=True)
    now = CLOCKS[row.clock]
    for line in sys.stdin:
        if line.strip() != RUN:
            break
        started = now()
        run(None)
        print(repr(now() - started), flush=True)


class RowProcess:
    """A row's child process, started and set up (its first step measured)."""

    def __init__(self, row: Row) -> None:
        self.row = row
        argv = [sys.executable, "-m", "nnparity.bench.rows", row.name, row.clock, *row.workload]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self.first_step = float(self._answer(READY))

    def _answer(self, tag: str = "") -> str:
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith(tag) or not line.strip():
            self.process.kill()
            raise InputError(f"bench row {self.row.name!r} ({' '.join(self.row.workload)}) "
                             f"ended without a result (exit {self.process.wait()})")
        return line[len(tag):].strip()

    def time_once(self) -> float:
        """Seconds of one run of the workload, on the row's clock."""
        assert self.process.stdin is not None
        self.process.stdin.write(RUN + "\n")
        self.process.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        """End the child (it reads end of input and exits; killed if it does not)."""
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Measured:
    """A row's best round and its first step (seconds)."""

    best: float
    first_step: float


def time_rows(rows: list[Row], repeats: int) -> dict[str, Measured]:
    """Each row in a process of its own, the rows taking turns in every one of ``repeats``
    rounds; every child ends before this returns, on every way out."""
    with ExitStack() as stack:
        processes: list[RowProcess] = []
        try:
            for row in rows:
                process = RowProcess(row)
                stack.callback(process.close)
                processes.append(process)
            best = {p.row.name: float("inf") for p in processes}
            for _ in range(repeats):
                for process in processes:
                    best[process.row.name] = min(best[process.row.name], process.time_once())
        except BaseException:  # Ctrl-C, a signal's stop, an error: no row finishes its run
            for process in processes:
                process.process.kill()
            raise
        return {p.row.name: Measured(best[p.row.name], p.first_step) for p in processes}


def rows_of(names: list[str], workload: tuple[str, ...], clock: str) -> list[Row]:
    """One :class:`Row` per name, all running ``workload``."""
    return list(map(partial(Row, workload=workload, clock=clock), names))


if __name__ == "__main__":  # python -m nnparity.bench.rows NAME CLOCK WORKLOAD...
    try:
        serve(Row(sys.argv[1], tuple(sys.argv[3:]), sys.argv[2]))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole group: the parent reports the stop
        sys.exit(130)
