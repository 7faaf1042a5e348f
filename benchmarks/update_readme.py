"""Regenerate the README's generated tables from the commands that produce them.

    python benchmarks/update_readme.py check      # `nnparity check` (its terminal output)
    python benchmarks/update_readme.py bench      # `nnparity bench` -> <!-- bench --> block
    python benchmarks/update_readme.py reproduce  # `nnparity reproduce` -> <!-- reproduce -->

Each block in README.md sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; the
command's Markdown output replaces it, together with the exact command line that made it. The
benchmark runs with the OpenBLAS core-type override unset (it slows current NumPy builds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = {
    "bench": ["nnparity", "bench", "--repeats", "3"],
    "check": ["nnparity", "check"],
    "reproduce": ["nnparity", "reproduce", "-k", "^(?!.*cnn)"],
    "reproduce-cnn": ["nnparity", "reproduce", "-k", "cnn"],
    "cnn-bench": ["nnparity", "bench", "--model", "cnn", "--repeats", "3"],
}
UNSET_FOR_BENCH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TERMINAL_OUTPUT = ("check",)  # blocks that show the command's terminal output, not a table


def run(name: str, extra: list[str]) -> str:
    """Run the block's command and return the Markdown it wrote (or its terminal output)."""
    env = dict(os.environ)
    if "bench" in name:
        for key in UNSET_FOR_BENCH:
            env.pop(key, None)
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
        subprocess.run(argv, check=True, env=env)
        shown = " ".join(argv[:-2])
        if "bench" in name:
            shown = f"env -u {' -u '.join(UNSET_FOR_BENCH)} {shown}"
        return f"Produced by `{shown}`:\n\n{out.read_text().strip()}\n"


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
    splice(sys.argv[1], run(sys.argv[1], sys.argv[2:]))
