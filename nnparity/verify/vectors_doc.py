"""The README written into a golden-vector folder (names, layouts, conventions, results format)."""

from __future__ import annotations

from nnparity.reference.family import Spec

TEMPLATE = """\
# nnparity golden vectors

Written by `nnparity vectors export` (seed {seed}, batch of {batch} rows, SGD step with
lr = {lr:g}). Each vector is one small network with its inputs, weights and the reference's
results, so that a backpropagation written in any language (C, MATLAB/Octave, Julia, ...) can be
checked number by number.

| vector | spec |
|---|---|
{rows}

## Files
- `<vector>.json`: `spec`, `lr`, `layout` and `tensors`; each tensor is
  `{{"shape": [rows, cols], "data": [...]}}` with `data` **flattened in row-major (C) order**.
- `<vector>.npz`: the same arrays (NumPy; `spec` and `meta` are JSON strings).
- `index.json`: the list of vectors and their specs.

## Names, shapes and layout
Row layout, as in the BP lecture: a batch is `x [N, D0]`, one row per sample, and
`z_l = h_(l-1) @ W_l + b_l`, `h_l = f_l(z_l)`, `h_0 = x`. Layers are numbered from 1.

| name | shape | meaning |
|---|---|---|
| `x` | `[N, D0]` | inputs |
| `y` | `[N, K]` | dense targets (one-hot for classes) |
| `labels` | `[N]` | class indices (softmax cross-entropy vectors only) |
| `W<l>`, `b<l>` | `[D_(l-1), D_l]`, `[1, D_l]` | weights and biases (no `b` when `bias` is false) |
| `z<l>`, `h<l>` | `[N, D_l]` | pre-activation and activation; the last `h` is the output |
| `loss` | `[]` | the reduced loss plus `0.5 * weight_decay * sum(W^2)` |
| `delta<l>` | `[N, D_l]` | dL/dz of layer l |
| `dW<l>`, `db<l>` | like `W<l>`, `b<l>` | gradients (including `weight_decay * W`) |
| `W<l>_new`, `b<l>_new` | like `W<l>`, `b<l>` | after one step `p - lr * dp` |

A CNN's vector (a spec with a `net` list of layers) numbers its dense and conv layers together
from 1 (`conv1` is layer 1, the dense layer after the flatten layer 2). Its images and feature
maps are NHWC (`x [N, H, W, C]`, `z<l>` of a conv layer `[N, Ho, Wo, F]`), its kernels HWIO
(`W<l> [k, k, C, F]`, a cross-correlation, TensorFlow's SAME padding: an odd extra row/column at
the bottom/right), its biases `[D_l]`, and the first dense weight after the flatten has its rows
in NHWC flatten order (index `(h * W + w) * C + c`): a program working in NCHW permutes them.
Max-pool ties send the gradient to the first maximum of the window in row-major order.

Column layout (the Fashion-MNIST report, `W [out, in]`, `P = W X + b`): transpose every 2-D
tensor; biases become `[D_l, 1]`.

Reading the JSON: C and Julia read `data` in row-major order as is; in MATLAB/Octave use
`reshape(t.data, fliplr(t.shape))'` for a 2-D tensor; in Julia
`permutedims(reshape(t["data"], reverse(t["shape"])...))`.

## Conventions
- `loss`: `l2` is `0.5 * sum((o - y)^2)`; `ce` is softmax cross-entropy on the logits `o`;
  `bce` is the sigmoid log-loss on one logit. `reduction` `sum` adds over the batch, `mean`
  divides by N (so do `delta`, `dW` and `db`).
- relu'(0) = 0. Row 0 of `x` is the unit vector `e_1` and half of the first layer's biases are
  `-W1[0, j]`; row 1 is all zeros. So some `z` entries are exactly 0 and the convention is tested.
- Softmax cross-entropy vectors carry a constant 1000 in the output biases: softmax does not
  change, but `exp(o)` overflows unless each row's maximum is subtracted first.

## Checking your program: the results file
Write whatever your program computes (any subset of the expected names) to a JSON file

```json
{{"layout": "row",
 "vectors": {{"{example}": {{"loss": 1.234,
                           "dW1": {{"shape": [3, 4], "data": [...]}},
                           "W1_new": [[...], [...], [...]]}}}}}}
```

(a tensor is `{{"shape", "data"}}` with row-major data, a nested list, or a number; `layout` is
`row` or `column`), or to an `.npz` whose entries are named `<vector>/<tensor>`. Then run

    nnparity verify --results results.json --vectors {folder}

It prints the comparison table, the first diverging tensor and, where the pattern is known, the
likely mistake; it exits 0 when everything matches and 1 otherwise.
"""


def readme(specs: dict[str, Spec], seed: int, batch: int, lr: float,
           folder: str = "DIR") -> str:
    """The README text for a folder holding ``specs``."""
    rows = "\n".join(f"| `{name}` | `{spec.to_json()}` |" for name, spec in specs.items())
    return TEMPLATE.format(seed=seed, batch=batch, lr=lr, rows=rows,
                           example=next(iter(specs), "vector"), folder=folder)
