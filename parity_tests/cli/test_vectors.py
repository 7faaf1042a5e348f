"""Golden vectors: export, a results file written from the vectors' own numbers passes, a
perturbed tensor is named with its diagnosis, and both results formats (JSON, .npz) and both
layouts are read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.verify.vectors import DEFAULT_SPECS

INPUTS = ("x", "y", "labels")


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vectors")
    assert main(["vectors", "export", str(folder)]) == 0
    return folder


def expected(folder: Path) -> dict[str, dict[str, dict]]:
    """Every expected tensor of every vector, from the JSON twins (as a C program would read)."""
    out = {}
    for name in json.loads((folder / "index.json").read_text())["vectors"]:
        tensors = json.loads((folder / f"{name}.json").read_text())["tensors"]
        out[name] = {k: v for k, v in tensors.items()
                     if k not in INPUTS and not (k[0] in "Wb" and k[1:].isdigit())}
    return out


def verify(results: Path, folder: Path, tmp_path: Path, capsys) -> tuple[int, dict, str]:
    report = tmp_path / "report.json"
    code = main(["verify", "--results", str(results), "--vectors", str(folder),
                 "--json", str(report)])
    return code, json.loads(report.read_text())["cases"], capsys.readouterr().out


def test_export_writes_npz_json_readme_and_index(vectors):
    names = json.loads((vectors / "index.json").read_text())["vectors"]
    assert names == list(DEFAULT_SPECS)
    for name in names:
        twin = json.loads((vectors / f"{name}.json").read_text())
        with np.load(vectors / f"{name}.npz", allow_pickle=False) as archive:
            for key, tensor in twin["tensors"].items():
                np.testing.assert_array_equal(
                    np.asarray(tensor["data"]).reshape(tensor["shape"]), archive[key])
    readme = (vectors / "README.md").read_text()
    assert "row-major" in readme and "nnparity verify --results" in readme


def test_reference_results_pass(vectors, tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"layout": "row", "vectors": expected(vectors)}))
    code, cases, out = verify(results, vectors, tmp_path, capsys)
    assert code == 0, out
    assert set(cases) == set(DEFAULT_SPECS)
    assert all(c["backends"]["yours"]["status"] == "pass" for c in cases.values())


def test_perturbed_tensor_is_named_and_diagnosed(vectors, tmp_path, capsys):
    data = expected(vectors)
    name = "seed003-relu-ce-mean-l2reg"
    data[name]["dW2"]["data"] = [-v for v in data[name]["dW2"]["data"]]
    data[name]["dW1"]["data"][0] += 1.0  # later in comparison order: not the first divergence
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"vectors": {name: data[name]}}))
    code, cases, out = verify(results, vectors, tmp_path, capsys)
    assert code == 1 and "diagnosis: opposite sign" in out
    yours = cases[name]["backends"]["yours"]
    assert "grad of W2 differs" in yours["first_divergence"]
    assert yours["diagnosis"][0]["code"] == "sign"


def test_npz_results_in_column_layout_and_nested_lists(vectors, tmp_path, capsys):
    name = "seed000-sigmoid-l2-sum"
    with np.load(vectors / f"{name}.npz", allow_pickle=False) as archive:
        arrays = {f"{name}/dW1": archive["dW1"].T, f"{name}/db2": archive["db2"].T,
                  f"{name}/z1": archive["z1"].T, f"{name}/loss": archive["loss"]}
    results = tmp_path / "results.npz"
    np.savez(results, layout=np.array("column"), **arrays)
    code, cases, out = verify(results, vectors, tmp_path, capsys)
    assert code == 0, out
    assert len(cases[name]["backends"]["yours"]["comparisons"]) == 4
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"vectors": {name: {"dW1": arrays[f"{name}/dW1"].T.tolist(),
                                                     "loss": float(arrays[f"{name}/loss"])}}}))
    assert verify(nested, vectors, tmp_path, capsys)[0] == 0


def test_safetensors_vectors_and_results(vectors, tmp_path, capsys):
    """Each vector also as ``.safetensors`` (spec and meta in the header), and a results file in
    that format (layout in the header) is read like the ``.npz`` one."""
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from nnparity.files.weights import read_safetensors, write_safetensors

    name = "seed000-sigmoid-l2-sum"
    tensors, header = read_safetensors(vectors / f"{name}.safetensors")
    assert json.loads(header["spec"]) == json.loads((vectors / f"{name}.json").read_text())["spec"]
    with np.load(vectors / f"{name}.npz", allow_pickle=False) as archive:
        for key, value in tensors.items():
            np.testing.assert_array_equal(value, archive[key])
    results = tmp_path / "results.safetensors"
    write_safetensors(results, {f"{name}/dW1": tensors["dW1"].T, f"{name}/loss": tensors["loss"]},
                      {"layout": "column"})
    code, cases, out = verify(results, vectors, tmp_path, capsys)
    assert code == 0, out
    assert len(cases[name]["backends"]["yours"]["comparisons"]) == 2


@pytest.mark.parametrize("results, message", [
    ({"vectors": {"nope": {"loss": 1.0}}}, "no vector named 'nope'"),
    ({"vectors": {"seed000-sigmoid-l2-sum": {"dQ1": 1.0}}}, "unknown tensor name"),
    ({"vectors": {"seed001-nobias-bce-sum": {"db1": [1.0]}}}, "has no such tensor"),
    ({"results": {}}, "expected an object with a 'vectors' object"),
    ({"layout": "diagonal", "vectors": {}}, "layout must be 'row' or 'column'"),
])
def test_bad_results_files_exit_2(vectors, tmp_path, capsys, results, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(results))
    code = main(["verify", "--results", str(path), "--vectors", str(vectors)])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_export_a_custom_spec(tmp_path, capsys):
    spec = {"input_dim": 2, "layers": [3, 2], "activations": ["relu", "identity"], "loss": "ce"}
    assert main(["vectors", "export", str(tmp_path), "--spec", json.dumps(spec),
                 "--name", "mine", "--batch", "3"]) == 0
    twin = json.loads((tmp_path / "mine.json").read_text())
    assert twin["tensors"]["x"]["shape"] == [3, 2] and twin["spec"]["layers"] == [3, 2]
    assert "wrote 1 vector(s)" in capsys.readouterr().out


def test_export_a_chosen_set_and_bad_names(tmp_path, capsys):
    spec = {"input_dim": 2, "layers": [2], "activations": ["identity"], "loss": "l2"}
    specs = {"a": spec, "b": {**spec, "reduction": "mean"}}
    assert main(["vectors", "export", str(tmp_path), "--spec", json.dumps(specs)]) == 0
    assert json.loads((tmp_path / "index.json").read_text())["vectors"] == ["a", "b"]
    assert main(["vectors", "export", str(tmp_path), "--spec", json.dumps({"../x": spec})]) == 2
    assert "use letters, digits" in capsys.readouterr().err
