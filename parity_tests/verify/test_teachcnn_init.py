"""``nnparity verify --init`` on a NumPy CNN: kernels read as HWIO or OIHW, the maps' layout, the
layer list whose parameters have the shapes found, each guess commented; accepted as written the
draft verifies the two CNN fixtures; without arrays to read, the draft says what to give; the MLP
drafts stay as they were."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.verify.draft_cnn import _kernel_layouts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"

# the learner's own arrays at the top of the file, as a student sets them up to try the network
DRIVERS = {
    "correct_cnn_loops": """
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 2, 5, 5))
W1, b1 = rng.standard_normal((3, 2, 3, 3)) * 0.3, np.zeros(3)
W2, b2 = rng.standard_normal((4, 3, 3, 3)) * 0.3, np.zeros(4)
W3, b3 = rng.standard_normal((36, 3)) * 0.3, np.zeros(3)
""",
    "correct_cnn_im2col": """
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 5, 5, 2))
W = [rng.standard_normal((3, 3, 2, 3)) * 0.3, rng.standard_normal((3, 3, 3, 4)) * 0.3,
     rng.standard_normal((36, 3)) * 0.3]
b = [np.zeros(3), np.zeros(4), np.zeros(3)]
""",
}


def bare(example: str, folder: Path, driver: str = "") -> Path:
    """The example without its declaration, ``driver`` appended."""
    source = (EXAMPLES / f"{example}.py").read_text()
    start = source.index("NNPARITY = {")
    end = source.index("\n}\n", start) + 3
    path = folder / f"{example}.py"
    path.write_text(source[:start] + source[end:] + driver)
    return path


def draft(path: Path, capsys) -> tuple[str, dict]:
    assert main(["verify", "--init", str(path)]) == 0
    drafted = capsys.readouterr().out
    compile(drafted, "draft", "exec")
    return drafted, ast.literal_eval(drafted[drafted.index("{"):drafted.rindex("}") + 1])


def declared(example: str) -> dict:
    source = (EXAMPLES / f"{example}.py").read_text()
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "NNPARITY")
    return ast.literal_eval(node.value)


@pytest.mark.parametrize("example", sorted(DRIVERS))
def test_the_draft_of_a_cnn_verifies_as_written(example, tmp_path, capsys) -> None:
    path = bare(example, tmp_path, DRIVERS[example])
    drafted, declaration = draft(path, capsys)
    expected = declared(example)
    assert declaration["spec"]["net"] == expected["spec"]["net"]
    assert declaration["spec"]["input_shape"] == expected["spec"]["input_shape"] == [5, 5, 2]
    assert declaration["kernel"] == expected.get("kernel", "HWIO")
    assert declaration["maps"] == expected.get("maps", "NHWC")
    assert declaration["model"] == expected["model"]
    for key in ("kernel", "maps", "spec", "model", "W", "b", "dW", "db"):
        line = drafted.split(f'"{key}": ')[1].split("\n")[0]
        assert key == "spec" or "  # " in line, key  # the spec's comment is the line above
    assert "# spec: the layer list whose parameters have these shapes, its maps seen" in drafted
    path.write_text(path.read_text() + "\n" + drafted)
    assert main(["verify", str(path), "--backends", "none"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("example", sorted(DRIVERS))
def test_without_arrays_the_draft_says_what_to_give(example, tmp_path, capsys) -> None:
    drafted, declaration = draft(bare(example, tmp_path), capsys)
    assert declaration == {}
    assert "takes its weights: give them values at the top level of your file" in drafted
    assert "give 'spec', 'W' and 'b' yourself" in drafted


def test_kernel_layouts_are_read_from_the_shapes() -> None:
    assert _kernel_layouts([(3, 3, 1, 8)], set()) == ["HWIO"]
    assert _kernel_layouts([(8, 1, 3, 3)], set()) == ["OIHW"]
    assert _kernel_layouts([(3, 3, 3, 3)], set()) == ["HWIO", "OIHW"]
    assert _kernel_layouts([(3, 3, 4, 4), (3, 3, 4, 8)], set()) == ["HWIO"]  # the chain
    assert _kernel_layouts([(3, 3, 3, 3)], {1, 5}) == []  # x has no 3 channels


FUNCTIONS = """import numpy as np

rng = np.random.default_rng(0)
W1, b1 = rng.standard_normal((8, 1, 3, 3)), np.zeros(8)
W2, b2 = rng.standard_normal((8 * 3 * 3, 10)), np.zeros(10)
{x}

def conv2d(x, W, b):
    return x


def softmax_cross_entropy(o, y):
    return o
"""


def test_function_style_arrays_get_the_layers_and_the_missing_steps_named(tmp_path,
                                                                          capsys) -> None:
    path = tmp_path / "cnn.py"
    path.write_text(FUNCTIONS.format(x="x = rng.standard_normal((2, 1, 8, 8))"))
    drafted, declaration = draft(path, capsys)
    assert (declaration["kernel"], declaration["maps"]) == ("OIHW", "NCHW")
    assert "read as [C_out, C_in, kh, kw]: 1 input channel(s), filters [8]" in drafted
    assert declaration["spec"]["net"] == [
        {"kind": "conv2d", "filters": 8, "kernel": 3, "padding": "valid"}, {"kind": "relu"},
        {"kind": "maxpool", "size": 2, "padding": "valid"}, {"kind": "flatten"},
        {"kind": "dense", "units": 10}]
    assert declaration["spec"]["loss"] == "ce"
    assert declaration["W"] == "W{l}" and declaration["b"] == "b{l}"
    assert '# "forward": ...,  # no method of yours ran as the forward pass' in drafted
    path.write_text(FUNCTIONS.format(x=""))
    drafted, declaration = draft(path, capsys)
    assert declaration["spec"]["input_shape"][2] == 1
    assert "the input size guessed square: confirm 'input_shape'" in drafted
    assert "other list(s) fit too: check padding and pooling" in drafted


def test_an_ambiguous_kernel_says_so(tmp_path, capsys) -> None:
    path = tmp_path / "cnn.py"
    path.write_text(FUNCTIONS.replace("(8, 1, 3, 3)", "(3, 3, 3, 3)").replace(
        "np.zeros(8)", "np.zeros(3)").replace("8 * 3 * 3", "3 * 3 * 3").format(x=""))
    drafted, declaration = draft(path, capsys)
    assert declaration["kernel"] == "HWIO"
    assert "both HWIO and OIHW fit these shapes" in drafted


def test_an_mlp_draft_is_unchanged(tmp_path, capsys) -> None:
    path = bare("correct_layers", tmp_path)
    assert main(["verify", "--init", str(path)]) == 0
    expected = Path(__file__).with_name("teachcnn_mlp_draft.txt").read_text()  # before CNNs
    assert capsys.readouterr().out == expected
