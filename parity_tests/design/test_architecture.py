"""The package's shape, checked: no module outside the family registry branches on the model
family, the reference imports no I/O, framework or CLI code, and no file cites a document
outside the repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nnparity.reference.family import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nnparity", "reference", "backends", "datasets")
# The family registry itself: where a family is defined and a spec's family field is checked.
REGISTRY = {Path("reference/family.py"), Path("reference/serial.py")}
SPEC_CLASSES = {family.spec_class.__name__ for family in FAMILIES.values()}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _mentions_family(node: ast.AST) -> bool:
    """``x.family``, a name ``family``, or a call ``family_of(...)``."""
    if isinstance(node, ast.Attribute) and node.attr == "family":
        return True
    if isinstance(node, ast.Name) and node.id == "family":
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "family_of")


def family_branches(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` for every comparison with the family or a family's name, and every
    ``isinstance`` test against a spec class."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_mentions_family(o) for o in operands):
                found.append((node.lineno, "compares the model family"))
            elif any(isinstance(o, ast.Constant) and o.value in FAMILIES for o in operands):
                found.append((node.lineno, "compares with a family name"))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance" and len(node.args) == 2):
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            if names & SPEC_CLASSES:
                found.append((node.lineno, "dispatches on the spec class"))
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_outside_the_registry_branches_on_the_family(path: Path) -> None:
    relative = path.relative_to(ROOT)
    if relative in REGISTRY:
        return
    branches = family_branches(ast.parse(path.read_text(), str(path)))
    assert not branches, f"{relative}: " + "; ".join(f"line {n} {w}" for n, w in branches)


def test_the_detector_finds_each_kind_of_branch() -> None:
    code = (
        "if spec.family == 'cnn': pass\n"
        "if family_of(spec) != x: pass\n"
        "if config.model == 'mlp': pass\n"
        "if isinstance(spec, (MLPSpec, int)): pass\n"
        "table = {'mlp': 1}[spec.family]\n"
    )
    lines = [line for line, _ in family_branches(ast.parse(code))]
    assert lines == [1, 2, 3, 4]


NAMED = {name for name in FAMILIES if name != "net"}
"""Family names a line may not hold (``net`` is also the layer list's attribute and JSON key)."""
OUTSIDE_REFERENCE = ("nnparity", "backends", "datasets")
# The lines outside reference/ and the presets' data that still name a family, and why.
ALLOWED_NAMES = {
    (Path("nnparity/parity/cases.py"), "CNN_ARCHITECTURE = "):
        "the CNN parity cases' label and name prefix (users select them with -k cnn)",
    (Path("nnparity/commands/bench.py"), "BENCHMARKS = "):
        "bench's two workloads, named after the source documents' networks",
    (Path("nnparity/training/run.py"), "model: str = "):
        "the default of a training run's --model, data like the presets'",
}


def family_names(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every line naming a family: a family name as a string, or a lookup
    keyed by ``.family``."""
    lines = path.read_text().splitlines()
    found = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        named = isinstance(node, ast.Constant) and node.value in NAMED
        keyed = isinstance(node, ast.Subscript) and any(
            _mentions_family(n) for n in ast.walk(node.slice))
        if named or keyed:
            found.add(node.lineno)
    return [(n, lines[n - 1]) for n in sorted(found)]


def test_no_line_outside_the_reference_names_a_family() -> None:
    assert len(ALLOWED_NAMES) <= 3
    lines = [(path.relative_to(ROOT), n, text)
             for package in OUTSIDE_REFERENCE for path in sorted((ROOT / package).rglob("*.py"))
             if path.relative_to(ROOT) != Path("nnparity/training/presets.py")
             for n, text in family_names(path)]
    unexplained = [f"{path}:{n}: {text.strip()}" for path, n, text in lines
                   if not any(path == where and start in text
                              for where, start in ALLOWED_NAMES)]
    assert not unexplained, "lines naming a model family:\n" + "\n".join(unexplained)
    assert len(lines) <= len(ALLOWED_NAMES), "an allowed line is repeated elsewhere"


def test_the_family_name_detector_finds_strings_and_lookups(tmp_path: Path) -> None:
    code = tmp_path / "code.py"
    code.write_text("x = 'cnn'\ny = TABLE[spec.family]\nz = 'net'\nw = 'mlps'\n")
    assert [n for n, _ in family_names(code)] == [1, 2]


def test_reference_imports_no_io_framework_or_cli() -> None:
    """The math package is NumPy only: no file I/O modules, frameworks or CLI."""
    banned = {"torch", "tensorflow", "keras", "jax", "nnparity.files.weights",
              "nnparity.files.atomic",
              "nnparity.cli", "nnparity.commands", "nnparity.backends", "nnparity.datasets",
              "zipfile", "tempfile", "json"}
    allowed = {Path("reference/serial.py"): {"json"}}  # a spec's JSON text round trip
    for path in sorted((ROOT / "reference").glob("*.py")):
        relative = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                hit = {b for b in banned if name == b or name.startswith(b + ".")}
                assert not hit - allowed.get(relative, set()), f"{relative} imports {name}"


def test_no_file_cites_a_document_outside_the_repository() -> None:
    """The project's design notes and source summaries live outside the repository; users do not
    have them, so no file may point at them. This test names them only to refuse them."""
    files = [*_sources(), *(ROOT / "parity_tests").rglob("*.py"), ROOT / "README.md",
             ROOT / "ARCHITECTURE.md", *(ROOT / "examples").rglob("*.md"),
             *(ROOT / "docs").rglob("*.md"), *(ROOT / "docs").rglob("*.py"), ROOT / "mkdocs.yml"]
    for path in files:
        text = path.read_text()
        for outside in ("DESIGN.md", "SEEDS.md", "../shared", "shared/seeds"):
            assert outside not in text or path == Path(__file__), f"{path} cites {outside}"


SHARED_ROOT = {"__init__", "__main__", "allocator", "api", "cli", "cluster", "errors", "jax_cache",
               "memory", "parallel", "progress", "pytest_plugin", "stopping", "supervisor"}
"""The modules of ``nnparity/``'s root: what the capability folders share (the command line,
the API and its plugin, errors, memory and allocator, JAX's cache, the task cluster, jobs,
progress, stopping, the supervised child). Everything else lives in its capability's folder."""


def test_the_nnparity_root_holds_only_shared_modules() -> None:
    found = {path.stem for path in (ROOT / "nnparity").glob("*.py")}
    assert found - SHARED_ROOT == set(), (
        f"{sorted(found - SHARED_ROOT)} in nnparity/: put each in its capability's folder "
        "(parity/, training/, bench/, files/, verify/, models/, teach/, export/, fuzz/)")
