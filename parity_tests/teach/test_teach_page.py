"""The teaching page: every section is there, shows the reference's live source, measures its
numbers while generating, works without a missing framework and links nothing external."""

from __future__ import annotations

import html
import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("latex2mathml", reason="the page needs nnparity[teach]")
pytest.importorskip("pygments", reason="the page needs nnparity[teach]")

from nnparity.cli import main
from nnparity.reference import dense
from nnparity.teach import gpu_report, site
from nnparity.teach.measure import DTYPES, FRAMEWORKS, load, measure
from nnparity.teach.sections import blocks
from nnparity.teach.traps import TRAPS


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _section(page: str, key: str) -> str:
    match = re.search(rf'<section id="{re.escape(key)}".*?</section>', page, re.S)
    assert match, f"no section {key}"
    return match.group(0)


def _loaded() -> dict:
    return {f.key: load(f) for f in FRAMEWORKS}


def test_every_block_and_trap_has_a_section_with_the_live_reference_source(site: Path) -> None:
    page = (site / "index.html").read_text()
    for block in blocks():
        text = _text(_section(page, block.key))
        assert "<math" in _section(page, block.key)
        for name, function in block.sources():
            for line in inspect.getsource(function).splitlines():
                assert line.strip() in text, f"{block.key}: {name} line {line!r} not shown"
    for key in [t.key for t in TRAPS] + ["trap-tf32", "figures", "net-seed000-iris",
                                         "net-seed003-iris", "net-seed002-cnn"]:
        _section(page, key)


def test_changing_a_reference_function_changes_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    block = next(b for b in blocks() if b.key == "dense")
    modules = _loaded()
    before = site._block_section(block, modules)

    def dense_backward(delta, h, W, bias_shape, *, need_dh=True):
        """A changed backward: dW doubled (marker: CHANGED-FOR-THE-TEST)."""
        db = None if bias_shape is None else delta.sum(axis=0).reshape(bias_shape)
        return delta @ W.T, 2 * (h.T @ delta), db

    monkeypatch.setattr(dense, "dense_backward", dense_backward)
    after = site._block_section(block, modules)
    assert "CHANGED-FOR-THE-TEST" in _text(after) and "CHANGED-FOR-THE-TEST" not in before
    if any(not isinstance(m, str) for m in modules.values()):  # a framework measured it
        assert '<td class="fail">FAIL</td>' in after and "FAIL" not in before


def test_every_parity_number_is_measured_when_the_page_is_built(site: Path) -> None:
    page = (site / "index.html").read_text()
    modules = {k: m for k, m in _loaded().items() if not isinstance(m, str)}
    if not modules:
        pytest.skip("no framework installed: the page has no parity numbers")
    for block in blocks():
        table = re.search(rf'<table class="parity" id="parity-{block.key}">.*?</table>',
                          page, re.S).group(0)
        for key, module in modules.items():
            for dtype in DTYPES:
                row = re.search(rf'data-framework="{key}" data-dtype="{dtype}">(.*?)</tr>',
                                table, re.S).group(1)
                worst = measure(block, module, dtype).worst
                shown = re.search(r'class="abs">(.*?)</td><td class="rel">(.*?)</td>', row)
                assert shown.groups() == (f"{worst.max_abs:.1e}", f"{worst.max_rel:.1e}"), \
                    f"{block.key} {key} {dtype}"


def test_a_missing_framework_gets_a_note_and_the_section_still_builds() -> None:
    block = blocks()[0]
    missing = {f.key: f"{f.requires} is not installed" for f in FRAMEWORKS}
    body = site._block_section(block, missing)
    assert body.count("not installed") >= 2 * len(FRAMEWORKS)
    assert "def dense(" in _text(body)


def test_no_external_urls_and_every_local_link_exists(site: Path) -> None:
    for name in ("index.html", "style.css"):
        text = (site / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9]", text, re.I), f"{name} links outside"
    page = (site / "index.html").read_text()
    for link in re.findall(r'(?:href|src)="([^"#][^"]*)"', page):
        assert (site / link).is_file(), f"{link} is missing"


def test_the_tf32_section_reads_the_newest_committed_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_report, "REPORTS", tmp_path)
    assert "No GPU measurement has been committed yet" in site._tf32_section()
    report = {"created": "2026-11-01T10:00:00Z", "command": {"device": "cuda"},
              "environment": {"torch": "2.13.0", "precision": {
                  "device": "cuda", "device_name": "NVIDIA H200",
                  "torch_cuda_matmul_allow_tf32": True}}, "summary": {"passed": 1},
              "cases": {"relu-ce-f32-b4": {"backends": {"torch": {"comparisons": [
                  {"stage": "grad", "name": "W1", "max_rel": 1.2e-3}]}}}}}
    (tmp_path / "check-cuda.json").write_text(json.dumps(report))
    body = _text(site._tf32_section())
    assert "2026-11-01T10:00:00Z" in body and "1.2e-03" in body
    assert "device_name NVIDIA H200" in body and "torch_cuda_matmul_allow_tf32 True" in body


def test_the_exported_model_files_are_on_the_page(site: Path) -> None:
    page = (site / "index.html").read_text()
    for preset in ("seed000-iris", "seed003-iris", "seed002-cnn"):
        for framework in ("torch", "keras", "jax", "numpy"):
            assert f'href="models/{preset}_{framework}.py"' in page


def test_teach_refuses_a_missing_metrics_file(tmp_path: Path, capsys) -> None:
    code = main(["teach", "--out", str(tmp_path / "site"), "--metrics", str(tmp_path / "no.csv")])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "site").exists()


def test_a_metrics_file_is_plotted(tmp_path: Path) -> None:
    from nnparity.teach import figures

    plt = figures.pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    path = tmp_path / "run.csv"
    path.write_text("epoch,loss,train_error,test_error,seconds\n1,0.9,0.5,0.6,0.1\n"
                    "2,0.5,0.2,0.3,0.1\n")
    figures.training_curves(plt, figures.read_metrics(path), "run", tmp_path / "run.svg")
    assert (tmp_path / "run.svg").read_text().startswith("<?xml")
    np.testing.assert_array_equal(figures.read_metrics(path)["epoch"], [1, 2])


def test_the_traps_say_not_installed_without_frameworks() -> None:
    for trap in TRAPS:
        rows = trap.run({}).rows
        frameworks_rows = [r for r in rows if r[0] in {f.title for f in FRAMEWORKS}]
        assert all(r[-1] == "not installed" for r in frameworks_rows)
        if trap.key in ("trap-flatten", "trap-same"):
            assert rows == [("not installed",)]


def test_the_page_builds_without_any_framework(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site, "load", lambda f: f"{f.requires} is not installed")
    page = site.build(tmp_path).read_text()
    for block in blocks():
        section = _section(page, block.key)
        assert section.count("not installed") >= 2 * len(FRAMEWORKS)
        assert "data-framework" not in section
    for trap in TRAPS:
        assert "not installed" in _text(_section(page, trap.key)) or trap.key == "trap-adam"


def test_teach_and_export_refuse_an_output_in_a_missing_folder(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "no" / "such"
    assert main(["teach", "--out", str(missing / "site")]) == 2
    assert main(["export", "--framework", "numpy", "seed000-iris", "-o", str(missing / "f.py")]) \
        == 2
    assert capsys.readouterr().err.count("does not exist") == 2
    assert not (tmp_path / "no").exists()
