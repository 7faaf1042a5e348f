"""The memory estimator against measured peaks, the availability figure, the refusal, and the
child-peak measurement (``nnparity.memory``, ``nnparity.bench.peakmem``)."""

from __future__ import annotations

import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnparity.bench.peakmem import nnparity_argv, run_measured
from nnparity.cli import build_parser, main
from nnparity.commands.train import config_from_args
from nnparity.memory import (
    available_bytes,
    cgroup_room,
    check_memory,
    estimate_bytes,
    human,
    vector_bytes,
)
from nnparity.reference import CNNSpec, MLPSpec
from nnparity.training.run import load_split, make_spec, run_bytes

STEP = """
import json, sys
import numpy as np
from nnparity.reference import Optimizer
from nnparity.reference.family import init_params, spec_from_dict
from nnparity.reference.train import NumpyTrainer
spec = spec_from_dict(json.loads(sys.argv[1]))
batch, name = int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, *spec.input_shape), dtype=spec.dtype)
y = rng.integers(0, spec.output_dim, size=batch)
trainer = NumpyTrainer(spec, init_params(spec), Optimizer(name))
trainer.step(x, y)
trainer.step(x, y)
"""
"""Two reference training steps of a spec (JSON), batch and optimiser given on the command line."""

RUNS = [
    pytest.param(MLPSpec(500, (20000, 10), ("tanh", "identity")), 8, "sgd", id="mlp-params-sgd"),
    pytest.param(MLPSpec(200, (20000, 10), ("tanh", "identity")), 8, "adam", id="mlp-params-adam"),
    pytest.param(MLPSpec(1000, (100, 10), ("relu", "identity")), 20000, "sgd", id="mlp-batch"),
    pytest.param(MLPSpec(100, (3000, 3000, 10), ("relu", "relu", "identity"), dtype="float32"),
                 2000, "momentum", id="mlp-both-f32"),
    pytest.param(CNNSpec.seed002(), 120, "adam", id="cnn-f32"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "batch", "optimizer"), RUNS)
def test_estimate_within_30_percent_of_the_measured_peak(spec, batch, optimizer):
    measured = run_measured([sys.executable, "-c", STEP, spec.to_json(), str(batch), optimizer])
    assert measured.returncode == 0, measured.stderr.decode()
    data = batch * (math.prod(spec.input_shape) * np.dtype(spec.dtype).itemsize + 8)
    estimate = estimate_bytes(spec, batch, optimizer=optimizer, data_bytes=data)
    ratio = estimate / measured.peak_bytes
    assert 0.7 <= ratio <= 1.3, f"estimate {human(estimate)}, measured {human(measured.peak_bytes)}"


@pytest.mark.slow
def test_vectors_export_estimate_within_30_percent(tmp_path):
    spec = MLPSpec(20, (20, 3), ("tanh", "identity"))
    measured = run_measured(nnparity_argv("vectors", "export", str(tmp_path / "v"), "--spec",
                                          spec.to_json(), "--batch", "20000"))
    assert measured.returncode == 0, measured.stderr.decode()
    estimate = estimate_bytes(spec, 20000, data_bytes=vector_bytes(spec, 20000))
    assert 0.7 <= estimate / measured.peak_bytes <= 1.3


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_estimate_within_30_percent(optimizer):
    argv = ["--preset", "seed000-iris", "--layers", "200000,3", "--activations",
            "sigmoid,identity", "--epochs", "1", "--optimizer", optimizer]
    measured = run_measured(nnparity_argv("train", *argv))
    assert measured.returncode == 0, measured.stderr.decode()
    config = config_from_args(build_parser().parse_args(["train", *argv]))
    split = load_split(config)
    estimate = run_bytes(config, split, make_spec(config, split))
    assert 0.7 <= estimate / measured.peak_bytes <= 1.3


def test_a_child_reports_its_own_peak_not_its_large_parents():
    ballast = np.ones(40_000_000)  # 320 MB in this process
    measured = run_measured([sys.executable, "-c", "import numpy; a = numpy.ones(12_500_000)"])
    assert ballast[-1] == 1 and measured.returncode == 0
    # numpy imported (~30 MB) plus 100 MB of ones; the parent's 320 MB must not show
    assert 100 * 2**20 < measured.peak_bytes < 200 * 2**20


def test_a_child_exit_code_and_output_come_back():
    measured = run_measured([sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"])
    assert (measured.returncode, measured.stdout.strip()) == (3, b"hi")


def test_available_bytes_honours_an_address_space_limit():
    limit = 3 * 2**30
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, "
            f"{resource.RLIM_INFINITY})); "
            "from nnparity.memory import available_bytes; print(available_bytes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 0 < int(out.stdout) < limit


def test_refusal_names_both_figures_and_what_to_lower(monkeypatch):
    monkeypatch.setattr("nnparity.memory.available_bytes", lambda: 20 * 10**9)
    with pytest.raises(Exception, match=r"needs ~22 GB, 20 GB available: lower --batch"):
        check_memory(22 * 10**9, "vectors export", "lower --batch")
    check_memory(22 * 10**9, "vectors export", "lower --batch", force=True)
    check_memory(19 * 10**9, "vectors export", "lower --batch")


def test_shipped_presets_are_never_refused(monkeypatch, capsys):
    monkeypatch.setattr("nnparity.memory.available_bytes", lambda: 0)
    assert main(["train", "--preset", "seed000-iris", "--epochs", "1"]) == 0
    assert main(["train", "--preset", "seed000-iris", "--epochs", "1", "--batch", "8"]) == 2
    assert "available" in capsys.readouterr().err
    assert main(["train", "--preset", "seed000-iris", "--epochs", "1", "--batch", "8",
                 "--force"]) == 0


def test_available_bytes_is_below_memavailable():
    figure = available_bytes()
    if figure is None:
        pytest.skip("no /proc/meminfo here")
    text = Path("/proc/meminfo").read_text()
    total = int(next(line for line in text.splitlines() if line.startswith("MemTotal")).split()[1])
    assert 0 <= figure < total * 1024


@pytest.mark.parametrize(("line", "files", "room"), [
    ("0::/job", {"job/memory.max": "3000", "job/memory.current": "1000"}, 2000),
    ("0::/job", {"job/memory.max": "max", "job/memory.current": "1000"}, None),
    ("4:memory:/job", {"memory/job/memory.limit_in_bytes": "5000",
                       "memory/job/memory.usage_in_bytes": "500"}, 4500),
    ("4:memory:/elsewhere", {"memory/memory.limit_in_bytes": "9223372036854771712"}, None),
    ("garbage", {}, None),
])
def test_cgroup_room_reads_v1_and_v2(line, files, room, tmp_path):
    (tmp_path / "cgroup").write_text(f"9:pids:/\n{line}\n")
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text + "\n")
    assert cgroup_room(tmp_path / "cgroup", tmp_path / "fs") == room


def test_ctrl_c_while_measuring_kills_the_child(monkeypatch, tmp_path):
    """The measured child runs in its own session (a terminal's Ctrl-C does not reach it), so an
    interrupt in the parent must kill it and its launcher before going on."""
    marker = tmp_path / "pid"
    written = f"{marker}.tmp"  # renamed into place: the marker never exists half-written
    child = [sys.executable, "-c",
             f"import os, time; open({written!r}, 'w').write(str(os.getpid())); "
             f"os.rename({written!r}, {str(marker)!r}); time.sleep(60)"]
    real = subprocess.Popen.communicate

    def interrupted(self, *args, **kwargs):
        if kwargs.get("timeout") == 30:
            while not marker.exists():
                time.sleep(0.01)
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_measured(child, timeout=30)
    pid = int(marker.read_text())
    time.sleep(0.2)
    alive = Path(f"/proc/{pid}").exists() and "Z" not in \
        Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not alive
