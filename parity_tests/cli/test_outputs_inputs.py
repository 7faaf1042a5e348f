"""An output that is one of the command's inputs is refused before any work, exit 2, one line
naming both (:func:`nnparity.files.outputs.check_not_inputs`), and the input is left as it was; two
outputs naming the same file are refused too. The same file is found through symlinks and hard
links. ``train --checkpoint`` may name the ``--resume`` file (it is read before it is written).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nnparity.cli import main
from nnparity.reference.spec import MLPSpec

EXAMPLE = Path(__file__).parents[2] / "examples" / "verify" / "correct_column.py"
SPEC = MLPSpec(input_dim=2, layers=(3, 2), activations=("tanh", "identity"), loss="ce")
IRIS = ["train", "--preset", "seed000-iris", "--epochs", "1"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def refused(argv: list[str], phrase: str, capsys, folder: Path) -> None:
    """Exit 2 before any work (nothing printed on stdout), ``phrase`` in a one-line error, no
    file under ``folder`` changed."""
    before = snapshot(folder)
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert phrase in captured.err, captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert captured.out == ""
    assert snapshot(folder) == before


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC.to_dict()))
    return path


@pytest.mark.parametrize("how", ["itself", "symlink", "hard link"])
def test_export_refuses_to_overwrite_its_spec(how, spec, tmp_path, capsys):
    out = spec
    if how != "itself":
        out = tmp_path / "other.json"
        (out.symlink_to if how == "symlink" else out.hardlink_to)(spec)
    refused(["export", spec, "--framework", "torch", "-o", out],
            f"-o {out} is the input SPEC {spec}", capsys, tmp_path)


@pytest.fixture
def checkpoint(tmp_path: Path, capsys) -> Path:
    path = tmp_path / "ck.npz"
    assert main([*IRIS, "--checkpoint", str(path)]) == 0
    capsys.readouterr()
    return path


@pytest.mark.parametrize("option", ["--save", "--metrics"])
def test_train_refuses_to_overwrite_the_checkpoint_it_resumes(option, checkpoint, tmp_path,
                                                               capsys):
    metrics = tmp_path / "ck.csv"
    if option == "--metrics":  # --metrics needs .csv or .json: a link with that name
        metrics.symlink_to(checkpoint)
    out = checkpoint if option == "--save" else metrics
    refused([*IRIS, "--resume", checkpoint, option, out],
            f"{option} {out} is the input --resume {checkpoint}", capsys, tmp_path)


def test_train_may_checkpoint_into_the_file_it_resumes(checkpoint, capsys):
    assert main([*IRIS[:-1], "2", "--resume", str(checkpoint), "--checkpoint",
                 str(checkpoint)]) == 0
    capsys.readouterr()


def test_check_refuses_a_report_over_its_weights_or_model_file(tmp_path, capsys):
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"not read: refused before")
    model = tmp_path / "model.py"
    model.write_text("raise SystemExit('not imported: refused before')\n")
    refused(["check", "--model-file", f"{model}:build", "--weights", weights, "--json", weights],
            f"--json {weights} is the input --weights {weights}", capsys, tmp_path)
    refused(["check", "--model-file", f"{model}:build", "--junit", model],
            f"--junit {model} is the input --model-file {model}", capsys, tmp_path)


def test_verify_refuses_a_report_over_a_file_it_verifies(tmp_path, capsys):
    learner = tmp_path / "mine.py"
    learner.write_text(EXAMPLE.read_text())
    refused(["verify", learner, "--sandbox", "off", "--json", learner],
            f"--json {learner} is the input FILE {learner}", capsys, tmp_path)
    refused(["verify", tmp_path, "--sandbox", "off", "--junit", learner],
            f"--junit {learner} is the input FILE {learner}", capsys, tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC.to_dict()))
    refused(["verify", learner, "--spec", spec, "--sandbox", "off", "--junit", spec],
            f"--junit {spec} is the input --spec {spec}", capsys, tmp_path)


def test_teach_refuses_a_metrics_file_its_page_would_overwrite(tmp_path, capsys):
    pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
    pytest.importorskip("pygments", reason="the page needs nnparity[teach]")
    out = tmp_path / "site"
    out.mkdir()
    metrics = out / "index.html"
    metrics.write_text("epoch,loss,train_error,test_error\n1,1,0,0\n")
    refused(["teach", "--out", out, "--metrics", metrics],
            f"--out {metrics} is the input --metrics {metrics}", capsys, tmp_path)


def test_vectors_refuses_to_overwrite_its_spec(tmp_path, capsys):
    folder = tmp_path / "vectors"
    folder.mkdir()
    spec = folder / "index.json"
    spec.write_text(json.dumps(SPEC.to_dict()))
    refused(["vectors", "export", folder, "--spec", spec],
            f"DIR {spec} is the input --spec {spec}", capsys, tmp_path)


def test_reproduce_refuses_a_table_over_its_data(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    images = data / "mnist" / "train-images-idx3-ubyte.gz"
    images.write_bytes(b"IDX")
    refused(["reproduce", "--quick", "-k", "seed000-iris", "--data-dir", data,
             "--markdown", images],
            f"--markdown {images} is the input --data-dir {images}", capsys, tmp_path)


def test_two_outputs_naming_one_file_are_refused(tmp_path, capsys):
    report = tmp_path / "report"
    refused(["check", "--backends", "numpy", "--quick", "--json", report, "--junit", report],
            f"--json {report} and --junit {report} are the same file", capsys, tmp_path)
    refused([*IRIS, "--save", report, "--checkpoint", report],
            f"--save {report} and --checkpoint {report} are the same file", capsys, tmp_path)


def test_a_device_may_take_several_outputs(tmp_path, capsys):
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o20666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod of a character device is not permitted here (not root)")
    assert main(["check", "--backends", "numpy", "--quick", "-k",
                 "sigmoid-l2-sum-wd0-sgd-f64-b4-iris", "--json", str(device),
                 "--junit", str(device)]) == 0, capsys.readouterr().err
    assert os.stat(device).st_rdev == os.makedev(1, 3)  # still the device, not a file
