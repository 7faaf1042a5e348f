"""The JAX backend computes its own math: from :mod:`reference` it imports specs, result types,
the optimiser's configuration and the parameter check only, never a forward, backward, loss,
activation or optimiser formula; from :mod:`backends`, only layouts, edges, the shared CNN graph
and the protocol. (Shape checks aside, a bug copied from the reference would otherwise pass.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "backends" / "jax_backend.py"
ALLOWED = {
    "nnparity.reference.cnn_spec": {"CNNSpec", "ConvBlock"},
    "nnparity.reference.family": {"Spec"},
    "nnparity.reference.optim": {"Optimizer"},
    "nnparity.reference.params": {"check_params"},
    "nnparity.reference.results": {"Gradients", "Trace"},
    "nnparity.reference.spec": {"MLPSpec"},
    ".": {"edges", "layout"},
    ".cnn_graph": {"trace_cnn"},
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


def test_jax_backend_imports_no_math_from_the_reference() -> None:
    imports = project_imports(ast.parse(SOURCE.read_text(), str(SOURCE)))
    assert imports, "the scan found no project imports at all"
    banned = [f"{m}.{n}" for m, n in imports if n not in ALLOWED.get(m, set())]
    assert not banned, f"backends/jax_backend.py imports {', '.join(banned)}"


def test_the_scan_catches_a_math_import() -> None:
    tree = ast.parse("from nnparity.reference.losses import loss_and_grad\n"
                     "from nnparity.reference import mlp\nimport nnparity.reference.optim\n")
    found = project_imports(tree)
    assert ("nnparity.reference.losses", "loss_and_grad") in found
    assert all(n not in ALLOWED.get(m, set()) for m, n in found)
