"""What every exported file shares: its docstring header and names for the optimiser."""

from __future__ import annotations

from nnparity.files.escape import python_docstring, python_string

from .graph import Network


def optimizer_name(net: Network) -> str:
    """``"SGD (lr 0.01)"``-style description of the network's optimiser."""
    opt = net.optimizer
    extra = {"sgd": "", "momentum": f", momentum {opt.momentum}",
             "adam": f", betas {opt.beta1}/{opt.beta2}, eps {opt.eps}"}[opt.name]
    return f"{opt.name} (lr {opt.lr}{extra})"


def shapes_table(net: Network) -> str:
    """One line per canonical parameter: ``W1 [4, 20]``."""
    return "\n".join(f"    {name:<8} {list(shape)}" for name, shape in net.shapes.items())


def header(net: Network, framework: str, needs: str, layout: str) -> str:
    """The module docstring of an exported file."""
    return python_docstring(
        f"{net.title}: a standalone {framework} model file (needs only {needs}).\n\n"
        f"Input {list(net.input_shape)} per sample (canonical layout; this file: {layout}); "
        f"{net.outputs} outputs.\nLoss {net.loss} ({net.reduction}), weight decay "
        f"{net.weight_decay}, {net.dtype}, optimiser {optimizer_name(net)}.\n"
        "Parameters in the canonical layout (the reference's names and shapes):\n\n"
        f"{shapes_table(net)}\n\nWritten by `nnparity export`.\n") + "\n"


def shapes_constant(net: Network) -> str:
    """``SHAPES = {...}``: canonical name -> shape, one per line."""
    rows = "".join(f"    {python_string(name)}: {tuple(shape)!r},\n"
                   for name, shape in net.shapes.items())
    return f"SHAPES = {{\n{rows}}}\n"


def build_extras(net: Network) -> str:
    """Keys ``build()`` adds for ``nnparity check --model-file``: the canonical NHWC input
    shape of a CNN, which a model does not declare."""
    if len(net.input_shape) != 3:
        return ""
    return f', "input_shape": {tuple(net.input_shape)!r}'


def custom_layers(names: dict[str, str]) -> str:
    """``NNPARITY_LAYERS``: which custom module or function computes which reference
    activation (read by ``nnparity check --model-file``)."""
    if not names:
        return ""
    entries = ", ".join(f"{python_string(k)}: {python_string(v)}" for k, v in sorted(names.items()))
    return f"NNPARITY_LAYERS = {{{entries}}}  # for nnparity check --model-file"
