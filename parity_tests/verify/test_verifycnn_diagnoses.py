"""Bugs planted into the correct examples (``planted_bugs.py``): a NumPy CNN's (loops and
im2col) and an MLP's classic mistakes, each located at its first divergence and named by a
diagnosis confirmed by the reference with the mistake built in."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from planted_bugs import CNN, EXAMPLES, MLP

from nnparity.cli import main
from nnparity.verify import mistakes
from nnparity.verify.adapters import build_adapter, read_declaration
from nnparity.verify.problem import make_problem, reference_tensors

BUGS = {**CNN, **MLP}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_planted_bug_is_located_and_named(name, tmp_path, capsys):
    bug = BUGS[name]
    path = bug.write(tmp_path, name)
    report = tmp_path / "report.json"
    code = main(["verify", str(path), "--backends", "none", "--json", str(report), *bug.args])
    out = capsys.readouterr().out
    assert code == 1, out
    result = json.loads(report.read_text())["cases"][path.name]["backends"]["yours"]
    first = next(c for c in result["comparisons"] if not c["passed"])
    assert (first["stage"], first["name"]) == bug.first, out
    [found] = result["diagnosis"]
    assert found["code"] == bug.code, out
    assert f"diagnosis: {found['title']}" in out and "checked: " in out


def test_the_hard_coded_batch_names_its_factor(tmp_path, capsys):
    path = MLP["hard_coded_batch"].write(tmp_path, "batch20")
    assert main(["verify", str(path), "--backends", "none"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "is 0.25x the reference: a hard-coded batch of 20 where the batch is 5?" in out


def test_each_cnn_mistake_changes_the_reference():
    """Each CNN mistake changes the reference's numbers on the examples' problem (a variant
    equal to the reference would confirm any tensor)."""

    adapter = build_adapter(read_declaration(EXAMPLES / "correct_cnn_loops.py"), None, "x")
    problem = make_problem(adapter.spec, 0, 5, edges=False)
    spec, right = adapter.spec, reference_tensors(problem)
    order = np.arange(int(np.prod(spec.flat_map)))[::-1]
    variants = [mistakes.unflipped(spec), mistakes.pool_to_all(spec),
                mistakes.padded_on_the_other_side(spec), mistakes.flattened_in_order(spec, order)]
    for variant in variants:
        wrong = reference_tensors(replace(problem, spec=variant))
        assert any(not np.allclose(right[k], wrong[k]) for k in right), variant
