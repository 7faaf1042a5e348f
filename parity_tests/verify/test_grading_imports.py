"""The learner's imports: verify's import path handed over (nnparity hidden), another interpreter
with ``--python``, and a submission's whole tree with ``--root`` on every sandbox path."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy
import pytest

from nnparity.cli import main
from nnparity.verify import sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"
CHECKOUT = Path(__file__).resolve().parents[2]
NETWORK = (EXAMPLES / "correct_class_gradient.py").read_text()


def learner(folder: Path, name: str, imports: str) -> Path:
    """The correct class-style example with ``imports`` after its NumPy import."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(NETWORK.replace("import numpy as np\n", f"import numpy as np\n{imports}\n", 1))
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    driver = "import sys\nfrom nnparity.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", driver, "verify", *args, "--backends", "none"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **(env or {})})


def test_packages_on_verifys_import_path_are_importable(tmp_path):
    extra = tmp_path / "site"
    extra.mkdir()
    (extra / "coursepkg.py").write_text("ANSWER = 42\n")
    path = learner(tmp_path / "sub", "uses_course.py", "import coursepkg  # noqa")
    run = cli(str(path), env={"PYTHONPATH": str(extra)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_nnparity_stays_hidden_even_on_the_import_path(tmp_path):
    path = learner(tmp_path / "sub", "peeks.py", "import reference.network  # noqa")
    run = cli(str(path), env={"PYTHONPATH": str(CHECKOUT)})
    assert run.returncode == 1
    assert "ModuleNotFoundError: No module named 'reference'" in run.stdout


def _course_venv(where: Path, with_numpy: bool = True) -> Path:
    """A virtual environment whose site-packages hold NumPy (linked) and ``coursepkg``."""
    venv.create(where / "env", with_pip=False)
    extra = where / "extra"
    extra.mkdir()
    if with_numpy:
        for name in ("numpy", "numpy.libs"):
            source = Path(numpy.__file__).parent.parent / name
            if source.exists():
                (extra / name).symlink_to(source)
    (extra / "coursepkg.py").write_text("ANSWER = 42\n")
    site = next((where / "env").glob("lib/python*/site-packages"))
    (site / "extra.pth").write_text(f"{extra}\n")
    return where / "env" / "bin" / "python"


def test_python_runs_the_file_under_a_courses_venv(tmp_path, capsys):
    python = _course_venv(tmp_path / "course")
    path = learner(tmp_path / "sub", "uses_course.py", "import coursepkg  # noqa")
    assert main(["verify", str(path), "--backends", "none"]) == 1
    assert "No module named 'coursepkg'" in capsys.readouterr().out
    assert main(["verify", str(path), "--backends", "none", "--python", str(python)]) == 0
    assert "1 passed" in capsys.readouterr().out


def test_a_python_without_numpy_or_missing_is_exit_2(tmp_path, capsys):
    python = _course_venv(tmp_path / "bare", with_numpy=False)
    path = learner(tmp_path / "sub", "plain.py", "")
    assert main(["verify", str(path), "--python", str(python)]) == 2
    assert "needs NumPy (ModuleNotFoundError: No module named 'numpy')" in capsys.readouterr().err
    assert main(["verify", str(path), "--python", str(tmp_path / "nope")]) == 2
    assert "--python" in capsys.readouterr().err


def two_folder_project(tmp_path: Path) -> tuple[Path, Path]:
    """The Deep Learning from Scratch layout: ``ch05/two_layer_net.py`` imports ``common/``
    through ``sys.path.append(os.pardir)``."""
    root = tmp_path / "dlfs"
    (root / "common").mkdir(parents=True)
    (root / "common" / "__init__.py").write_text("")
    (root / "common" / "functions.py").write_text(
        "import numpy as np\n\n\ndef sigmoid(x):\n    return 1 / (1 + np.exp(-x))\n")
    source = NETWORK.replace("import numpy as np\n", "import os\nimport sys\n\nimport numpy as np"
                             "\n\nsys.path.append(os.pardir)\nfrom common.functions import "
                             "sigmoid  # noqa: E402\n", 1)
    start, end = source.index("def sigmoid(x):"), source.index("def sigmoid_grad")
    path = root / "ch05" / "two_layer_net.py"
    path.parent.mkdir()
    path.write_text(source[:start] + source[end:])
    return root, path


def _force(monkeypatch, kind: str) -> None:
    """``bwrap`` (skipped where it does not work), or the fallback with ``kind``'s layers
    (skipped where this machine lacks them)."""
    if kind == "bwrap":
        why = sandbox.bwrap_works()
        if why is not None:
            pytest.skip(why)
        return
    layers = {"namespaces": ("namespaces",), "landlock": ("landlock", "reaper"),
              "reaper": ("reaper",)}[kind]
    works, missing = sandbox.fallback_layers()
    lacking = [x for x in layers if x not in works and x != "reaper"]
    if lacking:
        pytest.skip(dict(missing).get(lacking[0], f"{lacking[0]} does not work here"))
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: "bubblewrap set aside by the test")
    monkeypatch.setattr(sandbox, "fallback_layers", lambda: (layers, ()))


@pytest.mark.parametrize("kind", ["bwrap", "namespaces", "landlock", "reaper"])
def test_root_runs_a_two_folder_project(kind, tmp_path, capsys, monkeypatch):
    _force(monkeypatch, kind)
    root, path = two_folder_project(tmp_path)
    code = main(["verify", str(path), "--backends", "none", "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 passed" in out


def test_root_with_the_sandbox_off_and_without_root(tmp_path, capsys):
    root, path = two_folder_project(tmp_path)
    assert main(["verify", str(path), "--backends", "none", "--sandbox", "off"]) == 1
    assert "No module named 'common'" in capsys.readouterr().out  # its copy has no parent
    assert main(["verify", str(path), "--backends", "none", "--sandbox", "off",
                 "--root", str(root)]) == 0
    assert "1 passed" in capsys.readouterr().out


def test_a_root_must_hold_the_file(tmp_path, capsys):
    root, path = two_folder_project(tmp_path)
    assert main(["verify", str(path), "--root", str(root / "common")]) == 2
    assert "is not inside it" in capsys.readouterr().err
    assert main(["verify", str(path), "--root", str(root / "common" / "functions.py")]) == 2
    assert "not a folder" in capsys.readouterr().err
