"""Golden vectors of a CNN: exported beside the MLPs' (NHWC images, HWIO kernels, layers
numbered over conv and dense), read back by ``verify --results``: its own numbers pass, a
mistake is located and named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnparity.cli import main

NAME = "cnn-conv-pool-relu-ce-mean"


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vectors")
    assert main(["vectors", "export", str(folder)]) == 0
    return folder


def tensors(folder):
    return json.loads((folder / f"{NAME}.json").read_text())["tensors"]


def test_the_cnn_vector_holds_nhwc_maps_and_hwio_kernels(vectors):
    found = tensors(vectors)
    assert found["x"]["shape"] == [5, 4, 4, 1] and found["W1"]["shape"] == [3, 3, 1, 2]
    assert found["z1"]["shape"] == [5, 4, 4, 2] and found["W2"]["shape"] == [8, 3]
    assert found["b1"]["shape"] == [2] and found["W2_new"]["shape"] == [8, 3]
    assert "CNN's vector" in (vectors / "README.md").read_text()


def verify(vectors, tmp_path, results):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"layout": "row", "vectors": {NAME: results}}))
    report = tmp_path / "report.json"
    code = main(["verify", "--results", str(path), "--vectors", str(vectors),
                 "--json", str(report)])
    return code, json.loads(report.read_text())["cases"][NAME]["backends"]["yours"]


def test_the_vectors_own_numbers_pass(vectors, tmp_path, capsys):
    expected = {k: v for k, v in tensors(vectors).items()
                if k not in ("x", "y", "labels") and not (k[0] in "Wb" and k[1:].isdigit())}
    code, result = verify(vectors, tmp_path, expected)
    assert code == 0, capsys.readouterr().out
    assert len(result["comparisons"]) == len(expected) == 15


def test_a_doubled_conv_gradient_is_named(vectors, tmp_path, capsys):
    found = tensors(vectors)
    dW1 = found["dW1"]
    doubled = {"shape": dW1["shape"], "data": list(2 * np.asarray(dW1["data"]))}
    code, result = verify(vectors, tmp_path, {"dW1": doubled, "dW2": found["dW2"]})
    out = capsys.readouterr().out
    assert code == 1, out
    assert [d["code"] for d in result["diagnosis"]] == ["factor-two"], out


def test_a_custom_net_spec_is_one_vector(tmp_path, capsys):
    spec = {"input_shape": [3, 3, 2], "loss": "ce", "net": [
        {"kind": "conv2d", "filters": 2, "kernel": 2, "padding": "valid"}, {"kind": "tanh"},
        {"kind": "flatten"}, {"kind": "dense", "units": 2}]}
    assert main(["vectors", "export", str(tmp_path), "--spec", json.dumps(spec),
                 "--name", "mine"]) == 0
    twin = json.loads((tmp_path / "mine.json").read_text())
    assert twin["tensors"]["W1"]["shape"] == [2, 2, 2, 2] and "dW2" in twin["tensors"]
