"""A Jupyter notebook as a learner's submission: its code cells, in order, as one script.

The conversion happens in verify's process (``nbformat``, the ``notebooks`` extra), so the
sandboxed child needs NumPy only. IPython magics (``%...``, and whole ``%%`` cells) and shell
lines (``!...``) are not Python: each becomes ``pass`` (the line numbers stay) and a note names
it. Every line of the script knows its cell, so that messages citing ``script:LINE`` are told
as ``notebook.ipynb, cell C, line L`` (cells counted from 1 among all cells, as Jupyter shows
them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from nnparity.errors import InputError

SUFFIX = ".ipynb"
IPYTHON = ("%", "!")


def is_notebook(path: Path) -> bool:
    """True for a ``.ipynb`` file."""
    return path.suffix == SUFFIX


def script_name(path: Path) -> str:
    """The converted script's file name, ``net.ipynb.py`` for ``net.ipynb``."""
    return path.name + ".py"


@dataclass
class Script:
    """The notebook's code as one script: ``source``, the (cell, line in cell) of every script
    line (1-based), and the notes on what was skipped."""

    notebook: Path
    source: str
    origin: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def where(self, line: int) -> str:
        """``net.ipynb, cell 3, line 2`` for a line of the script."""
        if 1 <= line <= len(self.origin):
            cell, in_cell = self.origin[line - 1]
            return f"{self.notebook.name}, cell {cell}, line {in_cell}"
        return self.notebook.name

    def cite(self, text: str) -> str:
        """``text`` with every ``net.ipynb.py:LINE`` told by cell, and the script's name by
        the notebook's."""
        name = script_name(self.notebook)
        text = re.sub(rf"{re.escape(name)}:(\d+)", lambda m: self.where(int(m.group(1))), text)
        return text.replace(name, self.notebook.name)  # as text: a name may hold "\1"


def convert(path: Path) -> Script:
    """The code cells of the notebook at ``path`` as one script (exit 2 when it is not a
    notebook nbformat can read)."""
    try:
        import nbformat
    except ImportError:
        raise InputError(f"{path}: reading a notebook needs nbformat (pip install "
                         "'nnparity[notebooks]')") from None
    try:
        notebook = nbformat.read(str(path), as_version=4)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: not a notebook nbformat can read ({exc})") from None
    script = Script(path, "")
    lines: list[str] = []
    for number, cell in enumerate(notebook.cells, 1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        cell_lines = source.splitlines() or [""]
        whole_cell = cell_lines[0].lstrip().startswith("%%")
        for in_cell, line in enumerate(cell_lines, 1):
            stripped = line.lstrip()
            if whole_cell:
                if in_cell == 1:
                    script.notes.append(f"{path.name}, cell {number}: skipped the cell magic "
                                        f"`{stripped[:60]}` (the whole cell)")
                line = ""
            elif stripped.startswith(IPYTHON):
                script.notes.append(f"{path.name}, cell {number}, line {in_cell}: skipped "
                                    f"the IPython line `{stripped[:60]}`")
                line = line[:len(line) - len(stripped)] + "pass"
            lines.append(line)
            script.origin.append((number, in_cell))
    script.source = "\n".join(lines) + "\n"
    return script
