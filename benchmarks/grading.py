"""Grading throughput: a class of MLP submissions through ``nnparity verify DIR`` as an
instructor runs it, timed from process start to exit (not a test).

    python benchmarks/grading.py --files 200 --jobs 2 [--markdown FILE]

The class is the MLP examples of ``examples/verify`` (the correct files and the faulty ones, each
with its ``NNPARITY`` declaration), copied round-robin to ``--files`` submissions in a temporary
folder, graded with ``--backends none --jobs N`` and the default ``--edge-cases warn`` (a second,
edge-case run of every file whose math passes). Beside it, in the same run, the floor: starting
the same Python with NumPy imported once per sandbox run the grading made, ``--jobs`` at a time;
the ratio says how much of the time the grading itself costs beyond starting interpreters.
The Markdown's first line is the one-sentence figure the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "verify"


def class_files(count: int) -> list[Path]:
    """The MLP examples (declared ``.py`` files, not notebooks), round-robin to ``count``."""
    sources = sorted(p for p in EXAMPLES.glob("*.py")
                     if p.name.startswith(("correct_", "faulty_")) and "NNPARITY" in p.read_text())
    return [sources[i % len(sources)] for i in range(count)]


def grade(folder: Path, jobs: int) -> tuple[float, dict]:
    """Wall seconds of ``nnparity verify folder --backends none --jobs jobs`` and its report."""
    report = folder.parent / "report.json"
    argv = [sys.executable, "-m", "nnparity", "verify", str(folder), "--backends", "none",
            "--jobs", str(jobs), "--json", str(report)]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"grading failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, json.loads(report.read_text())


def floor(runs: int, jobs: int) -> float:
    """Wall seconds of ``runs`` interpreter starts importing NumPy, ``jobs`` at a time."""
    argv = [sys.executable, "-I", "-c", "import numpy"]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda _: subprocess.run(argv, check=True), range(runs)))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        for i, source in enumerate(class_files(args.files)):
            shutil.copy(source, folder / f"s{i:03d}_{source.name}")
        wall, report = grade(folder, args.jobs)
    results = [case["backends"]["yours"] for case in report["cases"].values()]
    passed = sum(r["status"] == "pass" for r in results)
    edge_runs = sum((r.get("edge_cases") or {}).get("status") not in (None, "off", "not judged")
                    for r in results)
    runs = len(results) + edge_runs
    bare = floor(runs, args.jobs)
    sandbox = "bubblewrap" if shutil.which("bwrap") else "the fallback (no bubblewrap)"
    lines = [
        f"{len(results)} MLP submissions graded in {wall:.1f} s ({wall / len(results):.2f} s "
        f"each, `--backends none --jobs {args.jobs}`, edge cases on) under {sandbox}.",
        "",
        f"| submissions | passed | sandbox runs | jobs | wall (s) | per submission (s) | "
        f"floor: {runs} interpreter starts (s) | x floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(results)} | {passed} | {runs} | {args.jobs} | {wall:.1f} | "
        f"{wall / len(results):.3f} | {bare:.1f} | {wall / bare:.2f} |",
        "",
        f"Sandbox: {sandbox}; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
