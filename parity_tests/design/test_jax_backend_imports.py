"""The JAX backend computes its own math: from :mod:`reference` its two modules import the spec
type, result types, the optimiser's configuration, the parameter check and the layer classes (as
type hints: their fields) only, never a forward, backward, loss, activation or optimiser
formula; from :mod:`backends`, only layouts, edges, its layer table and the protocol. (Shape
checks aside, a bug copied from the reference would otherwise pass.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "backends" / name for name in ("jax_backend.py", "jax_layers.py")]
ALLOWED = {
    "nnparity.reference.family": {"Spec"},
    "nnparity.reference.layers": {"AvgPool", "BatchNorm", "Conv2D", "Dense", "Dropout", "Gelu",
                                  "Layer", "MaxPool", "PReLU", "Residual"},
    "nnparity.reference.optim": {"Optimizer"},
    "nnparity.reference.params": {"check_params"},
    "nnparity.reference.results": {"Gradients", "Trace"},
    ".": {"edges", "jax_layers", "layout"},
    ".jax_layers": {"FRAMEWORK", "Tree", "on_device", "param_from_jax", "param_to_jax",
                    "params_to_jax"},
    ".protocol": {"Backend", "Params", "State"},
}


def project_imports(tree: ast.AST) -> list[tuple[str, str]]:
    """``(module, name)`` for every import of project code (``nnparity.*`` or relative)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or module.startswith(("nnparity", "reference", "backends")):
                found.extend((module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((alias.name, "") for alias in node.names
                         if alias.name.startswith(("nnparity", "reference", "backends")))
    return found


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_jax_backend_imports_no_math_from_the_reference(source: Path) -> None:
    imports = project_imports(ast.parse(source.read_text(), str(source)))
    assert imports, "the scan found no project imports at all"
    banned = [f"{m}.{n}" for m, n in imports if n not in ALLOWED.get(m, set())]
    assert not banned, f"backends/{source.name} imports {', '.join(banned)}"


def test_the_scan_catches_a_math_import() -> None:
    tree = ast.parse("from nnparity.reference.losses import loss_and_grad\n"
                     "from nnparity.reference import network\nimport nnparity.reference.optim\n")
    found = project_imports(tree)
    assert ("nnparity.reference.losses", "loss_and_grad") in found
    assert all(n not in ALLOWED.get(m, set()) for m, n in found)
