"""Hostile but realistic invocations: each is refused with the right exit code and a one-line
message naming the specific problem, without a traceback, and leaves the files as they were.

Grouped as the hardening report listed them: runaway memory, resuming with another optimiser, a
broken framework install, malformed files, silent acceptance, divergence, output paths,
leftovers, messages without context. Then a hypothesis fuzz of spec JSON and of checkpoint
contents: exit 0 or a clean exit 2, never a traceback. Commands run in-process
(``nnparity.cli.main``) except where a real signal matters.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnparity.backends import registry
from nnparity.cli import main
from nnparity.datasets.catalog import get_dataset
from nnparity.datasets.sources import _from_dir
from nnparity.files.atomic import TEMP_NAME, remove_leftovers, temp_prefix
from nnparity.files.weights import load_weights, save_weights

IRIS = ["train", "--preset", "seed000-iris"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to show a refused command wrote nothing)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def refused(argv: list[str], code: int, phrase: str, capsys, folder: Path | None = None):
    """Run ``nnparity ARGV``; assert the exit code, the phrase on stderr, no traceback, and (with
    ``folder``) that no file under it changed. Returns the captured output."""
    before = snapshot(folder) if folder else None
    assert main(argv) == code
    captured = capsys.readouterr()
    assert phrase in captured.err, captured.err
    assert "Traceback" not in captured.err
    if folder:
        assert snapshot(folder) == before
    return captured


@pytest.fixture
def checkpoint(tmp_path: Path, capsys) -> Path:
    """An SGD checkpoint of two iris epochs on the numpy backend."""
    path = tmp_path / "sgd.npz"
    assert main([*IRIS, "--epochs", "2", "--checkpoint", str(path)]) == 0
    capsys.readouterr()
    return path


def rewrite(path: Path, *, params=None, state=None, meta=None, spec=None) -> None:
    """Write ``path`` again with some of its parts replaced."""
    saved = load_weights(path)
    save_weights(path, spec or saved.spec, params if params is not None else saved.params,
                 state if state is not None else saved.state,
                 meta if meta is not None else saved.meta)


def raw_entries(path: Path, **entries: np.ndarray) -> None:
    """Replace or add raw ``.npz`` entries of ``path`` (no validation)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays.update(entries)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


# ------------------------------------------------------------------------- 1. runaway memory
@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["vectors", "export", "{out}", "--batch", "100000000"], "vectors export needs ~"),
        (["gradcheck", "--layers", "1000000000,3"], "gradcheck needs ~"),
        (["gradcheck", "--input-dim", "1000000000"], "gradcheck needs ~"),
        (["gradcheck", "--batch", "1000000000"], "gradcheck needs ~"),
        (["vectors", "export", "{out}", "--spec",
          '{"input_dim": 4, "layers": [1000000000, 3], "activations": ["tanh", "identity"]}'],
         "vectors export needs ~"),
        (["bench", "--rows", "10000000000"], "bench --rows 10000000000 needs ~"),
        ([*IRIS, "--layers", "100000000,3", "--activations", "sigmoid,identity"],
         "this training run needs ~"),
    ],
)
def test_huge_sizes_are_refused_before_any_allocation(argv, what, tmp_path, capsys):
    out = tmp_path / "vectors"
    err = refused([a.replace("{out}", str(out)) for a in argv], 2, what, capsys, tmp_path).err
    assert " available: lower --" in err and "--force" in err
    assert not out.exists()


def test_memory_error_anywhere_is_a_clean_exit_2(monkeypatch, capsys):
    def boom(args):
        raise MemoryError("Unable to allocate 7.5 GiB for an array with shape (1000000000,)")

    monkeypatch.setattr("nnparity.commands.gradcheck.run", boom)
    refused(["gradcheck"], 2, "out of memory (Unable to allocate 7.5 GiB", capsys)


# ------------------------------------------------------------- 2. resume with another optimiser
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_resume_with_another_optimiser_names_both(optimizer, checkpoint, capsys):
    refused([*IRIS, "--epochs", "4", "--optimizer", optimizer, "--resume", str(checkpoint)], 2,
            f"written with optimizer sgd (torch) on backend numpy; this run uses optimizer "
            f"{optimizer} (torch) on backend numpy", capsys, checkpoint.parent)


def test_reset_optimizer_resumes_with_another_optimiser(checkpoint, capsys):
    assert main([*IRIS, "--epochs", "3", "--optimizer", "adam", "--resume", str(checkpoint),
                 "--reset-optimizer"]) == 0
    assert "epoch     3/3" in capsys.readouterr().out


@pytest.mark.torch
def test_resume_on_another_backend_names_both(checkpoint, capsys):
    refused([*IRIS, "--epochs", "4", "--backend", "torch", "--resume", str(checkpoint)], 2,
            "on backend numpy; this run uses optimizer sgd (torch) on backend torch", capsys,
            checkpoint.parent)


def test_resume_checks_the_optimiser_state(checkpoint, capsys, tmp_path):
    momentum = tmp_path / "momentum.npz"
    assert main([*IRIS, "--epochs", "2", "--optimizer", "momentum", "--checkpoint",
                 str(momentum)]) == 0
    saved = load_weights(momentum)
    rewrite(momentum, state={**saved.state, "v.extra": np.zeros(3)})
    refused([*IRIS, "--epochs", "4", "--optimizer", "momentum", "--resume", str(momentum)], 2,
            "optimiser state does not match the optimiser (missing none, unexpected "
            "['v.extra'])", capsys, tmp_path)
    rewrite(momentum, state={k: v.astype(np.float32) for k, v in saved.state.items()})
    refused([*IRIS, "--epochs", "4", "--optimizer", "momentum", "--resume", str(momentum)], 2,
            "optimiser state v.W1 is float32[4, 20], expected float64[4, 20]", capsys, tmp_path)


# ------------------------------------------------------------- 3. a broken framework install
@pytest.fixture
def broken_torch(tmp_path, monkeypatch):
    """``torch``'s backend module replaced by one that raises RuntimeError on import."""
    (tmp_path / "broken_framework.py").write_text("raise RuntimeError('CUDA driver too old')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.MODULES, "torch", ("broken_framework", "torch", ("torch",)))
    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_missing", {})


def test_a_broken_framework_is_unavailable_with_the_reason(broken_torch, capsys):
    assert main(["info"]) == 0
    assert "import failed: RuntimeError: CUDA driver too old" in capsys.readouterr().out
    refused(["check", "--backends", "torch", "--quick"], 2,
            "backend 'torch' is unavailable: import failed: RuntimeError: CUDA driver too old",
            capsys)
    refused([*IRIS, "--backend", "torch"], 2, "RuntimeError: CUDA driver too old", capsys)


@pytest.mark.parametrize("package", ["jax", "jaxlib", "optax"])
def test_a_missing_package_of_an_extra_names_the_extra(package, tmp_path, monkeypatch):
    """Any package the ``jax`` extra brings, missing, gives the install hint, not a raw error."""
    (tmp_path / "needs_it.py").write_text(f"import {package}._not_there\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.MODULES, "jax", ("needs_it", "jax", ("jax", "jaxlib", "optax")))
    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_missing", {})
    assert registry.reason("jax") == "not installed: pip install nnparity[jax]"


# ---------------------------------------------------------------------- 4. malformed files
@pytest.mark.parametrize(("entry", "text", "phrase"), [
    ("meta", "[1, 2]", "the meta entry must be a JSON object, got list"),
    ("meta", "null", "the meta entry must be a JSON object, got NoneType"),
    ("spec", "[1, 2]", "invalid spec: a spec must be a JSON object, got list"),
    ("spec", "null", "invalid spec: a spec must be a JSON object, got NoneType"),
    ("spec", '{"layers": [3]}', "invalid spec:"),
    ("meta", "{not json", "entry 'meta': not JSON"),
])
def test_malformed_checkpoint_json(entry, text, phrase, checkpoint, capsys):
    raw_entries(checkpoint, **{entry: np.array(text)})
    refused([*IRIS, "--epochs", "4", "--resume", str(checkpoint)], 2, phrase, capsys,
            checkpoint.parent)


def test_truncated_checkpoint(checkpoint, capsys):
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    refused([*IRIS, "--epochs", "4", "--resume", str(checkpoint)], 2,
            "not a readable .npz file", capsys, checkpoint.parent)


def test_a_damaged_member_is_not_called_a_pickle(checkpoint, capsys):
    with np.load(checkpoint, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    short = io.BytesIO()
    np.lib.format.write_array_header_1_0(short, np.lib.format.header_data_from_array_1_0(
        arrays.pop("param/W1")))
    short.write(bytes(100))  # the header says 4x20 float64 (640 bytes)
    with zipfile.ZipFile(checkpoint, "w") as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value, allow_pickle=False)
            archive.writestr(f"{key}.npy", buffer.getvalue())
        archive.writestr("param/W1.npy", short.getvalue())
    err = refused([*IRIS, "--epochs", "4", "--resume", str(checkpoint)], 2,
                  f"{checkpoint}: entry 'param/W1' is damaged", capsys, checkpoint.parent).err
    assert "unpickle" not in err


def test_truncated_results_npz(tmp_path, capsys):
    vectors = tmp_path / "vectors"
    assert main(["vectors", "export", str(vectors)]) == 0
    results = tmp_path / "results.npz"
    with open(results, "wb") as handle:
        np.savez(handle, **{"tiny/loss": np.zeros(())})
    results.write_bytes(results.read_bytes()[:60])
    capsys.readouterr()
    refused(["verify", "--results", str(results), "--vectors", str(vectors)], 2,
            f"{results}: not a readable .npz file", capsys, tmp_path)


@pytest.fixture
def tanh_vectors(tmp_path_factory) -> Path:
    """The default golden vectors (``seed000-tanh-ce-sum`` among them)."""
    folder = tmp_path_factory.mktemp("vectors") / "vectors"
    assert main(["vectors", "export", str(folder)]) == 0
    return folder


@pytest.mark.parametrize(("entry", "phrase"), [
    (5, "seed000-tanh-ce-sum"),
    ({"dW1": {"shape": [-1, 5], "data": [1, 2, 3, 4, 5]}}, "dW1"),
])
def test_results_entries_of_the_wrong_kind(entry, phrase, tanh_vectors, tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"vectors": {"seed000-tanh-ce-sum": entry}}))
    capsys.readouterr()
    refused(["verify", "--results", str(results), "--vectors", str(tanh_vectors)], 2, phrase,
            capsys, tmp_path)


def test_truncated_vectors_npz_names_the_file(tanh_vectors, tmp_path, capsys):
    vector = tanh_vectors / "seed000-tanh-ce-sum.npz"
    vector.write_bytes(vector.read_bytes()[:500])
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"vectors": {"seed000-tanh-ce-sum": {}}}))
    capsys.readouterr()
    refused(["verify", "--results", str(results), "--vectors", str(tanh_vectors)], 2,
            str(vector), capsys, tmp_path)


# ------------------------------------------------------------------- 5. silently accepted
@pytest.mark.parametrize(("dtype", "phrase"), [
    (np.float16, "W1 has dtype float16, the spec's dtype is float64"),
    (np.float32, "W1 has dtype float32, the spec's dtype is float64"),
])
def test_low_precision_weights_in_a_float64_checkpoint(dtype, phrase, checkpoint, capsys):
    saved = load_weights(checkpoint)
    raw_entries(checkpoint, **{"param/W1": saved.params["W1"].astype(dtype)})
    refused([*IRIS, "--epochs", "4", "--resume", str(checkpoint)], 2, phrase, capsys,
            checkpoint.parent)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_in_a_checkpoint(value, checkpoint, capsys):
    saved = load_weights(checkpoint)
    w1 = saved.params["W1"].copy()
    w1[0, 0] = value
    raw_entries(checkpoint, **{"param/W1": w1})
    refused([*IRIS, "--epochs", "4", "--resume", str(checkpoint)], 2,
            "W1 holds non-finite values (nan or inf)", capsys, checkpoint.parent)


def test_checkpoint_without_an_epoch(checkpoint, capsys):
    meta = load_weights(checkpoint).meta
    del meta["epoch"]
    rewrite(checkpoint, meta=meta)
    refused([*IRIS, "--epochs", "4", "--resume", str(checkpoint)], 2,
            "no epoch recorded (epoch None)", capsys, checkpoint.parent)


def test_checkpoint_past_epochs_is_refused_before_writing_save(checkpoint, capsys):
    save = checkpoint.parent / "w.npz"
    refused([*IRIS, "--epochs", "1", "--resume", str(checkpoint), "--save", str(save)], 2,
            "checkpoint is at epoch 2, at or past --epochs 1: nothing left to train", capsys,
            checkpoint.parent)
    assert not save.exists()


@pytest.mark.parametrize(("extra", "phrase"), [
    (["--n-train", "150"], "--n-train 150 must be between 1 and 149: the set has 150 rows"),
    (["--n-train", "0"], "--n-train must be positive, got 0"),
    (["--eps", "-1"], "epsilon must be > 0 and finite, got -1.0"),
    (["--eps", "nan"], "epsilon must be > 0 and finite, got nan"),
    (["--lr", "inf"], "learning rate must be > 0 and finite, got inf"),
    (["--weight-decay", "inf"], "weight_decay must be >= 0 and finite, got inf"),
    (["--metrics", "{dir}/m.xlsx"], "m.xlsx: the file name must end in .csv or .json"),
    (["--batch", "1000"], "--batch 1000 is larger than the 100 training rows of iris"),
])
def test_bad_training_values_are_refused_up_front(extra, phrase, tmp_path, capsys):
    argv = [*IRIS, "--epochs", "3", *(a.replace("{dir}", str(tmp_path)) for a in extra)]
    assert "epoch " not in refused(argv, 2, phrase, capsys, tmp_path).out


# --------------------------------------------------------------------------- 6. divergence
def test_divergence_is_reported_with_its_epoch(capsys):
    assert main([*IRIS, "--lr", "1e3", "--epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert "warning: epoch 1: loss 56929.4 is over 1000x the starting loss" in err
    assert "diverging" in err and err.count("diverging") == 1


def test_stop_on_divergence_keeps_the_last_good_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "ckpt.npz"
    assert main([*IRIS, "--lr", "0.3", "--epochs", "3", "--checkpoint", str(ckpt)]) == 0
    capsys.readouterr()
    metrics = tmp_path / "m.csv"
    refused([*IRIS, "--lr", "1e3", "--epochs", "6", "--resume", str(ckpt), "--checkpoint",
             str(ckpt), "--stop-on-divergence", "--metrics", str(metrics)], 1,
            f"stopped at epoch 4: diverging (--stop-on-divergence); {ckpt} keeps epoch 3", capsys)
    assert load_weights(ckpt).meta["epoch"] == 3
    assert metrics.read_text().splitlines()[-1].startswith("4,")  # the diverging epoch


# ------------------------------------------------------------------------- 7. output paths
@pytest.mark.parametrize(("argv", "phrase"), [
    (["reproduce", "-k", "seed000-iris", "--quick", "--markdown", "{dir}/missing/x.md"],
     "folder {dir}/missing does not exist"),
    ([*IRIS, "--epochs", "1", "--save", "{dir}/missing/w.npz"],
     "folder {dir}/missing does not exist"),
    ([*IRIS, "--epochs", "1", "--metrics", "{dir}/missing/m.csv"],
     "folder {dir}/missing does not exist"),
    ([*IRIS, "--epochs", "1", "--checkpoint", "{dir}/missing/c.npz"],
     "folder {dir}/missing does not exist"),
    ([*IRIS, "--epochs", "1", "--plot", "{dir}/missing/plots"],
     "folder {dir}/missing does not exist"),
    ([*IRIS, "--epochs", "1", "--plot", "{dir}/afile"], "{dir}/afile: it exists and is not a "
     "folder"),
    (["bench", "--rows", "600", "--backends", "numpy", "--markdown", "{dir}"],
     "cannot write {dir}: it is a directory"),
    (["bench", "--rows", "600", "--backends", "numpy", "--markdown", "{dir}/missing/b.md"],
     "folder {dir}/missing does not exist"),
    (["vectors", "export", "{dir}/missing/vectors"], "folder {dir}/missing does not exist"),
    (["check", "--quick", "--json", "{dir}/missing/r.json"],
     "folder {dir}/missing does not exist"),
])
def test_outputs_need_an_existing_parent_and_nothing_runs(argv, phrase, tmp_path, capsys):
    (tmp_path / "afile").write_text("keep")
    captured = refused([a.replace("{dir}", str(tmp_path)) for a in argv], 2,
                       phrase.replace("{dir}", str(tmp_path)), capsys, tmp_path)
    assert not (tmp_path / "missing").exists()
    assert "epoch" not in captured.out


def test_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nnparity.files.atomic.os.replace", full)
    refused([*IRIS, "--epochs", "1", "--save", str(tmp_path / "w.npz")], 2,
            f"writing {tmp_path / 'w.npz'}: No space left on device", capsys, tmp_path)


# ---------------------------------------------------------------------------- 8. leftovers
KILLED_WRITER = """
import os, signal, sys
from nnparity.files.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_leaves_a_named_part_file_that_the_next_fetch_removes(tmp_path):
    target = tmp_path / "train-images-idx3-ubyte"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], check=False)
    assert proc.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    match = TEMP_NAME.match(left.name)
    assert match and match["name"] == target.name and int(match["pid"]) != os.getpid()
    live = tmp_path / f"{temp_prefix('mine')}abc.part"
    live.write_text("a live writer's")
    other_host = tmp_path / f".x~another-host~{os.getpid() + 1}~abc.part"
    other_host.write_text("not ours to judge")
    assert remove_leftovers(tmp_path) == [left]
    assert sorted(tmp_path.iterdir()) == sorted([live, other_host])


def test_fetch_from_a_folder_with_a_corrupt_file_says_it_was_rejected(tmp_path):
    ds = get_dataset("mnist")
    (tmp_path / ds.files[0].name).write_bytes(b"\x00\x00\x08\x03" + bytes(100))
    messages: list[str] = []
    got, reason = _from_dir(ds, tmp_path, [ds.files[0]], tmp_path / "cache", copy=True,
                            log=messages.append)
    assert got == {} and reason is not None
    assert messages and messages[0].startswith(f"rejected {tmp_path / ds.files[0].name}: ")
    assert "trying the next source" in messages[0]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# ------------------------------------------------------------------ 9. messages with context
@pytest.mark.parametrize(("argv", "phrase"), [
    (["verify", "--seed", "-1"], "a seed is an integer from 0 to 2**32-1, got -1"),
    (["check", "--seed", "x"], "a seed is an integer from 0 to 2**32-1, got 'x'"),
    (["data", "verify", "mnist", "--from", "/nonexistent"], "--from: no such folder"),
    (["train", "--data-dir", "/nonexistent"], "--data-dir: no such folder"),
    (["train", "--keep-prob", "2"], "--keep-prob: expected a number in (0, 1], got 2.0"),
])
def test_bad_arguments_name_the_value(argv, phrase, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert phrase in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "phrase"), [
    (["bench", "--backends", "nosuch"], "unknown backend 'nosuch'; known: numpy"),
    (["train", "--model", "cnn", "--dataset", "iris"], "a CNN needs image data"),
])
def test_messages_name_the_problem(argv, phrase, capsys):
    refused(argv, 2, phrase, capsys)


def test_thread_variable_is_named(monkeypatch, capsys):
    monkeypatch.setenv("NNPARITY_THREADS", "lots")
    refused([*IRIS, "--epochs", "1"], 2, "$NNPARITY_THREADS must be a positive integer, "
            "got 'lots'", capsys)


def test_cnn_without_a_preset_takes_the_cnn_defaults():
    from nnparity.cli import build_parser
    from nnparity.commands.train import config_from_args

    args = build_parser().parse_args(["train", "--model", "cnn", "--dataset", "mnist"])
    config = config_from_args(args)
    assert (config.init, config.layers, config.activations) == (
        "seed002", (1024, 10), ("relu", "identity"))


# ------------------------------------------------------------------------------- the fuzz
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=4),
    max_leaves=12)
SPEC_FIELDS = {"input_dim": st.integers(-2, 10**10) | JSON,
               "layers": st.lists(st.integers(-1, 10**9), max_size=3) | JSON,
               "activations": st.lists(st.sampled_from(["tanh", "relu", "identity", "nope"]),
                                       max_size=3) | JSON,
               "loss": st.sampled_from(["ce", "l2", "bce", "x"]) | JSON,
               "reduction": st.sampled_from(["sum", "mean"]) | JSON,
               "weight_decay": st.floats(allow_nan=True) | JSON,
               "bias": st.booleans() | JSON, "dtype": st.sampled_from(["float64", "float32"])}
SPECS = JSON | st.fixed_dictionaries({}, optional=SPEC_FIELDS)


def _clean(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and "error: " in err, err


@settings(deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=SPECS)
def test_fuzz_spec_json_exits_0_or_cleanly_2(spec, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("fuzz") / "vectors"
    # --spec=JSON: a JSON number may start with "-", which argparse would take for an option
    code = main(["vectors", "export", str(out), "--batch", "3",
                 f"--spec={json.dumps(spec, allow_nan=True)}"])
    _clean(code, capsys.readouterr().err)


ARRAY = st.sampled_from([np.float64, np.float32, np.int64, np.float16]).flatmap(
    lambda dtype: st.lists(st.integers(1, 5), min_size=0, max_size=2).map(
        lambda shape: np.ones(shape, dtype=dtype)))
MUTATIONS = st.fixed_dictionaries({}, optional={
    "spec": JSON.map(lambda v: np.array(json.dumps(v))),
    "meta": JSON.map(lambda v: np.array(json.dumps(v))),
    "meta_fields": st.dictionaries(st.sampled_from(["epoch", "optimizer", "backend",
                                                    "first_loss", "config"]), JSON, max_size=3),
    "arrays": st.dictionaries(st.sampled_from(["param/W1", "param/b3", "state/t", "state/v.W1",
                                               "state/m.W1", "extra", "param/W9"]), ARRAY,
                              max_size=3),
    "drop": st.lists(st.sampled_from(["param/W1", "param/b3", "spec", "meta"]), max_size=2),
})


@pytest.fixture(scope="module")
def fuzz_checkpoint(tmp_path_factory) -> Path:
    """An adam checkpoint of one iris epoch."""
    path = tmp_path_factory.mktemp("ckpt") / "adam.npz"
    assert main([*IRIS, "--epochs", "1", "--optimizer", "adam", "--checkpoint", str(path)]) == 0
    return path


@settings(deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=MUTATIONS)
def test_fuzz_checkpoint_contents_exit_0_or_cleanly_2(mutation, fuzz_checkpoint,
                                                       tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "ckpt.npz"
    with np.load(fuzz_checkpoint, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    if "meta_fields" in mutation:
        meta = json.loads(str(arrays["meta"]))
        meta.update(mutation["meta_fields"])
        arrays["meta"] = np.array(json.dumps(meta))
    arrays.update({k: v for k, v in mutation.items() if k in ("spec", "meta")})
    arrays.update(mutation.get("arrays", {}))
    for key in mutation.get("drop", []):
        arrays.pop(key, None)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    capsys.readouterr()
    code = main([*IRIS, "--epochs", "2", "--optimizer", "adam", "--resume", str(path)])
    _clean(code, capsys.readouterr().err)
