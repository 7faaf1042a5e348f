"""Tasks run in this process or on a Dask distributed cluster: the one layer ``fuzz`` and
``reproduce`` send their work through.

:func:`connect` gives the :class:`Tasks` of a scheduler address (or of this process), whose
``run`` takes a module-level function and its items and yields each result as it finishes
(:class:`Done`: the item's index, the worker that ran it, the value). Without a scheduler
address the items run here, in order, one after the other (worker ``local``); with one
(``--scheduler tcp://HOST:PORT``) each item is one Dask task. Dask reruns the task of a worker
lost mid-run on another worker, and each task's future completes once, so no result is lost or
counted twice; the functions sent are pure, so a rerun gives the same value. Workers need
nnparity and the same backends installed (and, for ``reproduce``, the data folder).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nnparity.errors import InputError

A = TypeVar("A")
R = TypeVar("R")
LOCAL = "local"
CONNECT_TIMEOUT = "10s"
EXTRA = "pip install nnparity[distributed]"


@dataclass(frozen=True)
class Done(Generic[R]):
    """Item ``index``'s ``value``, computed by ``worker`` (its address, or ``local``)."""

    index: int
    worker: str
    value: R


def _on_worker(fn: Callable[[Any], Any], item: Any) -> tuple[str, Any]:
    """Run on a Dask worker: the worker's address and ``fn(item)``."""
    from distributed import get_worker

    return get_worker().address, fn(item)


def _client(scheduler: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise InputError(f"--scheduler {scheduler}: Dask distributed is not installed "
                         f"({EXTRA})") from None
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there "
                         f"({type(exc).__name__}: {exc})") from None


class Tasks:
    """Where a command's tasks run: this process (``client`` None) or a Dask cluster."""

    def __init__(self, client: Any = None) -> None:
        self.client = client

    def run(self, fn: Callable[[A], R], items: Sequence[A]) -> Iterator[Done[R]]:
        """``fn`` over ``items``, each result yielded as it finishes (module docstring).
        Stopping the iteration early cancels the tasks not yet done."""
        if self.client is None:
            for index, item in enumerate(items):
                yield Done(index, LOCAL, fn(item))
            return
        from distributed import as_completed

        run = uuid.uuid4().hex[:12]
        futures: dict[Any, int] = {}
        try:
            for index, item in enumerate(items):
                key = f"nnparity-{run}-{index}"
                futures[self.client.submit(_on_worker, fn, item, key=key)] = index
            for future in as_completed(futures):
                worker, value = future.result()
                yield Done(futures[future], worker, value)
        finally:
            self.client.cancel(list(futures))


@contextmanager
def connect(scheduler: str | None) -> Iterator[Tasks]:
    """The :class:`Tasks` of ``--scheduler`` (None: this process), connected before any work
    starts (an unreachable scheduler is an :class:`InputError`), closed on the way out."""
    client = None if scheduler is None else _client(scheduler)
    try:
        yield Tasks(client)
    finally:
        if client is not None:
            client.close()
