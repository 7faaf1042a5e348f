"""The bench, reproduce and train commands end to end on small inputs (not timed)."""

import re

import pytest

from nnparity.bench.loops import LOOPS, available_loops
from nnparity.bench.speed import MLP_BENCHMARKS, cnn_step_flops, mlp_batches, mlp_epoch
from nnparity.bench.sweep import run_sweep, sweep_markdown
from nnparity.cli import main
from nnparity.reference import CNNSpec
from nnparity.training.plots import plot_sweep
from nnparity.training.presets import PRESETS
from nnparity.training.reproduce import ROWS, Outcome


def test_bench_mlp_on_numpy_prints_a_ratio_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("nnparity.commands.bench.memory_line", lambda: "")
    table = tmp_path / "bench.md"
    assert main(["bench", "--rows", "600", "--backends", "numpy", "--markdown", str(table)]) == 0
    out = capsys.readouterr().out
    assert "| seed000 MNIST [784-30-20-10], batch 20 | numpy |" in out
    assert "| 1.00 |" in table.read_text()
    assert "first step (s)" in table.read_text()


def test_bench_shows_the_floor_and_ratios_to_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("nnparity.commands.bench.memory_line", lambda: "")
    table = tmp_path / "bench.md"
    argv = ["bench", "--rows", "600", "--backends", "numpy floor,numpy", "--markdown", str(table)]
    assert main(argv) == 0
    text = table.read_text()
    assert "| x floor | x reference |" in text
    assert "| ThreeNet [784-200-80-10], batch 256 | numpy floor |" in text
    floor_row = next(line for line in text.splitlines() if "| numpy floor |" in line)
    assert "| 1.00 |" in floor_row


def test_bench_cnn_interleaves_the_backends_and_counts_the_steps_flops(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the CNN table's ratios are to torch")
    runs = []
    monkeypatch.setattr("nnparity.commands.bench.memory_line", lambda run: runs.append(run) or "")
    table = tmp_path / "cnn.md"
    argv = ["bench", "--model", "cnn", "--backends", "numpy,torch", "--repeats", "1",
            "--clock", "cpu", "--markdown", str(table)]
    assert main(argv) == 0
    text = table.read_text()
    torch_row = next(line for line in text.splitlines() if line.startswith("| torch |"))
    assert "| 1.00 |" in torch_row
    assert any(line.startswith("| numpy |") for line in text.splitlines())
    assert any(line.startswith("| numpy GEMMs + Adam |") for line in text.splitlines())
    # forward 2 * MACs (conv1 1.25 M, conv2 20.07 M, fc1 6.42 M, fc2 0.02 M FLOP per sample),
    # backward twice that less conv1's input gradient, 50 samples
    assert cnn_step_flops(CNNSpec.seed002()) == 50 * (3 * 27_767_808 - 1_254_400)
    assert "Step: 4.10 GFLOP" in text
    assert runs == [["--preset", "seed002-cnn", "--epochs", "1", "--steps", "300"]]


@pytest.mark.parametrize("loop", list(LOOPS))
def test_every_plain_loop_trains_the_benchmark_net(loop):
    if loop not in available_loops():
        pytest.skip(f"{LOOPS[loop][0]} is not installed")
    bench = MLP_BENCHMARKS[0]
    epoch = mlp_epoch(bench, loop, mlp_batches(100, bench.batch))
    epoch(2)
    epoch(None)


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


def test_reproduce_jobs_give_the_same_table(tmp_path, capsys):
    tables = []
    for jobs in ("1", "2"):
        path = tmp_path / f"jobs{jobs}.md"
        argv = ["reproduce", "-k", "^seed000-iris$", "--seeds", "2", "--jobs", jobs,
                "--markdown", str(path)]
        assert main(argv) == 0
        tables.append(re.sub(r" · [0-9.]+ s/run", "", path.read_text()))  # all but the time
    assert tables[0] == tables[1] and "2 seeds" in tables[0]
    assert "seed000-iris" in capsys.readouterr().out


def test_reproduce_trains_each_seed_under_the_determinism_profile(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("nnparity.training.reproduce.apply_determinism",
                        lambda threads, seed: calls.append((threads, seed)))
    argv = ["reproduce", "-k", "^seed000-iris$", "--seeds", "2", "--threads", "3"]
    assert main(argv) == 0
    assert calls == [(3, 0), (3, 1)]  # framework threads fixed, as `nnparity train` runs
    assert main(["reproduce", "-k", "^seed000-iris$", "--threads", "0"]) == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err


def test_cnn_rows_show_the_batch_accuracy_trajectory():
    row = next(r for r in ROWS if r.preset == "seed002-cnn-1000")
    assert row.probes == tuple(range(0, 1000, 100))
    assert PRESETS[row.preset]["steps"] == 1000 and PRESETS[row.preset]["batch"] == 50
    outcome = Outcome(row, "numpy", accuracies=[98.5], probes=[[6.0, 80.0, 90.4] + [98.0] * 7])
    assert outcome.summary == ("98.50 %; batch accuracy at steps 0-900: "
                               "6, 80, 90, 98, 98, 98, 98, 98, 98, 98 %")
    five_epochs = next(r for r in ROWS if r.preset == "seed002-cnn")
    five = Outcome(five_epochs, "numpy", accuracies=[99.0], probes=[[96.0]], first_epoch=[97.0])
    assert five.summary == "99.00 %; batch accuracy at step 700: 96 %; after epoch 1: 97.00 %"


def test_sweep_times_every_point_for_every_row(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (pip install nnparity[plot])")
    monkeypatch.setattr("nnparity.bench.sweep.SWEEP_BATCHES", (1, 8))
    monkeypatch.setattr("nnparity.bench.sweep.SWEEP_WIDTHS", (30,))
    rows = ["numpy floor", "numpy"]
    points = run_sweep(rows, repeats=1, steps=2, clock="cpu")
    assert [(p.axis, p.value) for p in points] == [("batch", 1), ("batch", 8), ("width", 30)]
    table = sweep_markdown(points, rows)
    assert "| width 30, [784-30-10], batch 64 |" in table and "reference / numpy floor" in table
    assert plot_sweep(points, rows, tmp_path / "sweep.png").stat().st_size > 0
