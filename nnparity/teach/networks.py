"""The seed networks on the page: a diagram of shapes per layer and a model file per framework.

The networks are the BP lecture's MLP (``seed000-iris``), the NumPy blog's ThreeNet
(``seed003-iris``) and the three-framework notes' CNN (``seed002-cnn``); their files are the
``nnparity export`` of the preset, written beside the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnparity.export import source
from nnparity.export.graph import (
    Act,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Layer,
    Network,
    Norm,
    Pool,
    network,
)
from nnparity.export.writers import VARIANTS, WRITERS
from nnparity.files.atomic import write_text

SEED_NETWORKS = (
    ("seed000-iris", "The BP lecture's MLP (iris)"),
    ("seed003-iris", "The NumPy blog's ThreeNet (iris)"),
    ("seed002-cnn", "The three-framework notes' CNN (MNIST)"),
)


@dataclass(frozen=True)
class Stage:
    """One box of the diagram: the layer's label and its output shape (without N)."""

    label: str
    shape: tuple[int, ...]


def _after(layer: Layer, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """The label of ``layer`` and its output shape for an input of ``shape``."""
    if isinstance(layer, Dense):
        return f"{layer.name}: dense {layer.d_in}->{layer.d_out}", (layer.d_out,)
    if isinstance(layer, Conv | Pool):
        (top, bottom), (left, right) = layer.pads
        k, s = layer.k, layer.stride
        h = (shape[0] + top + bottom - k) // s + 1
        w = (shape[1] + left + right - k) // s + 1
        c = layer.c_out if isinstance(layer, Conv) else shape[2]
        kind = "conv" if isinstance(layer, Conv) else f"{layer.mode}-pool"
        return f"{layer.name}: {kind} {k}x{k}/{s} {layer.padding}", (h, w, c)
    if isinstance(layer, Flatten):
        return "flatten (NHWC order)", (layer.h * layer.w * layer.c,)
    if isinstance(layer, Norm):
        return f"{layer.name}: layer norm, eps {layer.epsilon:g}", shape
    if isinstance(layer, GlobalPool):
        return f"{layer.name}: global average pool", (layer.c,)
    if isinstance(layer, Dropout):
        return f"dropout, keep {layer.keep_prob}", shape
    if isinstance(layer, Act):
        return layer.kind, shape
    raise TypeError(f"unknown layer {layer!r}")


def stages(net: Network) -> list[Stage]:
    """The diagram: the input, then every layer with the shape it outputs."""
    shape = net.input_shape
    out = [Stage("input", shape)]
    for layer in net.layers:
        label, shape = _after(layer, shape)
        out.append(Stage(label, shape))
    return out


@dataclass(frozen=True)
class SeedNetwork:
    """A preset, its title, its diagram and the relative paths of its exported files."""

    preset: str
    title: str
    net: Network
    stages: list[Stage]
    files: dict[str, str]


def model_file(preset: str, framework: str) -> str:
    """Where a seed network's exported file goes, relative to the page."""
    return f"models/{preset}_{framework}.py"


def write_networks(out: Path) -> list[SeedNetwork]:
    """Export every seed network for every framework into ``out/models``; describe them."""
    result = []
    for preset, title in SEED_NETWORKS:
        files = {}
        for framework, writer in WRITERS.items():
            spec, opt, _ = source.load(preset, {"variant": VARIANTS[framework]})
            relative = model_file(preset, framework)
            write_text(out / relative, writer(network(spec, opt, title)))
            files[framework] = relative
        spec, opt, _ = source.load(preset, {})
        net = network(spec, opt, title)
        result.append(SeedNetwork(preset, title, net, stages(net), files))
    return result
