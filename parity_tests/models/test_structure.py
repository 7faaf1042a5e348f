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


def test_mlp_dropout_after_hidden_layers_maps_to_the_spec_and_its_mask_columns():
    drop = Layer("dropout", "drop", {"keep_prob": 0.75})
    layers = [dense(4, 5), act("relu"), drop, dense(5, 6), drop, dense(6, 3)]
    s = build(layers, (), "ce", "mean", "float64")
    assert s.spec.dropout_after == (1, 2) and s.spec.keep_prob == 0.75
    assert s.spec.dropout_units == 11 and s.dropouts == ["h.dropout1", "h.dropout2"]
    assert s.keys["h.dropout1"] == 2 and s.keys["h.dropout2"] == 4


@pytest.mark.parametrize(("layers", "message"), [
    ([dense(4, 3), Layer("batchnorm3d", "bn (BatchNorm3d)")], "unsupported layer bn (BatchNorm3d)"),
    ([dense(4, 3), act("elu")], "unsupported layer elu"),
    ([act("relu"), dense(4, 3)], "comes before any Linear/Dense"),
    ([dense(4, 5), Layer("dropout", "drop", {"keep_prob": 0.5}), act("relu"), dense(5, 3)],
     "unsupported layer relu at this place"),
    ([dense(4, 5), Layer("dropout", "d1", {"keep_prob": 0.5}), dense(5, 5),
      Layer("dropout", "d2", {"keep_prob": 0.8}), dense(5, 3)],
     "dropout layers with different rates (d1, d2)"),
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
    regression = build(layers, (4, 4, 1), "mse", "mean", "float64")  # beyond the CNN: a net
    assert regression.spec.family == "net" and regression.spec.loss == "mse"
    assert list(regression.spec.param_shapes()) == ["conv1.W", "conv1.b", "dense1.W", "dense1.b"]
    assert regression.keys == {"z.conv1": 0, "h.conv1": 0, "h.flatten1": 1, "z.dense1": 2,
                               "h.dense1": 2}


@pytest.mark.parametrize("layers", [
    [dense(4, 5), act("relu"), dense(5, 3), Layer("dropout", "drop", {"keep_prob": 0.5})],
    [dense(4, 5, bias=False), dense(5, 3)],
    [dense(4, 5), act("tanh"), Layer("dropout", "d", {"keep_prob": 0.5}), dense(5, 5),
     act("prelu"), dense(5, 3, bias=False)],
])
def test_chains_beyond_the_mlp_map_layer_for_layer_onto_a_net(layers):
    s = build(layers, (), "ce", "mean", "float64")
    kinds = [x.kind for x in layers]
    assert s.spec.family == "net"
    assert [x.kind for x in s.spec.net] == [{"activation": "", "dense": "dense"}.get(k, k)
                                            or layers[i].info["name"]
                                            for i, k in enumerate(kinds)]
    assert sorted(s.keys.values())[-1] == len(layers) - 1
    assert all(index < len(layers) for index, _ in s.params.values())
