"""Regenerate the README's generated tables from the commands that produce them.

    python benchmarks/update_readme.py check      # `nnparity check` (its terminal output)
    python benchmarks/update_readme.py bench      # `nnparity bench` -> <!-- bench --> block
    python benchmarks/update_readme.py sweep      # `nnparity bench --sweep` (table and plot)
    python benchmarks/update_readme.py reproduce  # `nnparity reproduce` -> <!-- reproduce -->
    python benchmarks/update_readme.py reproduce -k '^seed003-mnist$'  # re-measure rows only

Each block in README.md sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; the
command's Markdown output replaces it, together with the exact command line that made it. The
benchmark runs with the OpenBLAS core-type override unset (it slows current NumPy builds) and
one thread for every row (NumPy's BLAS and the frameworks alike).
A reproduce block regenerated with options (``-k``, ``--backend``) keeps its other cells: the
cells of the rows and backend columns that ran are replaced (or added) and a note under the
table names the command, the date and the machine that measured them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = {
    "bench": ["nnparity", "bench", "--repeats", "3", "--clock", "cpu"],
    "sweep": ["nnparity", "bench", "--sweep", "--repeats", "3", "--clock", "cpu",
              "--plot", "benchmarks/sweep.png"],
    "check": ["nnparity", "check"],
    "reproduce": ["nnparity", "reproduce", "-k", "^(?!.*cnn)"],
    "reproduce-cnn": ["nnparity", "reproduce", "-k", "cnn"],
    "cnn-bench": ["nnparity", "bench", "--model", "cnn", "--repeats", "3", "--clock", "cpu"],
}
UNSET_FOR_BENCH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREADS_FOR_BENCH = {"OPENBLAS_NUM_THREADS": "1", "NNPARITY_THREADS": "1"}  # every row one thread
TERMINAL_OUTPUT = ("check",)  # blocks that show the command's terminal output, not a table


def run(name: str, extra: list[str]) -> str:
    """Run the block's command and return the Markdown it wrote (or its terminal output)."""
    env = dict(os.environ)
    bench = "bench" in COMMANDS[name]
    if bench:
        for key in UNSET_FOR_BENCH:
            env.pop(key, None)
        env.update(THREADS_FOR_BENCH)
    if name in TERMINAL_OUTPUT:
        argv = [*COMMANDS[name], *extra]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
        last = proc.stdout.rstrip().splitlines()[-1]
        return (f"<details><summary><code>$ {' '.join(argv)}</code>: {last}</summary>\n\n"
                f"```\n{proc.stdout.rstrip()}\n```\n\n</details>\n")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "table.md"
        argv = [*COMMANDS[name], *extra, "--markdown", str(out)]
        subprocess.run(argv, check=True, env=env, cwd=README.parent)
        shown = " ".join(argv[:-2])
        if bench:
            fixed = " ".join(f"{k}={v}" for k, v in THREADS_FOR_BENCH.items())
            shown = f"env -u {' -u '.join(UNSET_FOR_BENCH)} {fixed} {shown}"
        body = f"Produced by `{shown}`:\n\n{out.read_text().strip()}\n"
        if "--plot" in argv:
            plot = argv[argv.index("--plot") + 1]
            body += f"\n![{name}]({plot})\n"
        return body


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


def note_covers(note: str, presets: set[str], columns: set[str]) -> bool:
    """Whether a re-measurement note is about cells that are all being re-measured now (a
    note without a column names numpy's)."""
    named = set(re.findall(r"`([^`]+)`", note.split(" re-measured by ")[0]))
    match = re.search(r"columns? ([\w, ]+):", note)
    noted = {c.strip() for c in match.group(1).split(",")} if match else {"numpy"}
    return named <= presets and noted <= columns


def merge_rows(current: str, body: str, command: str, machine: str) -> str:
    """The block ``current`` with the cells of ``body`` (its backends' columns of its rows)
    replaced, rows and columns it lacks added, and a note saying that ``command`` re-measured
    them, when and on what ``machine``; the notes about cells all re-measured now are dropped."""
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
    notes = [line for line in after if line.strip()
             and not ("re-measured by" in line and note_covers(line, set(fresh), set(columns)))]
    names = ("Row " if len(fresh) == 1 else "Rows ") + ", ".join(f"`{key}`" for key in fresh)
    names += (", column " if len(columns) == 1 else ", columns ") + ", ".join(columns)
    notes.append(f"{names}: re-measured by `{command}` on {datetime.date.today()} ({machine}).")
    table = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---|" * (len(header) - 3)]
    table += ["| " + " | ".join(cells) + " |" for cells in rows.values()]
    return "\n".join([*before, *table, "", "\n\n".join(notes)]) + "\n"


@contextlib.contextmanager
def readme_locked() -> Iterator[None]:
    """Hold an exclusive lock on README.md (POSIX ``flock``) while reading and rewriting it."""
    import fcntl  # POSIX only, like the benchmark runs this script makes

    with README.open() as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def block(name: str) -> str:
    """The current body of block ``name`` in README.md."""
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README.read_text(), re.S)
    if not match:
        raise SystemExit(f"README.md has no <!-- {name}:start --> block")
    return match.group(1)


def splice(name: str, body: str) -> None:
    """Replace the block ``name`` in README.md with ``body``."""
    text = README.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name}:start --> block")
    README.write_text(pattern.sub(lambda m: m.group(1) + body + m.group(2), text))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        raise SystemExit(f"usage: update_readme.py {{{','.join(COMMANDS)}}} [extra args]")
    name, extra = sys.argv[1], sys.argv[2:]
    body = run(name, extra)
    with readme_locked():  # runs regenerating cells side by side must not drop each other's
        if name.startswith("reproduce") and extra:
            body = merge_rows(block(name), body, shlex.join([*COMMANDS[name][:2], *extra]),
                              f"{platform.machine()}, {os.cpu_count()} cores")
        splice(name, body)
