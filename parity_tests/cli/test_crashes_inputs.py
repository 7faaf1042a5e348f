"""Bad input that crashed nnparity (issue 20, "tracebacks and crashes"): each is now refused by
the real CLI with exit 2 and one line naming the file, entry or value, no traceback.

Deeply nested JSON wherever JSON is read; ``.npz`` members that are not ``.npy``, whose header
claims more than the member holds, or whose header is wrong for the spec (refused before the
data is decompressed); a metrics CSV without a column; an absurd ``--input-shape``; absurd
``--threads``/``$NNPARITY_THREADS`` and ``--jobs``.
"""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnparity.bench.peakmem import nnparity_argv, run_measured
from nnparity.cli import main
from nnparity.files.npz import read_npz
from nnparity.reference import MLPSpec, init_params

ROOT = Path(__file__).resolve().parents[2]
TORCH_MLP = f"{ROOT / 'examples' / 'models' / 'torch_mlp.py'}:model"
RESUME = ["train", "--preset", "seed000-iris", "--epochs", "4", "--resume"]
DEEP = "[" * 100000


def nnparity(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``nnparity ARGS`` in a child process (the real CLI), its output captured."""
    return subprocess.run(nnparity_argv(*map(str, args)), capture_output=True, text=True,
                          timeout=300, env=env)


def refused(stderr: str, returncode: int, *phrases: str) -> None:
    """Exit 2 and exactly one line on stderr holding every phrase."""
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def weights_members(spec_text: str | None = None) -> dict[str, bytes]:
    """The members of a valid weights file (``spec_text`` replaces the spec's JSON)."""
    spec = MLPSpec(3, (4, 2), ("relu", "identity"))
    members = {"spec.npy": npy(np.array(spec_text or spec.to_json())),
               "meta.npy": npy(np.array("{}"))}
    members.update({f"param/{k}.npy": npy(v) for k, v in init_params(spec).items()})
    return members


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def claims(shape: tuple[int, ...], holds: int) -> bytes:
    """A ``.npy`` member whose header claims float64 ``shape`` but that holds ``holds`` bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(holds)


# ---------------------------------------------------------------- deeply nested JSON
def test_a_deep_spec_file_is_refused_by_export_and_verify(tmp_path):
    spec = tmp_path / "deep.json"
    spec.write_text(DEEP)
    learner = tmp_path / "net.py"
    learner.write_text("x = 1\n")
    for args in (["export", spec, "--framework", "numpy"], ["verify", "--spec", spec, learner]):
        proc = nnparity(*args)
        refused(proc.stderr, proc.returncode, f"{spec}: JSON nested too deeply")
    proc = nnparity("verify", "--spec", '{"layers": ' + DEEP, learner)
    refused(proc.stderr, proc.returncode, "--spec: JSON nested too deeply")


def test_a_deep_results_file_is_refused(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(DEEP)
    (tmp_path / "vectors").mkdir()
    proc = nnparity("verify", "--results", results, "--vectors", tmp_path / "vectors")
    refused(proc.stderr, proc.returncode, f"{results}: JSON nested too deeply")


def test_a_checkpoint_with_a_deep_spec_entry_is_refused(tmp_path):
    checkpoint = write_zip(tmp_path / "deep.npz", weights_members(spec_text=DEEP))
    proc = nnparity(*RESUME, checkpoint)
    refused(proc.stderr, proc.returncode, f"{checkpoint}: entry 'spec': JSON nested too deeply")


# ---------------------------------------------------------------- .npz members
def test_a_member_that_is_not_npy_is_refused_by_train_and_check(tmp_path):
    members = weights_members()
    members["param/W1"] = members.pop("param/W1.npy")  # raw bytes, no .npy suffix
    path = write_zip(tmp_path / "odd.npz", members)
    for args in ([*RESUME, path], ["check", "--model-file", TORCH_MLP, "--weights", path]):
        proc = nnparity(*args)
        refused(proc.stderr, proc.returncode, f"{path}: entry 'param/W1' is not a .npy array")


@pytest.mark.parametrize("command", ["train", "check", "verify"])
def test_a_header_claiming_ten_billion_values_is_called_damaged(tmp_path, command):
    members = weights_members()
    members["param/W1.npy"] = claims((10**10,), 100)
    if command == "verify":
        members = {"tiny/dW1.npy": claims((10**10,), 100)}
        (tmp_path / "vectors").mkdir()
    path = write_zip(tmp_path / "claims.npz", members)
    args = {"train": [*RESUME, path],
            "check": ["check", "--model-file", TORCH_MLP, "--weights", path],
            "verify": ["verify", "--results", path, "--vectors", tmp_path / "vectors"]}[command]
    measured = run_measured(nnparity_argv(*map(str, args)), timeout=300)
    entry = "tiny/dW1" if command == "verify" else "param/W1"
    refused(measured.stderr.decode(), measured.returncode, f"{path}: entry '{entry}' is damaged",
            "80000000000 bytes")
    assert "out of memory" not in measured.stderr.decode()
    assert measured.peak_mib < 500


def _break_crc(path: Path, member: str) -> None:
    """Change ``member``'s CRC in the zip's central directory: reading all of its data fails."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + length] == member.encode():
            crc = int.from_bytes(data[at + 16:at + 20], "little")
            data[at + 16:at + 20] = (crc ^ 1).to_bytes(4, "little")
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def test_a_large_zero_member_of_the_wrong_shape_is_refused_from_its_header(tmp_path):
    """256 MiB of zeros (compressed to a few hundred kB) under a header of the wrong shape: the
    shape is refused from the header; the data is never decompressed (its CRC is broken, so
    reading it would fail differently, and the peak memory stays far below its size)."""
    members = weights_members()
    del members["param/W1.npy"]
    path = write_zip(tmp_path / "zeros.npz", members)
    rows, chunk = 32768, bytes(1024 * 8)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open("param/W1.npy", "w", force_zip64=True) as member:
        member.write(claims((rows, 1024), 0))
        for _ in range(rows):
            member.write(chunk)
    assert path.stat().st_size < 2**21
    _break_crc(path, "param/W1.npy")
    measured = run_measured(nnparity_argv(*RESUME, str(path)), timeout=300)
    refused(measured.stderr.decode(), measured.returncode,
            f"{path}: W1 has shape (32768, 1024), the spec needs (3, 4)")
    assert measured.peak_mib < 200


# ---------------------------------------------------------------- checked before the work
def test_teach_refuses_a_metrics_file_without_train_error_before_any_work(tmp_path):
    metrics = tmp_path / "m.csv"
    metrics.write_text("epoch,loss,test_error\n1,0.5,0.1\n")
    proc = nnparity("teach", "--out", tmp_path / "site", "--metrics", metrics)
    refused(proc.stderr, proc.returncode, f"{metrics}: ", "no train_error column")
    assert not (tmp_path / "site").exists()  # the page's work never started


@pytest.mark.parametrize(("shape", "phrase"), [
    ("100000,100000,1", "--input-shape 100000,100000,1 needs ~"),
    ("99999999999999999999,8,1", "--input-shape '99999999999999999999,8,1': expected H,W,C"),
])
def test_check_refuses_an_input_shape_that_cannot_fit(shape, phrase):
    proc = nnparity("check", "--model-file", TORCH_MLP, "--input-shape", shape)
    refused(proc.stderr, proc.returncode, phrase)


@pytest.mark.parametrize("args", [
    pytest.param(["train", "--preset", "seed000-iris", "--backend", "torch", "--epochs", "1"],
                 marks=pytest.mark.torch, id="train-torch"),
    pytest.param(["train", "--preset", "seed000-iris", "--backend", "tensorflow", "--epochs",
                  "1"], marks=pytest.mark.tensorflow, id="train-tensorflow"),
    pytest.param(["reproduce", "--quick", "-k", "^seed003-iris$", "--backend", "torch"],
                 marks=pytest.mark.torch, id="reproduce-torch"),
    pytest.param(["bench", "--backends", "numpy,torch", "--rows", "64", "--repeats", "1"],
                 marks=pytest.mark.torch, id="bench-torch"),
])
def test_threads_beyond_the_maximum_are_refused(args):
    proc = nnparity(*args, "--threads", "100000")
    refused(proc.stderr, proc.returncode, "--threads must be a positive integer, got 100000 "
            "(at most 256)")


@pytest.mark.torch
def test_nnparity_threads_beyond_the_maximum_is_refused():
    env = {**os.environ, "NNPARITY_THREADS": "100000"}
    proc = nnparity("train", "--preset", "seed000-iris", "--backend", "torch", "--epochs", "1",
                    env=env)
    refused(proc.stderr, proc.returncode,
            "$NNPARITY_THREADS must be a positive integer, got 100000 (at most 256)")


@pytest.mark.parametrize("args", [
    ["reproduce", "--quick", "-k", "^seed003-iris$"],
    ["verify", str(ROOT / "examples" / "verify")],
], ids=["reproduce", "verify"])
def test_jobs_beyond_the_maximum_are_refused(args):
    proc = nnparity(*args, "--jobs", "1000")
    refused(proc.stderr, proc.returncode,
            "--jobs must be a positive integer, got 1000 (at most 32)")


def test_reproduce_starts_no_more_workers_than_seeds(monkeypatch, capsys):
    from nnparity.training import reproduce

    def no_pool(method: str) -> None:
        raise AssertionError("a worker pool was started for one seed")

    seeds = []
    monkeypatch.setattr(reproduce, "get_context", no_pool)
    monkeypatch.setattr(reproduce, "run_seed", lambda row, seed, **kw: seeds.append(seed) or
                        reproduce.SeedRun(90.0, None, [], 0.1, ""))
    assert main(["reproduce", "--quick", "-k", "^seed003-iris$", "--jobs", "4"]) == 0
    assert seeds == [0]
    assert "seed003-iris" in capsys.readouterr().out



@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_the_npz_reader_reads_what_numpy_writes(tmp_path, save):
    """Headers checked first, the data still read exactly: Fortran order, byte order, text,
    scalars and empty arrays."""
    arrays = {"fortran": np.arange(12.0).reshape(3, 4).T, "text": np.array("héllo"),
              "flags": np.array([True, False]), "big_endian": np.arange(5, dtype=">i4"),
              "complex": np.ones(3, complex), "empty": np.zeros((0, 3)),
              "scalar": np.array(np.float32(2.5))}
    save(tmp_path / "a.npz", **arrays)
    read = read_npz(tmp_path / "a.npz")
    assert list(read) == list(arrays)
    for name, array in arrays.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape, name
        np.testing.assert_array_equal(read[name], array)
