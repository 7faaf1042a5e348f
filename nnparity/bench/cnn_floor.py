"""The CNN step's floor: its matrix products and its Adam update, nothing else (the
``numpy GEMMs + Adam`` row of ``nnparity bench --model cnn``).

Every product the reference's training step computes (:mod:`reference.conv`,
:mod:`reference.dense`), at the same shapes and memory layouts: each convolution's forward
``cols @ W`` and weight gradient ``cols^T @ dz`` on an im2col matrix made by the reference's own
:func:`~reference.conv.im2col` (offsets-major for one channel), its input gradient as the
reference computes it (one ``[rows*Ho*Wo, F] @ [F, C]`` GEMM per kernel offset and chunk of
samples, none for the first layer), each dense layer's ``h @ W``, ``h^T @ delta`` and
``delta @ W^T``; each into a buffer allocated once. Then one in-place
:func:`~reference.optim.update` of Adam on every trained parameter. Left out: the im2col copies,
col2im's adds, the pools, activations, biases, dropout and the loss. A reference built on these
GEMMs cannot take less than this row; the share of torch's step it takes bounds how close to
torch that design can come.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnparity.reference import CNNSpec, Optimizer
from nnparity.reference.conv import dz_chunks, im2col, offset_kernels
from nnparity.reference.optim import init_state, update


@dataclass(frozen=True)
class Product:
    """``out [M, N] = a [M, K] @ b [K, N]``; ``a`` and ``b`` may be transposed views."""

    a: np.ndarray
    b: np.ndarray
    out: np.ndarray

    @property
    def flops(self) -> int:
        """``2 * M * K * N``."""
        return 2 * self.a.shape[0] * self.a.shape[1] * self.b.shape[1]

    def run(self) -> None:
        np.matmul(self.a, self.b, out=self.out)


def products(spec: CNNSpec, batch: int, seed: int = 0) -> list[Product]:
    """The matrix products of one training step of ``spec`` on ``batch`` samples, in the
    reference's order within each layer, on seeded operands in ``spec.dtype``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)

    def filled(*shape: int) -> np.ndarray:
        return rng.random(shape, dtype=dtype) - dtype.type(0.5)

    found: list[Product] = []
    for first, block, (h, w, c) in zip(itertools.count(), spec.conv, spec.feature_shapes(),
                                       strict=False):
        k, f = block.kernel, block.filters
        cols = im2col(filled(batch, h, w, c), (k, k), block.stride, block.padding)
        n, ho, wo, depth = cols.shape
        cols2 = cols.reshape(n * ho * wo, depth)
        W, dz = filled(k, k, c, f), filled(n, ho, wo, f)
        found += [Product(cols2, W.reshape(depth, f), np.empty((n * ho * wo, f), dtype)),
                  Product(cols2.T, dz.reshape(-1, f), np.empty((depth, f), dtype))]
        if first:  # the first layer's input gradient is never computed
            for _, dz_s in dz_chunks(dz, W.shape):
                dcols = np.empty((len(dz_s), c), dtype)
                found += [Product(dz_s, W_t, dcols) for W_t in offset_kernels(W)]
    for d_in, d_out in itertools.pairwise(spec.dense_widths):
        h, W, delta = filled(batch, d_in), filled(d_in, d_out), filled(batch, d_out)
        found += [Product(h, W, np.empty((batch, d_out), dtype)),
                  Product(h.T, delta, np.empty((d_in, d_out), dtype)),
                  Product(delta, W.T, np.empty((batch, d_in), dtype))]
    return found


def floor_step(spec: CNNSpec, batch: int, optimizer: Optimizer,
               params: dict[str, np.ndarray]) -> Callable[[], None]:
    """``step()``: every product of :func:`products`, then ``optimizer``'s update in place on
    ``params`` (``spec``'s trained parameters, updated with seeded gradients; the update's state
    kept from step to step)."""
    found = products(spec, batch)
    rng = np.random.default_rng(1)
    grads = {k: (rng.standard_normal(p.shape) * 1e-3).astype(p.dtype) for k, p in params.items()}
    state = init_state(optimizer, params)

    def step() -> None:
        for product in found:
            product.run()
        update(optimizer, params, grads, state)

    return step
