"""Mapping a traced chain of layers onto a spec (no framework needed)."""

from __future__ import annotations

import re

import pytest

from nnparity.errors import InputError
from nnparity.models.structure import Layer, build
from nnparity.reference.cnn_spec import CNNSpec, ConvBlock


def dense(i: int, o: int, bias: bool = True) -> Layer:
    return Layer("dense", f"fc{i}x{o}", {"in": i, "out": o, "bias": bias})


def act(name: str) -> Layer:
    return Layer("activation", name, {"name": name})


def test_an_mlp_chain_maps_to_an_mlp_spec_with_its_keys_and_params():
    layers = [dense(4, 5), act("relu"), dense(5, 3)]
    s = build(layers, (), "ce", "mean", "float64")
    assert s.spec.layers == (5, 3) and s.spec.activations == ("relu", "identity")
    assert s.keys == {"z.layer1": 0, "h.layer1": 1, "z.layer2": 2, "h.layer2": 2}
    assert s.params == {"W1": (0, "weight"), "b1": (0, "bias"), "W2": (2, "weight"),
                        "b2": (2, "bias")}
    assert s.activations == {"layer1": "relu"} and not s.softmax_output


def test_a_cnn_chain_maps_to_the_cnn_spec_in_the_references_trace_order():
    conv = Layer("conv", "conv", {"cin": 2, "cout": 3, "kernel": 3, "stride": 1,
                                  "padding": "SAME", "bias": True})
    pool = Layer("pool", "pool", {"window": 2, "stride": 2, "padding": "SAME"})
    layers = [conv, act("relu"), pool, Layer("flatten", "flat"), dense(48, 6), act("relu"),
              Layer("dropout", "drop", {"keep_prob": 0.5}), dense(6, 3)]
    s = build(layers, (8, 8, 2), "ce", "mean", "float32")
    assert s.spec == CNNSpec((8, 8, 2), (ConvBlock(3, 3),), (6,), ("relu",), 0.5, 3,
                             dtype="float32")
    assert list(s.keys) == ["z.conv1", "h.conv1", "h.pool1", "h.flatten", "z.fc1", "h.fc1",
                            "h.dropout", "z.fc2", "h.fc2"]
    assert s.keys["h.dropout"] == 6


def test_a_final_softmax_before_cross_entropy_is_recorded_not_refused():
    s = build([dense(4, 3), Layer("softmax", "sm")], (), "ce", "mean", "float64")
    assert s.softmax_output and s.keys["h.layer1"] == 1


@pytest.mark.parametrize(("layers", "message"), [
    ([dense(4, 3), Layer("batchnorm", "bn (BatchNorm1d)")], "unsupported layer bn (BatchNorm1d)"),
    ([dense(4, 3), act("gelu")], "unsupported layer gelu"),
    ([act("relu"), dense(4, 3)], "comes before any Linear/Dense"),
    ([dense(4, 5), act("relu"), Layer("dropout", "drop", {"keep_prob": 0.5}), dense(5, 3)],
     "unsupported layer drop at this place"),
    ([dense(4, 5, bias=False), dense(5, 3)], "some Linear/Dense layers have a bias"),
])
def test_what_the_reference_cannot_express_is_refused_naming_the_layer(layers, message):
    with pytest.raises(InputError, match=re.escape(message)) as info:
        build(layers, (), "ce", "mean", "float64")
    if "unsupported" in message:
        assert "supported: Linear/Dense" in str(info.value)


def test_a_cnn_needs_its_input_shape_and_the_ce_loss():
    conv = Layer("conv", "c", {"cin": 1, "cout": 2, "kernel": 3, "stride": 1,
                               "padding": "VALID", "bias": True})
    layers = [conv, Layer("flatten", "f"), dense(8, 3)]
    with pytest.raises(InputError, match="--input-shape"):
        build(layers, (), "ce", "mean", "float64")
    with pytest.raises(InputError, match="ce loss only"):
        build(layers, (4, 4, 1), "mse", "mean", "float64")
