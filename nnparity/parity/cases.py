"""The parity case matrix: named, regex-selectable cases on embedded or seeded synthetic data.

A case name lists every dimension, e.g. ``relu-ce-sum-wd0-adam-f64-b4-iris``:
hidden activation, loss, reduction, weight decay, optimiser, dtype, batch size, architecture.

Dimensions: activation {sigmoid, tanh, relu, identity} x loss {l2, ce} x reduction
{sum, mean} x weight decay {0, 1e-3} x optimiser {sgd, momentum, adam} x dtype {float64, float32}
x batch {1, 4, 20} x architecture (the source documents' nets, :data:`ARCHITECTURES`). The full
product (6912 cases) is too big, so three covering designs are used:

- ``quick``: every *pair* of values of activation, loss, reduction, optimiser and dtype
  (greedy pairwise covering array), on the small nets (iris, xor) at batch 4; plus two odd
  shapes (12 + 2 = 14 cases).
- ``default`` (what ``nnparity check`` runs): every *pair* of values of all eight dimensions
  (greedy pairwise covering array, architectures and batch sizes included); plus the odd shapes
  (26 + 8 = 34 cases).
- ``full``: every combination of the six dimensions that change the math (activation, loss,
  reduction, weight decay, optimiser, dtype: 192 cases) with architecture and batch size rotated
  deterministically so that every architecture meets every value of every other dimension and
  every batch size; plus the default cases and the odd shapes (224 distinct cases).

The activation dimension is the hidden layers' activation. The output layer is chosen per loss,
which is where the senseless pairs are left out rather than run:
- ``ce`` always takes logits (identity output): softmax cross-entropy after a squashing
  activation is not what any framework's CE-from-logits computes.
- ``l2`` uses the hidden activation at the output (the BP lecture: sigmoid/tanh outputs with
  L2), except relu, which gets an identity output: L2 on a relu output lets whole output units die,
  and a comparison of all-zero deltas proves nothing.
Odd shapes (:data:`ODD_SHAPES`): a width-1 hidden layer, five layers, ``bce`` with a single
output, and the NumPy basics lecture's bias-free net.

Data is deterministic from ``(seed, case name)``: iris rows from :mod:`nnparity.datasets` when
available (else Gaussian features of width 4), MNIST-shaped inputs as uniform pixels in [0, 1],
otherwise standard normal features. Labels are class indices for ``ce``, one-hot float targets for
``l2`` and 0/1 targets for ``bce``. Every case runs :data:`STEPS` optimiser steps on distinct
batches, the same for every backend.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any

import numpy as np

from nnparity.reference.cnn_spec import CNNSpec, ConvBlock
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import FAMILIES, Spec, init_params
from nnparity.reference.optim import Optimizer
from nnparity.reference.spec import MLPSpec

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
LOSSES = ("l2", "ce")
REDUCTIONS = ("sum", "mean")
WEIGHT_DECAYS = (0.0, 1e-3)
OPTIMIZERS = ("sgd", "momentum", "adam")
DTYPES = ("float64", "float32")
BATCHES = (1, 4, 20)
# name -> (input width, hidden widths + output width); the output width is replaced for bce.
ARCHITECTURES: dict[str, tuple[int, tuple[int, ...]]] = {
    "iris": (4, (20, 20, 3)),  # the BP lecture and the NumPy blog iris net
    "mnist": (784, (30, 20, 10)),  # the BP lecture MNIST, sigmoid
    "mnist5": (784, (30, 5, 10)),  # the BP lecture MNIST, relu variant
    "xor": (2, (6, 2)),  # the NumPy blog TwoNet on XOR
    "twolayer": (784, (50, 10)),  # the three-framework notes' TwoLayerNet
    "threenet": (784, (200, 80, 10)),  # the NumPy blog ThreeNet on MNIST
}
SMALL_ARCHITECTURES = ("iris", "xor")
SELECTIONS = ("quick", "default", "full")
MODELS = ("all", *FAMILIES)  # check --model: every family of the registry
STEPS = 10
# Base learning rates. SGD/momentum rates are divided by the curvature scale (the batch size for
# a summed loss times the mean squared norm of an input row), so that 10 steps neither diverge
# nor saturate, which would make float32 comparisons measure chaos instead of bugs.
LEARNING_RATES = {"sgd": 0.2, "momentum": 0.03, "adam": 1e-3}
BIAS_RANGE = 0.5  # initial biases ~ U(-0.5, 0.5), weights by the case's init scheme
STATE_RANGE = (0.5, 1.5)  # running statistics ~ U(0.5, 1.5): an evaluation pass uses them
IRIS_ENERGY = 58.0
# Adam's first step moves each weight by lr * g / (|g| + eps): for entries with |g| near eps it
# is ill-conditioned, amplifying a gradient's rounding by lr / eps. In float32 (rounding ~1e-7 of
# the largest gradient) that alone reached 1.2e-4 relative on the MNIST-shaped nets at the
# frameworks' eps (1e-8/1e-7), so float32 Adam cases use eps = 1e-3 (worst measured: 4e-6 < 1e-5).
# Float64 cases keep the framework defaults.
ADAM_EPS_FLOAT32 = 1e-3  # mean squared norm of an iris row (cm^2)
DTYPE_TAGS = {"float64": "f64", "float32": "f32"}
Params = dict[str, np.ndarray]
Batch = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Case:
    """One parity case: a spec, an optimiser, a batch size and a data recipe.

    ``spec`` is any model spec (``MLPSpec``, ``CNNSpec``);
    ``dropout_mask`` (if any) is passed to ``forward``/``gradients`` of every backend.
    """

    name: str
    spec: Spec
    optimizer: str = "sgd"
    lr: float = 0.01
    batch: int = 4
    architecture: str = ""
    init: str | None = None  # init scheme of the spec's family; None: the family's default
    steps: int = STEPS  # lockstep optimiser steps (0: forward and gradients only)
    eps: float | None = None  # Adam's epsilon; None: the variant's framework default
    dropout_mask: np.ndarray | None = field(default=None, compare=False)
    # Hand-made params and one batch (edge cases), used instead of the seeded draws.
    given: tuple[Params, Batch] | None = field(default=None, compare=False)
    # Inputs placed exactly on a kink (relu/prelu at z = 0): a finite difference straddles it
    # and measures neither one-sided derivative, so the reference's own check skips the case.
    at_kink: bool = False

    @property
    def dtype(self) -> str:
        """The spec's dtype."""
        return str(self.spec.dtype)

    def make_optimizer(self, variant: str = "torch") -> Optimizer:
        """The case's optimiser in a framework's formulation (``torch`` or ``keras``)."""
        return Optimizer(self.optimizer, lr=self.lr, eps=self.eps, variant=variant)

    def rng(self, seed: int, purpose: str) -> np.random.Generator:
        """A generator determined by ``seed``, the case name and a purpose tag."""
        return np.random.default_rng([seed, zlib.crc32(f"{self.name}/{purpose}".encode())])

    def params(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Initial parameters, reproducible from ``seed`` and the case name (or the given ones)."""
        if self.given is not None:
            return {k: np.array(v, dtype=self.dtype) for k, v in self.given[0].items()}
        rng = self.rng(seed, "init")
        draw = int(rng.integers(2**31))
        params = init_params(self.spec, self.init, draw)
        # Non-zero biases: zero ones would hide a bias that is never copied into a backend, and
        # make post-update biases pure gradient noise (a zero-sum CE bias gradient in float32).
        for name, value in params.items():
            if self.spec.is_state(name):  # running statistics off their start (a variance > 0)
                params[name] = rng.uniform(*STATE_RANGE, value.shape).astype(value.dtype)
            elif not self.spec.is_weight(name):
                params[name] = rng.uniform(-BIAS_RANGE, BIAS_RANGE, value.shape).astype(value.dtype)
        return params

    def batches(self, seed: int = 0) -> list[Batch]:
        """``steps`` batches ``(x, y)`` of ``batch`` rows each (the first also drives forward),
        or the one given batch, once per step (at least once)."""
        if self.given is not None:
            x, y = self.given[1]
            return [(np.asarray(x, dtype=self.dtype), np.asarray(y))] * max(self.steps, 1)
        rng = self.rng(seed, "data")
        return [make_batch(self.spec, self.architecture, self.batch, rng)
                for _ in range(max(self.steps, 1))]


def make_batch(
    spec: Spec, architecture: str, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One seeded batch of inputs and targets fitting ``spec`` (see the module docstring)."""
    shape = tuple(getattr(spec, "input_shape", None) or (spec.input_dim,))
    if architecture == "iris" and shape == (4,) and (table := _iris()) is not None:
        features, labels = table
        rows = rng.choice(len(features), size=n, replace=n > len(features))
        x, y_idx = features[rows], labels[rows]
    else:
        if shape[-1] == 784 or len(shape) == 3:
            x = rng.uniform(0.0, 1.0, size=(n, *shape))
        else:
            x = rng.standard_normal((n, *shape))
        y_idx = rng.integers(0, max(spec.output_dim, 2), size=n)
    x = x.astype(spec.dtype)
    if spec.loss == "ce":
        return x, y_idx.astype(np.int64)
    if spec.loss == "bce":
        return x, (y_idx % 2).astype(spec.dtype)
    return x, np.eye(spec.output_dim, dtype=spec.dtype)[y_idx % spec.output_dim]


@lru_cache(maxsize=1)
def _iris() -> tuple[np.ndarray, np.ndarray] | None:
    try:
        from nnparity.datasets.iris import iris_table
    except ImportError:
        return None
    return iris_table()


def output_activation(hidden: str, loss: str) -> str:
    """Identity (logits) for ce/bce; the hidden activation for l2, except relu -> identity."""
    if loss != "l2" or hidden == "relu":
        return "identity"
    return hidden


def learning_rate(optimizer: str, spec: Spec, batch: int, architecture: str) -> float:
    """The case's learning rate: the base rate over the curvature scale (Adam: the base)."""
    base = LEARNING_RATES[optimizer]
    if optimizer == "adam":
        return base
    width = int(np.prod(getattr(spec, "input_shape", None) or (spec.input_dim,)))
    energy = IRIS_ENERGY if architecture == "iris" else width / 3 if width == 784 else width
    return base / ((batch if spec.reduction == "sum" else 1) * max(energy, 1.0))


def _wd_tag(weight_decay: float) -> str:
    return "wd0" if weight_decay == 0 else "wd" + f"{weight_decay:.0e}".replace("e-0", "e-")


def mlp_case(
    activation: str,
    loss: str,
    reduction: str,
    weight_decay: float,
    optimizer: str,
    dtype: str,
    batch: int,
    architecture: str,
) -> Case:
    """The matrix case for one value of every dimension."""
    input_dim, widths = ARCHITECTURES[architecture]
    acts = (activation,) * (len(widths) - 1) + (output_activation(activation, loss),)
    spec = MLPSpec(input_dim, widths, acts, loss=loss, reduction=reduction,
                   weight_decay=weight_decay, dtype=dtype)
    name = "-".join([activation, loss, reduction, _wd_tag(weight_decay), optimizer,
                     DTYPE_TAGS[dtype], f"b{batch}", architecture])
    return _case(name, spec, optimizer, batch, architecture)


def _odd(name: str, optimizer: str, batch: int, **fields: Any) -> Case:
    return _case(name, MLPSpec(**fields), optimizer, batch, "odd")


def _case(name: str, spec: Spec, optimizer: str, batch: int, architecture: str) -> Case:
    eps = ADAM_EPS_FLOAT32 if optimizer == "adam" and spec.dtype == "float32" else None
    return Case(name, spec, optimizer, learning_rate(optimizer, spec, batch, architecture), batch,
                architecture, eps=eps)


# Odd shapes, in both dtypes: they stress shape handling rather than the formulas.
ODD_SHAPES: tuple[Case, ...] = tuple(
    case
    for dtype in DTYPES
    for case in (
        _odd(f"odd-width1-tanh-ce-mean-momentum-{DTYPE_TAGS[dtype]}-b4", "momentum", 4,
             input_dim=5, layers=(1, 3), activations=("tanh", "identity"), loss="ce",
             reduction="mean", dtype=dtype),
        _odd(f"odd-five-layers-sigmoid-l2-sum-wd1e-3-adam-{DTYPE_TAGS[dtype]}-b4", "adam", 4,
             input_dim=6, layers=(8, 7, 6, 5, 4), activations=("sigmoid",) * 5, loss="l2",
             reduction="sum", weight_decay=1e-3, dtype=dtype),
        _odd(f"odd-bce-single-output-relu-mean-sgd-{DTYPE_TAGS[dtype]}-b20", "sgd", 20,
             input_dim=3, layers=(4, 1), activations=("relu", "identity"), loss="bce",
             reduction="mean", dtype=dtype),
        # the NumPy basics lecture's known-answer net: no biases, sigmoid, sigmoid, softmax-CE.
        _odd(f"odd-nobias-sigmoid-ce-sum-adam-{DTYPE_TAGS[dtype]}-b1", "adam", 1,
             input_dim=3, layers=(4, 4, 3), activations=("sigmoid", "sigmoid", "identity"),
             loss="ce", reduction="sum", bias=False, dtype=dtype),
    )
)


# CNN cases: a tiny net on 24x23x2 images (odd height, odd width: TensorFlow's
# asymmetric SAME padding occurs at stride 2) -> conv blocks of 3 and 4 filters (relu, 2x2 SAME
# max-pool) -> dense 6 (relu) -> dropout (keep 0.5, an explicit mask) -> 3 classes, softmax CE
# (mean); and the three-framework notes' full net at batch 2. Every CNN case runs
# CNN_STEPS lockstep steps.
CNN_DIMENSIONS: dict[str, Sequence[Any]] = {
    "kernel": (3, 5), "stride": (1, 2), "padding": ("SAME", "VALID"), "blocks": (1, 2),
    "batch": (1, 4), "optimizer": ("sgd", "adam"), "dtype": DTYPES,
}
CNN_ARCHITECTURE = "cnn"  # the CNN cases' label and name prefix (check -k cnn selects them)
CNN_INPUT = (24, 23, 2)
CNN_STEPS = 5
CNN_LEARNING_RATES = {"sgd": 0.05, "momentum": 0.02, "adam": 1e-3}


def cnn_case(kernel: int, stride: int, padding: str, blocks: int, batch: int, optimizer: str,
             dtype: str) -> Case:
    """The tiny-CNN case for one value of every CNN dimension, with a seeded dropout mask."""
    conv = tuple(ConvBlock(filters, kernel, stride, padding) for filters in (3, 4)[:blocks])
    spec = CNNSpec(CNN_INPUT, conv, dense=(6,), keep_prob=0.5, classes=3, dtype=dtype)
    name = "-".join([CNN_ARCHITECTURE, f"k{kernel}", f"s{stride}", padding.lower(),
                     f"{blocks}block", optimizer, DTYPE_TAGS[dtype], f"b{batch}"])
    return _cnn(name, spec, optimizer, batch)


def _cnn(name: str, spec: Spec, optimizer: str, batch: int,
         architecture: str = CNN_ARCHITECTURE) -> Case:
    """A case of :data:`CNN_STEPS` steps at :data:`CNN_LEARNING_RATES`, with a dropout mask
    seeded by its name when the network has dropout."""
    eps = ADAM_EPS_FLOAT32 if optimizer == "adam" and spec.dtype == "float32" else None
    mask = draw_dropout_mask(spec, batch, np.random.default_rng(zlib.crc32(name.encode()))) \
        if spec.dropout_units else None
    return Case(name, spec, optimizer, CNN_LEARNING_RATES[optimizer], batch, architecture,
                steps=CNN_STEPS, eps=eps, dropout_mask=mask)


SPEC_BATCH = 4


def spec_cases(spec: Spec, label: str) -> list[Case]:
    """A user's spec (``check --spec``) with SGD, momentum and Adam: one case each, named
    ``<label>-<optimizer>-<dtype>-b4``, run like the CNN cases (a seeded dropout mask, five
    steps)."""
    return [_cnn(f"{label}-{optimizer}-{DTYPE_TAGS[spec.dtype]}-b{SPEC_BATCH}", spec, optimizer,
                 SPEC_BATCH, "spec") for optimizer in OPTIMIZERS]


def _cnn_cases() -> list[Case]:
    """Pairwise over :data:`CNN_DIMENSIONS`, plus the three-framework notes' net (float32 and
    float64, batch 2, Adam 1e-4 as in the source, one step)."""
    cases = [cnn_case(**row) for row in pairwise(CNN_DIMENSIONS)]
    for dtype in DTYPES:
        seed002 = _cnn(f"{CNN_ARCHITECTURE}-seed002-adam-{DTYPE_TAGS[dtype]}-b2",
                       CNNSpec.seed002(dtype=dtype),
                       "adam", 2)
        cases.append(Case(**{**seed002.__dict__, "lr": 1e-4, "steps": 1}))
    return cases


# The CNN parity tests' cases (``parity_tests/parity/test_cnn_parity.py``; in no selection):
# each a given case, its params from an init scheme and a seed, its batch and mask from the seed.
TINY_CNN_SIZES = ((9, 8), (13, 12), (17, 16), (21, 20), (29, 28))  # (H, W), smallest first
CNN_LOCKSTEP_SHAPES = {"k3-s1-same-2blocks": (3, 1, "SAME", 2),
                       "k5-s2-valid-1block": (5, 2, "VALID", 1)}
CNN_TEST_LEARNING_RATES = {"sgd": 0.05, "adam": 0.01}


def tiny_cnn_spec(kernel: int, stride: int, padding: str, blocks: int, dtype: str,
                  **changes: Any) -> CNNSpec:
    """``CNNSpec.tiny`` with ``blocks`` conv blocks (3 then 4 filters) of the given kernel,
    stride and padding, on the smallest input of :data:`TINY_CNN_SIZES` the blocks fit."""
    conv = (ConvBlock(3, kernel, stride, padding), ConvBlock(4, kernel, stride, padding))[:blocks]
    for h, w in TINY_CNN_SIZES:
        try:
            return CNNSpec.tiny(dtype, conv=conv, input_shape=(h, w, 2), **changes)
        except ValueError:
            continue
    raise ValueError(f"no input size fits {conv}")


def seeded_params(spec: Spec, seed: int, scheme: str = "") -> Params:
    """Parameters of ``scheme`` drawn from ``seed`` (default: ``seed002`` and ``he`` by
    turns)."""
    return init_params(spec, scheme or ("seed002", "he")[seed % 2], seed)


def seeded_batch(spec: CNNSpec, batch: int, seed: int,
                 i: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [B, H, W, C], y, mask [B, units])`` number ``i`` drawn from ``seed``; labels are
    class indices or one-hot rows by turns."""
    rng = np.random.default_rng([seed, i])
    x = rng.standard_normal((batch, *spec.input_shape)).astype(spec.dtype)
    y = rng.integers(0, spec.classes, batch)
    if (seed + i) % 2:
        y = np.eye(spec.classes, dtype=spec.dtype)[y]
    return x, y, draw_dropout_mask(spec, batch, rng)


def seeded_case(name: str, spec: CNNSpec, batch: int, seed: int, scheme: str = "") -> Case:
    """Forward, loss, deltas and gradients on :func:`seeded_batch` with its mask."""
    x, y, mask = seeded_batch(spec, batch, seed)
    return Case(name, spec, batch=batch, architecture=CNN_ARCHITECTURE, steps=0,
                dropout_mask=mask, given=(seeded_params(spec, seed, scheme), (x, y)))


def cnn_gradient_cases() -> list[Case]:
    """The full product kernel {3, 5} x stride {1, 2} x padding x {1, 2} blocks per dtype (batch
    1 or 4, weight decay and reduction by turns), and beyond it an even kernel, an overlapping
    SAME pool, a block without pool, and no hidden dense layer (dropout right after the flatten:
    torch's mask is permuted)."""
    out = []
    combos = itertools.product((3, 5), (1, 2), ("SAME", "VALID"), (1, 2))
    for i, (k, s, pad, blocks) in enumerate(combos):
        for dtype in DTYPES:
            batch = (1, 4)[(i + (dtype == "float32")) % 2]
            wd, red = (0.0, 1e-3)[i // 2 % 2], ("mean", "sum")[i // 4 % 2]
            spec = tiny_cnn_spec(k, s, pad, blocks, dtype, weight_decay=wd, reduction=red)
            out.append(seeded_case(f"k{k}-s{s}-{pad.lower()}-{blocks}blocks-{dtype}-b{batch}",
                                   spec, batch, i))
    extras = {
        "k4-s1-same-even-kernel": ((ConvBlock(3, 4), ConvBlock(4, 2, 2)), (6, 5)),
        "k3-pool3-s2-overlapping": ((ConvBlock(3, 3, pool=3, pool_stride=2),), (6, 5)),
        "k3-no-pool-then-valid-pool": ((ConvBlock(3, 3, pool=0),
                                        ConvBlock(4, 3, 2, pool=2, pool_padding="VALID")), (6, 5)),
        "k3-no-hidden-dense": ((ConvBlock(3, 3), ConvBlock(4, 3)), ()),
    }
    for j, (name, (conv, dense)) in enumerate(extras.items()):
        for dtype in DTYPES:
            spec = CNNSpec.tiny(dtype, conv=conv, input_shape=(9, 8, 2), dense=dense)
            out.append(seeded_case(f"{name}-{dtype}-b3", spec, 3, 100 + j))
    return out


def pairwise(dimensions: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """A deterministic greedy covering array: every pair of values of two dimensions appears.

    Each new row is the first row of the full product that covers the most still-uncovered
    pairs (vectorised over the product, which is small: a few thousand rows).
    """
    names = list(dimensions)
    sizes = [len(dimensions[n]) for n in names]
    grid = np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)
    pair_ids, offset = [], 0
    for i, j in itertools.combinations(range(len(names)), 2):
        pair_ids.append(offset + grid[:, i] * sizes[j] + grid[:, j])
        offset += sizes[i] * sizes[j]
    ids = np.stack(pair_ids, axis=1)  # [candidates, pairs of dimensions]
    uncovered = np.ones(offset, dtype=bool)
    rows: list[dict[str, Any]] = []
    while uncovered.any():
        best = int(np.argmax(uncovered[ids].sum(axis=1)))
        uncovered[ids[best]] = False
        rows.append({n: dimensions[n][k] for n, k in zip(names, grid[best], strict=True)})
    return rows


# Convention cases: every activation (the seed nets' and the rest) with every loss, each
# optimiser in lockstep, and hand-made inputs at the edges of the conventions (ARCHITECTURE.md).
# Nets are 3 -> hidden -> K with U(-1, 1) weights (init ``seed004``) on standard normal inputs.
CONVENTION_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "relu3", "leaky_relu", "prelu")
CONVENTION_LOSSES = ("ce", "l2", "bce", "mse")
CONVENTION_OUTPUTS = {"ce": 3, "l2": 2, "bce": 1, "mse": 2}
CONVENTION_LEARNING_RATES = {"sgd": 0.02, "momentum": 0.01, "adam": 0.01, "adamw": 0.01}
LOCKSTEP_OPTIMIZERS = (*OPTIMIZERS, "adamw")


def convention_spec(activation: str, loss: str, reduction: str = "sum",
                    weight_decay: float = 0.0, dtype: str = "float64") -> MLPSpec:
    """``3 -> hidden -> K``: ``activation`` on the hidden layers; identity on logits (``ce``,
    ``bce``), ``activation`` on the output for ``l2`` and ``mse``. Hidden layers ``(5, 4)``, but
    ``(5,)`` for relu3: cubes of cubes saturate the output (|o| ~ 1e2), and then a whole delta
    tensor can be 0 in one framework and 1e-71 in another, which no relative error can judge."""
    hidden = (5,) if activation == "relu3" else (5, 4)
    out = activation if loss in ("l2", "mse") else "identity"
    return MLPSpec(3, (*hidden, CONVENTION_OUTPUTS[loss]), (activation,) * len(hidden) + (out,),
                   loss, reduction, weight_decay, dtype=dtype)


def _convention(name: str, spec: MLPSpec, batch: int, optimizer: str = "sgd",
                steps: int = 0) -> Case:
    return Case(name, spec, optimizer, CONVENTION_LEARNING_RATES[optimizer], batch,
                "conventions", init="seed004", steps=steps)


def _tags(spec: MLPSpec) -> str:
    return "-".join([spec.activations[0], spec.loss, spec.reduction, _wd_tag(spec.weight_decay),
                     DTYPE_TAGS[spec.dtype]])


def gradient_cases() -> list[Case]:
    """Forward, loss, deltas and gradients (no steps). float64: every activation x loss x
    reduction x weight decay; float32: every activation x loss (reduction and weight decay
    rotate). Batch sizes rotate through 1, 4, 7."""
    cases = []
    combos = itertools.product(CONVENTION_ACTIVATIONS, CONVENTION_LOSSES, REDUCTIONS,
                               WEIGHT_DECAYS)
    for i, (act, loss, red, wd) in enumerate(combos):
        spec = convention_spec(act, loss, red, wd)
        batch = (1, 4, 7)[i % 3]
        cases.append(_convention(f"grad-{_tags(spec)}-b{batch}", spec, batch))
    for i, (act, loss) in enumerate(itertools.product(CONVENTION_ACTIVATIONS, CONVENTION_LOSSES)):
        spec = convention_spec(act, loss, REDUCTIONS[i % 2], WEIGHT_DECAYS[i // 2 % 2], "float32")
        batch = (4, 1, 7)[i % 3]
        cases.append(_convention(f"grad-{_tags(spec)}-b{batch}", spec, batch))
    return cases


def lockstep_cases() -> list[Case]:
    """Each optimiser (AdamW included), 10 steps, on five specs in float64 and four in float32
    (every activation and loss appears)."""
    picks = [("sigmoid", "ce", "sum", 0.0), ("tanh", "l2", "mean", 1e-3),
             ("relu", "bce", "mean", 0.0), ("leaky_relu", "ce", "mean", 1e-3),
             ("relu3", "ce", "mean", 0.0), ("identity", "l2", "sum", 1e-3),
             ("sigmoid", "mse", "mean", 0.0)]
    cases = []
    for dtype, chosen in (("float64", [*picks[:4], picks[6]]), ("float32", picks[2:])):
        for i, (act, loss, red, wd) in enumerate(chosen):
            spec, batch = convention_spec(act, loss, red, wd, dtype), 1 if i == 0 else 4
            cases.extend(_convention(f"lockstep-{_tags(spec)}-{opt}-b{batch}", spec, batch, opt,
                                     STEPS) for opt in LOCKSTEP_OPTIMIZERS)
    return cases


def _edge(name: str, spec: MLPSpec, params: Params, x: np.ndarray, y: np.ndarray,
          at_kink: bool = False) -> Case:
    return Case(f"edge-{name}", spec, batch=len(x), architecture="edge", steps=0,
                given=(params, (x, y)), at_kink=at_kink)


def edge_cases() -> list[Case]:
    """Hand-made inputs that each exercise one convention at the edges (float64)."""
    relu = MLPSpec(2, (3, 2), ("relu", "identity"), "ce")
    ones = {k: np.ones(v.shape) for k, v in init_params(relu).items()}
    ones["b1"][:] = 0  # x = 0 and b1 = 0 give z1 = 0 exactly: relu'(0) = 0 everywhere
    sig = MLPSpec(2, (3, 2), ("sigmoid", "identity"), "l2", "mean")
    sig_params = {k: 30.0 * v for k, v in init_params(sig, "seed004", seed=4).items()}
    ce = MLPSpec(2, (3,), ("identity",), "ce", "mean")
    ce_params = {"W1": np.array([[1e3, -1e3, 0.0], [0.0, 5e2, -1e3]]), "b1": np.zeros((1, 3))}
    ce_sig = MLPSpec(2, (3, 2), ("tanh", "sigmoid"), "ce")
    bce = MLPSpec(2, (1,), ("sigmoid",), "bce", "mean")
    x2 = np.array([[1.0, 2.0], [-2.0, 1.0], [0.5, -0.5]])
    prelu = MLPSpec(2, (3, 2), ("prelu", "identity"), "ce")
    prelu_params = {**init_params(prelu, "seed004", seed=7), "a1": np.array([0.3])}
    prelu_params["b1"] = np.zeros((1, 3))  # x = 0 gives z1 = 0: prelu'(0) = a (torch's rule)
    return [
        _edge("relu-z-exactly-0", relu, ones, np.zeros((2, 2)), np.array([0, 1]), True),
        _edge("prelu-z-exactly-0", prelu, prelu_params, np.vstack([np.zeros((1, 2)), x2]),
              np.array([0, 1, 1, 0]), True),
        _edge("sigmoid-saturated", sig, sig_params, 3 * x2, np.ones((3, 2))),
        _edge("ce-logits-1e3", ce, ce_params, x2, np.array([0, 2, 1])),
        _edge("ce-one-hot-labels", ce, ce_params, x2, np.eye(3)[[0, 2, 1]]),
        _edge("batch-of-one", ce, ce_params, x2[:1] * 1e-3, np.array([1])),
        # the loss takes the sigmoid's output as logits (Keras' own losses would take its input)
        _edge("ce-on-sigmoid-output", ce_sig, init_params(ce_sig, "seed004", seed=6), x2,
              np.eye(2)[[0, 1, 1]]),
        _edge("bce-on-sigmoid-output", bce, init_params(bce, "seed004", seed=5), x2,
              np.array([1.0, 0.0, 1.0])),
    ]


EDGE_STEPS = 3  # lockstep steps of the edge tests' cases, each on its case's one batch


def _edge_rng(key: int) -> np.random.Generator:
    return np.random.default_rng([20260, key])


def edge_lockstep_cases(dtype: str) -> dict[str, Case]:
    """The edge-case tests' cases (``parity_tests/parity/test_edge_cases.py``; in no selection:
    ``--full`` runs :func:`edge_cases`), by name, in ``dtype``: the same conventions on inputs
    that mix units at the edge with others, each for :data:`EDGE_STEPS` lockstep steps.

    ``relu-units-at-0``: unit 1 sees nothing and has no bias, and row 3 is 0, so units 1 and 4
    are exactly 0 there (relu'(0) = 0); ``sigmoid-saturated``: weights x40 saturate most units
    either way, unit 1 kept linear (in float32, ``h (1 - h)`` of a *nearly* saturated unit loses
    digits to cancellation, which a delta made only of such units would measure);
    ``ce-logits-1e3``: logits above 1e3 (log-sum-exp, no overflow); ``labels-indices`` and
    ``labels-one-hot``: the same targets both ways; ``batch-of-one-<loss>-<reduction>``
    (float64): three single-row batches, Adam."""
    tag = DTYPE_TAGS[dtype]
    relu = MLPSpec(3, (4, 3), ("relu", "identity"), loss="ce", dtype=dtype)
    relu_params = init_params(relu, "xavier", 1)
    relu_params["W1"][:, 0] = 0
    relu_params["b1"][:] = np.array([[0.0, 0.5, -0.5, 0.0]], dtype=dtype)
    relu_x = _edge_rng(1).standard_normal((4, 3)).astype(dtype)
    relu_x[2] = 0
    sig = MLPSpec(3, (6, 2), ("sigmoid", "identity"), loss="ce", dtype=dtype)
    sig_params = init_params(sig, "xavier", 2)
    sig_params["W1"] = (sig_params["W1"] * 40).astype(dtype)
    sig_params["W1"][:, 0] /= 400
    ce = MLPSpec(4, (3,), ("identity",), loss="ce", reduction="mean", dtype=dtype)
    ce_params = init_params(ce, "xavier", 3)
    ce_params["W1"] = (ce_params["W1"] * 1500).astype(dtype)
    labels = MLPSpec(4, (5, 3), ("tanh", "identity"), loss="ce", dtype=dtype)
    labels_x = _edge_rng(4).standard_normal((6, 4)).astype(dtype)
    indices = np.array([2, 0, 1, 1, 2, 0])
    given = {
        "relu-units-at-0": (relu, relu_params, relu_x, np.array([0, 1, 2, 1]), 0.01),
        "sigmoid-saturated": (sig, sig_params,
                              _edge_rng(2).standard_normal((5, 3)).astype(dtype) * 3,
                              np.array([0, 1, 1, 0, 1]), 0.01),
        "ce-logits-1e3": (ce, ce_params, _edge_rng(3).standard_normal((6, 4)).astype(dtype),
                          np.array([0, 1, 2, 2, 1, 0]), 1e-4),
        "labels-indices": (labels, init_params(labels, "xavier", 4), labels_x, indices, 0.01),
        "labels-one-hot": (labels, init_params(labels, "xavier", 4), labels_x,
                           np.eye(3, dtype=dtype)[indices], 0.01),
    }
    out = {name: Case(f"edge-{name}-{tag}", spec, "sgd", lr, len(x), "edge", steps=EDGE_STEPS,
                      given=(params, (x, y)), at_kink=name == "relu-units-at-0")
           for name, (spec, params, x, y, lr) in given.items()}
    if dtype == "float64":
        for loss, reduction in itertools.product(("ce", "l2"), REDUCTIONS):
            spec = MLPSpec(4, (5, 3), ("sigmoid", "identity"), loss=loss, reduction=reduction)
            name = f"batch-of-one-{loss}-{reduction}"
            out[name] = Case(f"edge-{name}-{tag}", spec, "adam", 1e-2, 1, "edge", init="xavier",
                             steps=EDGE_STEPS)
    return out


def prelu_unit_cases() -> list[Case]:
    """PReLU with one slope per unit (Keras' default): gradients and Adam in lockstep, per
    dtype."""
    out = []
    for dtype in DTYPES:
        spec = convention_spec("prelu", "ce", "mean", dtype=dtype).with_(prelu_slopes="unit")
        tag = f"prelu_unit-ce-mean-wd0-{DTYPE_TAGS[dtype]}"
        out.append(_convention(f"grad-{tag}-b4", spec, 4))
        out.append(_convention(f"lockstep-{tag}-adam-b4", spec, 4, "adam", STEPS))
    return out


def mlp_dropout_cases() -> list[Case]:
    """Dropout (keep 0.5) after both hidden layers of the relu MLP, with a seeded explicit
    mask: gradients and momentum in lockstep (each step's mask from the trainers' rule), per
    dtype."""
    out = []
    for dtype in DTYPES:
        spec = convention_spec("relu", "ce", "mean", dtype=dtype).with_(
            keep_prob=0.5, dropout_after=(1, 2))
        tag = f"relu_dropout-ce-mean-wd0-{DTYPE_TAGS[dtype]}"
        for name, optimizer, steps in ((f"grad-{tag}-b4", "sgd", 0),
                                       (f"lockstep-{tag}-momentum-b4", "momentum", STEPS)):
            mask = draw_dropout_mask(spec, 4, np.random.default_rng(zlib.crc32(name.encode())))
            out.append(replace(_convention(name, spec, 4, optimizer, steps), dropout_mask=mask))
    return out


@cache
def convention_cases() -> tuple[Case, ...]:
    """:func:`gradient_cases`, :func:`lockstep_cases`, :func:`prelu_unit_cases`,
    :func:`mlp_dropout_cases` and :func:`edge_cases` (in ``full``)."""
    return (*gradient_cases(), *lockstep_cases(), *prelu_unit_cases(), *mlp_dropout_cases(),
            *edge_cases())


MAIN_DIMENSIONS: dict[str, Sequence[Any]] = {
    "activation": ACTIVATIONS, "loss": LOSSES, "reduction": REDUCTIONS,
    "weight_decay": WEIGHT_DECAYS, "optimizer": OPTIMIZERS, "dtype": DTYPES,
}


def _quick() -> list[Case]:
    return [mlp_case(batch=4, architecture=SMALL_ARCHITECTURES[i % 2], **row)
            for i, row in enumerate(pairwise(MAIN_DIMENSIONS))]


def _default() -> list[Case]:
    dims = {**MAIN_DIMENSIONS, "batch": BATCHES, "architecture": tuple(ARCHITECTURES)}
    return [mlp_case(**row) for row in pairwise(dims)]


def _full() -> list[Case]:
    archs = tuple(ARCHITECTURES)
    cases = []
    for i, values in enumerate(itertools.product(*MAIN_DIMENSIONS.values())):
        row = dict(zip(MAIN_DIMENSIONS, values, strict=True))
        # i runs dtype fastest (period 2), then optimiser (6), weight decay (12), reduction
        # (24), loss (48), activation (96). Shifting the architecture by i // 6 as well makes it
        # meet every value of every dimension; the batch cycles with period 18 = 3 x 6.
        row["architecture"] = archs[(i + i // 6) % len(archs)]
        row["batch"] = BATCHES[(i // len(archs)) % len(BATCHES)]
        cases.append(mlp_case(**row))
    return cases


@cache
def _selection(selection: str) -> tuple[Case, ...]:
    if selection == "quick":
        main = _quick()
    elif selection == "default":
        main = _default()
    elif selection == "full":
        main = _full() + _default() + list(convention_cases())
    else:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    odd = ODD_SHAPES if selection != "quick" else ODD_SHAPES[:2]
    cnns = _cnn_cases() if selection != "quick" else _cnn_cases()[:2]
    return tuple(_unique([*main, *odd, *cnns]))


def _unique(cases: Iterable[Case]) -> list[Case]:
    seen: dict[str, Case] = {}
    for case in cases:
        seen.setdefault(case.name, case)
    return list(seen.values())


def select(
    selection: str = "default", *, pattern: str | None = None, dtype: str | None = None,
    model: str = "all",
) -> list[Case]:
    """Cases of a selection (``quick``/``default``/``full``) and model family (``all``, ``mlp``,
    ``cnn``), filtered by dtype and a regex. The CNN cases are the same in every selection but
    ``quick``, which keeps the first two.

    ``pattern`` is searched (``re.search``) in the case name; ``re.error`` propagates.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    regex = re.compile(pattern) if pattern else None
    return [case for case in _selection(selection)
            if (model == "all" or isinstance(case.spec, FAMILIES[model].spec_class))
            and (dtype is None or case.dtype == dtype)
            and (regex is None or regex.search(case.name))]


def get(name: str) -> Case:
    """The case called ``name`` (searched in the full selection)."""
    for case in _selection("full"):
        if case.name == name:
            return case
    raise KeyError(f"no parity case named {name!r}")
