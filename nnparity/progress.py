"""A tiny progress helper shared by commands.

On a terminal it draws a tqdm bar on stderr; when stdout is not a terminal (CI logs, pipes) it
prints a plain line at most every ``interval`` seconds (and one at the end), or nothing at all
with ``enabled=False``. Usage::

    with Progress(total=len(jobs), desc="check") as bar:
        for job in jobs:
            ...
            bar.update(postfix=job.name)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO, TypeVar

from nnparity.stopping import check_stop

T = TypeVar("T")


def interactive() -> bool:
    """True when stdout and stderr are terminals and ``CI`` is not set."""
    return sys.stdout.isatty() and sys.stderr.isatty() and not os.environ.get("CI")


class Progress:
    """Counts ``update()`` calls towards ``total``; bar on a TTY, occasional lines otherwise."""

    def __init__(
        self,
        total: int,
        desc: str = "",
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = 15.0,
        bar: bool | None = None,
    ) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self.count = 0
        self._started = self._last = time.monotonic()
        self._bar: Any = None
        if enabled and (interactive() if bar is None else bar):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=self.stream, leave=False,
                             dynamic_ncols=True)

    def update(self, n: int = 1, postfix: str = "") -> None:
        """Advance by ``n``; ``postfix`` names the item just finished. A stop asked for by a
        signal is raised here (:func:`nnparity.stopping.check_stop`)."""
        check_stop()
        self.count += n
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval and self.count < self.total:
            self._last = now
            self._line(f"{self.count}/{self.total}" + (f" ({postfix})" if postfix else ""))

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"{self.desc}: {text} [{elapsed:.0f}s]" if self.desc else text,
              file=self.stream, flush=True)

    def close(self) -> None:
        """Remove the bar (or print the final plain line)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.count and time.monotonic() - self._started >= self.interval:
            self._line(f"{self.count}/{self.total} done")
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def track(items: Iterable[T], total: int | None = None, desc: str = "", **kwargs: Any
          ) -> Iterator[T]:
    """Iterate ``items`` while showing progress (``kwargs`` as for :class:`Progress`)."""
    if total is None:
        total = len(items) if hasattr(items, "__len__") else 0  # type: ignore[arg-type]
    with Progress(total, desc, **kwargs) as progress:
        for item in items:
            yield item
            progress.update()
