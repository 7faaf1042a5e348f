"""CNN parity: the torch and tensorflow backends against the NumPy reference.

Every tensor is compared (``compare.tolerance_for(spec)``): forward ``z`` and ``h`` of every
layer (conv maps, pools, the flatten, the dropped-out input of the output layer, the logits),
the loss, every delta ``dL/dz`` and every gradient, and for training the parameters after steps 1
and 5 (and the optimiser state), each framework with its own optimiser variant and the reference
with the same one. A dropout mask is always given explicitly, except where the trainers' own
mask draws are under test.

The tiny matrix is the full product kernel {3, 5} x stride {1, 2} x padding {SAME, VALID} x
{1, 2} conv blocks, batch 1 or 4, in float64 and float32. Inputs are non-square with an odd
height and an even width, so both of TensorFlow's asymmetric SAME paddings occur (stride-2 convs
on the even side, 2x2 pools on the odd side) and a swapped H/W cannot pass.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nnparity import cases
from nnparity.backends.compare import Tensors, collect, compare_all, tolerance_for
from nnparity.backends.protocol import Backend
from nnparity.parity import run_case
from nnparity.reference import CNNSpec, ConvBlock, Optimizer
from nnparity.reference.dropout import draw_dropout_mask
from nnparity.reference.family import init_params
from nnparity.report import CaseResult

DTYPES = ("float64", "float32")
# (H, W) candidates, smallest first: the first that fits a case's blocks is used.
SIZES = ((9, 8), (13, 12), (17, 16), (21, 20), (29, 28))
LEARNING_RATES = {"sgd": 0.05, "adam": 0.01}


def tiny_spec(kernel: int, stride: int, padding: str, blocks: int, dtype: str,
              **changes: object) -> CNNSpec:
    """``CNNSpec.tiny`` with ``blocks`` conv blocks (3 then 4 filters) of the given kernel,
    stride and padding, on the smallest input of :data:`SIZES` the blocks fit."""
    conv = (ConvBlock(3, kernel, stride, padding), ConvBlock(4, kernel, stride, padding))[:blocks]
    for h, w in SIZES:
        try:
            return CNNSpec.tiny(dtype, conv=conv, input_shape=(h, w, 2), **changes)
        except ValueError:
            continue
    raise AssertionError(f"no input size fits {conv}")


@dataclass(frozen=True)
class Case:
    """A spec, a batch size and a seed; :meth:`batch_data` draws reproducible data and a mask,
    :meth:`parity_case` makes it a case of the CLI's case system."""

    spec: CNNSpec
    batch: int
    seed: int
    name: str
    scheme: str = ""  # init scheme; default: seed002 and he by turns

    def params(self) -> dict[str, np.ndarray]:
        scheme = self.scheme or ("seed002", "he")[self.seed % 2]
        return init_params(self.spec, scheme, self.seed)

    def batch_data(self, i: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x [B, H, W, C], y, mask [B, units])`` for batch ``i``; labels alternate between
        class indices and one-hot rows."""
        spec, rng = self.spec, np.random.default_rng([self.seed, i])
        x = rng.standard_normal((self.batch, *spec.input_shape)).astype(spec.dtype)
        y = rng.integers(0, spec.classes, self.batch)
        if (self.seed + i) % 2:
            y = np.eye(spec.classes, dtype=spec.dtype)[y]
        return x, y, draw_dropout_mask(spec, self.batch, rng)

    def parity_case(self, masked: bool = True) -> cases.Case:
        """Forward, loss, deltas and gradients on :meth:`batch_data` (with its mask, or none)."""
        x, y, mask = self.batch_data()
        return cases.Case(self.name, self.spec, batch=self.batch, architecture="cnn", steps=0,
                          dropout_mask=mask if masked else None, given=(self.params(), (x, y)))


def _judge(backend_name: str, spec: CNNSpec, actual: Tensors, expected: Tensors,
           name: str) -> CaseResult:
    """Tensors collected by hand, as a runner result (for ``assert_parity``)."""
    comparisons = compare_all(actual, expected, tolerance_for(spec))
    return CaseResult(name, backend_name, comparisons, spec=spec.to_dict())


def _gradient_cases() -> list[Case]:
    cases = []
    combos = itertools.product((3, 5), (1, 2), ("SAME", "VALID"), (1, 2))
    for i, (k, s, pad, blocks) in enumerate(combos):
        for dtype in DTYPES:
            batch = (1, 4)[(i + (dtype == "float32")) % 2]
            wd, red = (0.0, 1e-3)[i // 2 % 2], ("mean", "sum")[i // 4 % 2]
            spec = tiny_spec(k, s, pad, blocks, dtype, weight_decay=wd, reduction=red)
            name = f"k{k}-s{s}-{pad.lower()}-{blocks}blocks-{dtype}-b{batch}"
            cases.append(Case(spec, batch, seed=i, name=name))
    # beyond the matrix: an even kernel, an overlapping SAME pool, a block without pool, two
    # hidden dense layers, and none (dropout right after the flatten: torch's mask is permuted)
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
            cases.append(Case(spec, 3, seed=100 + j, name=f"{name}-{dtype}-b3"))
    return cases


GRADIENT_CASES = _gradient_cases()
# Training: two specs (seed-002-like SAME/stride 1 and a stride-2 VALID one) x dtype x optimiser.
LOCKSTEP_SPECS = {"k3-s1-same-2blocks": (3, 1, "SAME", 2), "k5-s2-valid-1block": (5, 2, "VALID", 1)}


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c.name for c in GRADIENT_CASES])
def test_forward_loss_deltas_gradients(backend, backend_name, assert_parity, case: Case) -> None:
    assert_parity(run_case(case.parity_case(), backend, name=backend_name))


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed002_full_shape(backend, backend_name, assert_parity, dtype: str) -> None:
    """The notes' CNN (28x28x1, 5x5x32, 5x5x64, 3136 -> 1024 -> 10) at batch 2."""
    case = Case(CNNSpec.seed002(dtype), 2, seed=2, name="seed002", scheme="seed002")
    assert_parity(run_case(case.parity_case(), backend, name=backend_name))


@st.composite
def random_cases(draw: st.DrawFn) -> Case:
    """Random float64 specs: 1-2 blocks of kernel 1-4, stride 1-2, SAME or VALID, pool 0, 2 or 3
    with stride 1-3 and either padding, on non-square 4-10 pixel inputs with 1-3 channels,
    0-2 hidden dense layers, batch 1-3. The three-framework notes' small init: ``he`` weights can
    saturate the
    softmax, and then a bias gradient is a sum that cancels to ~1e-7 of its terms (its
    rounding, not a bug, then exceeds any relative tolerance)."""
    blocks = []
    for _ in range(draw(st.integers(1, 2))):
        pool = draw(st.sampled_from((0, 2, 3)))
        blocks.append(ConvBlock(
            draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 2)),
            draw(st.sampled_from(("SAME", "VALID"))), pool=pool,
            pool_stride=draw(st.integers(1, 3)) if pool else None,
            pool_padding=draw(st.sampled_from(("SAME", "VALID")))))
    shape = (draw(st.integers(4, 10)), draw(st.integers(4, 10)), draw(st.integers(1, 3)))
    dense = tuple(draw(st.lists(st.integers(1, 5), max_size=2)))
    try:
        spec = CNNSpec(shape, tuple(blocks), dense, keep_prob=draw(st.sampled_from((0.5, 0.8))),
                       classes=draw(st.integers(2, 4)))
    except ValueError:  # a VALID window that does not fit
        assume(False)
    return Case(spec, draw(st.integers(1, 3)), draw(st.integers(0, 2**16)), "random", "seed002")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # stateless fixtures
@given(data=st.data())
def test_random_specs_and_weights(backend, backend_name, assert_parity, data) -> None:
    case = data.draw(random_cases())
    assert_parity(run_case(case.parity_case(), backend, name=backend_name))


def test_evaluation_without_mask(backend, backend_name, assert_parity) -> None:
    """No mask: no dropout (``h.dropout`` is ``h.fc1``), logits as in evaluation."""
    case = GRADIENT_CASES[0].parity_case(masked=False)
    assert_parity(run_case(case, backend, name=backend_name))


def _lockstep(backend: Backend, reference: Backend, spec: CNNSpec, optimizer: Optimizer,
              steps: int, masks: bool) -> tuple[Tensors, Tensors]:
    """Both trainers on the same ``steps`` batches (with explicit masks when ``masks``, else
    each trainer draws its own from its default seed): loss at every step, params after step 1
    and the last, optimiser state after the last."""
    case = Case(spec, 4, seed=11, name="lockstep")
    params = case.params()
    trainers = [b.trainer(spec, params, optimizer) for b in (backend, reference)]
    tensors: list[Tensors] = [{}, {}]
    for i in range(1, steps + 1):
        x, y, mask = case.batch_data(2 * i)  # even: integer labels, one traced step in TF
        for trainer, out in zip(trainers, tensors, strict=True):
            loss = trainer.step(x, y, dropout_mask=mask if masks else None)
            out[("loss", f"step{i}")] = np.float64(loss)
            if i in (1, steps):
                out.update(collect(updates=[(f"step{i}", trainer.params())]))
    for trainer, out in zip(trainers, tensors, strict=True):
        out.update(collect(updates=[(f"state{steps}", trainer.state())]))
    return tensors[0], tensors[1]


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LOCKSTEP_SPECS.values(), ids=list(LOCKSTEP_SPECS))
def test_lockstep_training(backend, backend_name, reference, assert_parity, shape: tuple,
                           dtype: str, opt: str) -> None:
    """Five steps with explicit masks, each framework's own optimiser variant."""
    spec = tiny_spec(*shape, dtype)
    optimizer = Optimizer(opt, lr=LEARNING_RATES[opt], variant=backend.optimizer_variant)
    actual, expected = _lockstep(backend, reference, spec, optimizer, 5, masks=True)
    assert_parity(_judge(backend_name, spec, actual, expected, "lockstep"))


def test_trainers_draw_the_reference_masks(backend, backend_name, reference,
                                          assert_parity) -> None:
    """Without masks every trainer draws the reference trainer's masks (``default_rng(0)``):
    lockstep training stays identical, and ``Backend.step`` (a fresh trainer per call) too."""
    spec = tiny_spec(*LOCKSTEP_SPECS["k3-s1-same-2blocks"], "float64")
    optimizer = Optimizer("sgd", lr=LEARNING_RATES["sgd"], variant=backend.optimizer_variant)
    actual, expected = _lockstep(backend, reference, spec, optimizer, 3, masks=False)
    assert_parity(_judge(backend_name, spec, actual, expected, "drawn-masks"))

    case = Case(spec, 4, seed=12, name="protocol")
    runs = []
    for b in (backend, reference):
        params, state = case.params(), None
        for i in (2, 4):
            x, y, _ = case.batch_data(i)
            params, state, _ = b.step(spec, params, state, x, y, optimizer)
        runs.append(collect(updates=[("step2", params)]))
    assert_parity(_judge(backend_name, spec, *runs, "protocol"))


@pytest.mark.tensorflow
def test_tensorflow_cnn_step_is_traced_once() -> None:
    """The compiled CNN step (with its mask input) is traced once across batch sizes."""
    from nnparity.backends import registry
    from nnparity.backends import tensorflow_backend as tfb

    spec = tiny_spec(*LOCKSTEP_SPECS["k5-s2-valid-1block"], "float32")
    optimizer = Optimizer("adam", lr=LEARNING_RATES["adam"], variant="keras")
    backend, params, state = registry.get("tensorflow"), init_params(spec), None
    rng = np.random.default_rng(3)
    for batch in (1, 3, 4):
        x, y = rng.standard_normal((batch, *spec.input_shape)), rng.integers(0, 3, batch)
        params, state, _ = backend.step(spec, params, state, x, y, optimizer)
    entries = tfb._cache._entries[(spec, optimizer)]
    assert len(entries) == 1
    assert entries[0].train_step(sparse=True).experimental_get_tracing_count() == 1


def test_masks_and_inputs_are_checked(backend) -> None:
    spec = CNNSpec.tiny()
    params, x = init_params(spec), np.zeros((2, *spec.input_shape))
    with pytest.raises(ValueError, match="dropout mask has shape"):
        backend.forward(spec, params, x, dropout_mask=np.ones((2, 5)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        backend.forward(spec, params, x, dropout_mask=np.full((2, 6), 0.5))
    with pytest.raises(ValueError, match="NHWC"):
        backend.forward(spec, params, np.zeros((2, 2, 8, 8)))
