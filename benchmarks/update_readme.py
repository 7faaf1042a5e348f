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
A reproduce block regenerated with ``-k`` keeps its other rows: the matching rows are replaced
(or added) and a note under the table names the command, the date and the machine that
measured them.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = {
    "bench": ["nnparity", "bench", "--repeats", "3", "--clock", "cpu"],
    "sweep": ["nnparity", "bench", "--sweep", "--repeats", "3", "--clock", "cpu",
              "--plot", "benchmarks/sweep.png"],
    "check": ["nnparity", "check"],
    "reproduce": ["nnparity", "reproduce", "-k", "^(?!.*cnn)"],
    "reproduce-cnn": ["nnparity", "reproduce", "-k", "cnn"],
    "cnn-bench": ["nnparity", "bench", "--model", "cnn", "--repeats", "3"],
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


def table_rows(text: str) -> dict[str, str]:
    """Table lines keyed by the preset they name (the first backquoted cell)."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|[^|]*\| `([^`]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def merge_rows(name: str, body: str, extra: list[str]) -> str:
    """The README's block ``name`` with the rows of ``body`` replaced (or added after its last
    row), and a note saying which command re-measured them, when and on what machine."""
    fresh = table_rows(body)
    names = ("Row " if len(fresh) == 1 else "Rows ") + ", ".join(f"`{key}`" for key in fresh)
    lines = []
    for line in block(name).splitlines():
        if "re-measured by" in line and all(f"`{key}`" in line for key in fresh):
            continue  # the previous note on these rows
        key = next(iter(table_rows(line)), None)
        lines.append(fresh.pop(key) if key in fresh else line)
    last = max(i for i, line in enumerate(lines) if line.startswith("|"))
    lines[last + 1:last + 1] = fresh.values()  # rows the table did not have yet
    while lines and not lines[-1].strip():
        lines.pop()
    command = shlex.join([*COMMANDS[name][:2], *extra])  # the last -k is the one that counts
    note = (f"{names} re-measured by `{command}` on "
            f"{datetime.date.today()} ({platform.machine()}, {os.cpu_count()} cores).")
    return "\n".join([*lines, "", note]) + "\n"


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
    if name.startswith("reproduce") and "-k" in extra:
        body = merge_rows(name, body, extra)
    splice(name, body)
