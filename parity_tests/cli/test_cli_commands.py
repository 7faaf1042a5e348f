"""The bench, reproduce and train commands end to end on small inputs (not timed)."""

import pytest

from nnparity.cli import main
from nnparity.presets import PRESETS
from nnparity.reproduce import ROWS


def test_bench_mlp_on_numpy_prints_a_ratio_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("nnparity.commands.bench.memory_line", lambda: "")
    table = tmp_path / "bench.md"
    assert main(["bench", "--rows", "600", "--backends", "numpy", "--markdown", str(table)]) == 0
    out = capsys.readouterr().out
    assert "| seed000 MNIST [784-30-20-10], batch 20 | numpy |" in out
    assert "| 1.00 |" in table.read_text()
    assert "first step (s)" in table.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--backends", "torch"], "must include numpy"),
        (["bench", "--backends", "numpy,mxnet"], "unknown backend 'mxnet'"),
        (["bench", "--rows", "0"], "must be positive"),
        (["reproduce", "-k", "("], "not a valid regex"),
        (["reproduce", "-k", "nothing-matches-this"], "no configuration matches"),
        (["train", "--model", "cnn", "--dataset", "iris"], "a CNN needs image data"),
    ],
)
def test_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_reproduce_quick_on_embedded_data(tmp_path, capsys):
    table = tmp_path / "repro.md"
    assert main(["reproduce", "--quick", "-k", "iris", "--markdown", str(table)]) == 0
    text = table.read_text()
    assert "`seed000-iris`" in text and "`seed003-iris`" in text and "--quick" in text


def test_every_reproduce_row_names_a_preset():
    assert all(row.preset in PRESETS for row in ROWS)


@pytest.mark.data
def test_train_cnn_on_a_slice_of_mnist(need_dataset, tmp_path, capsys):
    need_dataset("mnist")
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (pip install nnparity[plot])")
    argv = ["train", "--preset", "seed002-cnn", "--n-train", "500", "--epochs", "1",
            "--plot", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch     1/1" in out
    assert (tmp_path / "curves.png").exists() and (tmp_path / "misclassified.png").exists()
