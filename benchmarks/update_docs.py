"""Regenerate the documentation's measured tables from the commands that produce them.

    python benchmarks/update_docs.py check      # `nnparity check` -> docs/guide/check.md
    python benchmarks/update_docs.py bench      # `nnparity bench` -> docs/benchmarks.md
    python benchmarks/update_docs.py sweep      # `nnparity bench --sweep` (table and plot)
    python benchmarks/update_docs.py cnn-bench  # `nnparity bench --model cnn`
    python benchmarks/update_docs.py reproduce  # `nnparity reproduce` -> docs/reproduction.md
    python benchmarks/update_docs.py grading    # 200 submissions through `nnparity verify DIR`
    python benchmarks/update_docs.py reproduce -k '^seed003-mnist$'  # re-measure rows only

Each block sits in its page (``PAGES``) between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``;
the command's Markdown output replaces it, with the exact command line that made it and one
dated provenance line (``Measured on DATE (MACHINE).``). The benchmark runs with the OpenBLAS
core-type override unset (it slows current NumPy builds) and one thread for every row (NumPy's
BLAS and the frameworks alike). A reproduce block regenerated with options (``-k``,
``--backend``) keeps its other cells: the cells of the rows and backend columns that ran are
replaced (or added), and the provenance line widens its dates and machines to cover them. Runs
side by side do not drop each other's cells: each merge holds a lock on its page.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
COMMANDS = {
    "bench": ["nnparity", "bench", "--repeats", "3", "--clock", "cpu"],
    "sweep": ["nnparity", "bench", "--sweep", "--repeats", "3", "--clock", "cpu",
              "--plot", "docs/sweep.png"],
    "check": ["nnparity", "check"],
    "reproduce": ["nnparity", "reproduce", "-k", "^(?!.*cnn)"],
    "reproduce-cnn": ["nnparity", "reproduce", "-k", "cnn"],
    "cnn-bench": ["nnparity", "bench", "--model", "cnn", "--repeats", "3", "--clock", "cpu"],
    "grading": [sys.executable, "benchmarks/grading.py", "--files", "200", "--jobs", "2"],
}
PAGES = {  # the page (under docs/) that holds each block
    "check": "guide/check.md",
    "bench": "benchmarks.md",
    "sweep": "benchmarks.md",
    "cnn-bench": "benchmarks.md",
    "reproduce": "reproduction.md",
    "reproduce-cnn": "reproduction.md",
    "grading": "guide/verify.md",
}
README = ROOT / "README.md"
README_SUMMARY = ("grading",)  # blocks whose first line the README quotes (its block of the name)
UNSET_FOR_BENCH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREADS_FOR_BENCH = {"OPENBLAS_NUM_THREADS": "1", "NNPARITY_THREADS": "1"}  # every row one thread
TERMINAL_OUTPUT = ("check",)  # blocks that show the command's terminal output, not a table
PROVENANCE = re.compile(r"^Measured on (\d{4}-\d\d-\d\d)(?: to (\d{4}-\d\d-\d\d))? "
                        r"\(([^)]*)\)")
MERGED = "cells merged from runs of `nnparity reproduce -k ROWS --backend NAMES`"


def page_of(name: str) -> Path:
    """The documentation page that holds block ``name``."""
    return DOCS / PAGES[name]


def machine() -> str:
    """The measuring machine, as provenance lines name it."""
    return f"{platform.machine()}, {os.cpu_count()} cores"


def provenance(previous: str | None, today: str, where: str, merged: bool) -> str:
    """The one dated line under a table: measured ``today`` on ``where``; a merge widens the
    ``previous`` line's dates and machines to cover the cells it keeps."""
    dates, machines = {today}, [where]
    match = PROVENANCE.match(previous or "") if merged else None
    if match:
        dates |= {d for d in match.group(1, 2) if d}
        machines = [*match.group(3).split("; "), where]
    span = min(dates) if len(dates) == 1 else f"{min(dates)} to {max(dates)}"
    line = f"Measured on {span} ({'; '.join(dict.fromkeys(machines))})"
    return f"{line}, {MERGED}." if merged else f"{line}."


def run(name: str, extra: list[str]) -> str:
    """Run the block's command and return the Markdown it wrote (or its terminal output)."""
    env = dict(os.environ)
    bench = "bench" in COMMANDS[name]
    if bench:
        for key in UNSET_FOR_BENCH:
            env.pop(key, None)
        env.update(THREADS_FOR_BENCH)
    if name in TERMINAL_OUTPUT:
        return terminal_block([*COMMANDS[name], *extra], env)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "table.md"
        argv = [*COMMANDS[name], *extra, "--markdown", str(out)]
        subprocess.run(argv, check=True, env=env, cwd=ROOT)
        shown = " ".join(["python" if a == sys.executable else a for a in argv[:-2]])
        if bench:
            fixed = " ".join(f"{k}={v}" for k, v in THREADS_FOR_BENCH.items())
            shown = f"env -u {' -u '.join(UNSET_FOR_BENCH)} {fixed} {shown}"
        body = f"Produced by `{shown}`:\n\n{out.read_text().strip()}\n"
        if "--plot" in argv:
            plot = os.path.relpath(ROOT / argv[argv.index("--plot") + 1], page_of(name).parent)
            body += f"\n![{name}]({plot})\n"
        return body


def terminal_block(argv: list[str], env: dict[str, str]) -> str:
    """The command's terminal output, run twice in a fresh cache folder: the first run fills
    JAX's compilation cache (:mod:`nnparity.jax_cache`), the second is shown, and a line gives
    both runs' wall time."""
    walls, proc = [], None
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            start = time.perf_counter()
            proc = subprocess.run(argv, env={**env, "XDG_CACHE_HOME": cache},
                                  capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    last = proc.stdout.rstrip().splitlines()[-1]
    summary = f"<code>$ {html.escape(' '.join(argv))}</code>: {html.escape(last)}"
    return (f"Wall time, process start to exit: {walls[0]:.1f} s on a first run (empty "
            f"compilation cache), {walls[1]:.1f} s on the second, shown here.\n\n"
            f'<details markdown="1"><summary>{summary}</summary>\n\n'
            f"```\n{proc.stdout.rstrip()}\n```\n\n</details>\n")


def parse_table(text: str) -> tuple[list[str], dict[str, list[str]], list[str], list[str]]:
    """A results table in ``text``: its header cells, its rows' cells keyed by preset (the
    second cell, backquoted), the lines before the table and the lines after it."""
    header: list[str] = []
    rows: dict[str, list[str]] = {}
    before: list[str] = []
    after: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            (after if header else before).append(line)
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if not header:
            header = cells
        elif not set(line) <= set("|-: "):
            rows[cells[1].strip("`")] = cells
    return header, rows, before, after


def merge_rows(current: str, body: str, today: str, where: str) -> str:
    """The block ``current`` with the cells of ``body`` (its backends' columns of its rows)
    replaced, rows and columns it lacks added (``–`` marks a cell not measured yet), and its
    provenance line widened to ``today`` on ``where``."""
    fresh_header, fresh, _, _ = parse_table(body)
    header, rows, before, after = parse_table(current)
    columns = fresh_header[3:]
    for column in columns:
        if column not in header:
            header.append(column)
            for cells in rows.values():
                cells.append("–")
    for key, cells in fresh.items():
        row = rows.setdefault(key, cells[:3] + ["–"] * (len(header) - 3))
        row[:3] = cells[:3]
        for column, value in zip(columns, cells[3:], strict=True):
            row[header.index(column)] = value
    previous = next((line for line in after if PROVENANCE.match(line)), None)
    notes = [line for line in after if line.strip() and line is not previous]
    table = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---|" * (len(header) - 3)]
    table += ["| " + " | ".join(cells) + " |" for cells in rows.values()]
    last = provenance(previous, today, where, merged=True)
    return "\n".join([*before, *table, "", *[f"{n}\n" for n in notes], last]) + "\n"


@contextlib.contextmanager
def page_locked(page: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``page`` (POSIX ``flock``) while reading and rewriting it."""
    import fcntl  # POSIX only, like the benchmark runs this script makes

    with page.open() as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def pattern(name: str) -> re.Pattern[str]:
    """The block ``name``: its start marker, its body, its end marker."""
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def block(page: Path, name: str) -> str:
    """The current body of block ``name`` in ``page``."""
    match = pattern(name).search(page.read_text())
    if not match:
        raise SystemExit(f"{page} has no <!-- {name}:start --> block")
    return match.group(2)


def splice(page: Path, name: str, body: str) -> None:
    """Replace the block ``name`` in ``page`` with ``body``."""
    block(page, name)  # the same one-line error when the block is missing
    text = pattern(name).sub(lambda m: m.group(1) + body + m.group(3), page.read_text())
    page.write_text(text)


def update(name: str, extra: list[str]) -> None:
    """Run block ``name``'s command (with ``extra`` options) and write its block into its page;
    a reproduce block with options keeps the cells that did not run."""
    body = run(name, extra)
    page, today = page_of(name), str(datetime.date.today())
    with page_locked(page):  # runs regenerating cells side by side must not drop each other's
        if name.startswith("reproduce") and extra:
            body = merge_rows(block(page, name), body, today, machine())
        else:
            body += f"\n{provenance(None, today, machine(), merged=False)}\n"
        splice(page, name, body)
    if name in README_SUMMARY:
        with page_locked(README):
            figure = next(line for line in body.splitlines()
                          if line.strip() and not line.startswith("Produced by"))
            splice(README, name, f"{figure} Measured on {today}.\n")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        raise SystemExit(f"usage: update_docs.py {{{','.join(COMMANDS)}}} [extra args]")
    update(sys.argv[1], sys.argv[2:])
