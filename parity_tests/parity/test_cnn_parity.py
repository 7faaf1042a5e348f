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

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nnparity.backends.compare import Tensors, collect, compare_all, tolerance_for
from nnparity.backends.protocol import Backend
from nnparity.parity import cases
from nnparity.parity.judge import run
from nnparity.parity.report import CaseResult
from nnparity.parity.runner import run_case
from nnparity.reference import CNNSpec, ConvBlock, Optimizer
from nnparity.reference.family import init_params

DTYPES = ("float64", "float32")
GRADIENT_CASES = cases.cnn_gradient_cases()
LOCKSTEP_SPECS = cases.CNN_LOCKSTEP_SHAPES
LEARNING_RATES = cases.CNN_TEST_LEARNING_RATES


def _judge(backend_name: str, spec: CNNSpec, actual: Tensors, expected: Tensors,
           name: str) -> CaseResult:
    """Tensors collected by hand, as a runner result (for ``assert_parity``)."""
    comparisons = compare_all(actual, expected, tolerance_for(spec))
    return CaseResult(name, backend_name, comparisons, spec=spec.to_dict())


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=[c.name for c in GRADIENT_CASES])
def test_forward_loss_deltas_gradients(backend, backend_name, assert_parity,
                                       case: cases.Case) -> None:
    assert_parity(run_case(case, backend, name=backend_name))


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed002_full_shape(backend, backend_name, assert_parity, dtype: str) -> None:
    """The notes' CNN (28x28x1, 5x5x32, 5x5x64, 3136 -> 1024 -> 10) at batch 2."""
    case = cases.seeded_case("seed002", CNNSpec.seed002(dtype), 2, seed=2, scheme="seed002")
    assert_parity(run_case(case, backend, name=backend_name))


@st.composite
def random_cases(draw: st.DrawFn) -> cases.Case:
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
    return cases.seeded_case("random", spec, draw(st.integers(1, 3)),
                             draw(st.integers(0, 2**16)), "seed002")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # stateless fixtures
@given(data=st.data())
def test_random_specs_and_weights(backend, backend_name, assert_parity, data) -> None:
    case = data.draw(random_cases())
    assert_parity(run_case(case, backend, name=backend_name))


def test_evaluation_without_mask(backend, backend_name, assert_parity) -> None:
    """No mask: no dropout (``h.dropout`` is ``h.fc1``), logits as in evaluation."""
    case = replace(GRADIENT_CASES[0], dropout_mask=None)
    assert_parity(run_case(case, backend, name=backend_name))


def _lockstep(backend: Backend, reference: Backend, spec: CNNSpec, optimizer: Optimizer,
              steps: int, masks: bool) -> tuple[Tensors, Tensors]:
    """The one judge's run of both on the same ``steps`` batches (with explicit masks when
    ``masks``, else each trainer draws its own from its default seed): forward and gradients of
    the first, loss at every step, params after step 1 and the last, optimiser state after the
    last."""
    params = cases.seeded_params(spec, 11)
    # even batch numbers: integer labels, one traced step in TF
    drawn = [cases.seeded_batch(spec, 4, 11, 2 * i) for i in range(1, steps + 1)]
    batches = [(x, y) for x, y, _ in drawn]
    step_masks = [mask for _, _, mask in drawn] if masks else None
    actual, expected = (run(b, spec, params, batches, optimizer, step_masks=step_masks,
                            dropout_mask=step_masks[0] if step_masks else None).tensors
                        for b in (backend, reference))
    return actual, expected


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LOCKSTEP_SPECS.values(), ids=list(LOCKSTEP_SPECS))
def test_lockstep_training(backend, backend_name, reference, assert_parity, shape: tuple,
                           dtype: str, opt: str) -> None:
    """Five steps with explicit masks, each framework's own optimiser variant."""
    spec = cases.tiny_cnn_spec(*shape, dtype)
    optimizer = Optimizer(opt, lr=LEARNING_RATES[opt], variant=backend.optimizer_variant)
    actual, expected = _lockstep(backend, reference, spec, optimizer, 5, masks=True)
    assert_parity(_judge(backend_name, spec, actual, expected, "lockstep"))


def test_trainers_draw_the_reference_masks(backend, backend_name, reference,
                                          assert_parity) -> None:
    """Without masks every trainer draws the reference trainer's masks (``default_rng(0)``):
    lockstep training stays identical, and ``Backend.step`` (a fresh trainer per call) too."""
    spec = cases.tiny_cnn_spec(*LOCKSTEP_SPECS["k3-s1-same-2blocks"], "float64")
    optimizer = Optimizer("sgd", lr=LEARNING_RATES["sgd"], variant=backend.optimizer_variant)
    actual, expected = _lockstep(backend, reference, spec, optimizer, 3, masks=False)
    assert_parity(_judge(backend_name, spec, actual, expected, "drawn-masks"))

    runs = []
    for b in (backend, reference):
        params, state = cases.seeded_params(spec, 12), None
        for i in (2, 4):
            x, y, _ = cases.seeded_batch(spec, 4, 12, i)
            params, state, _ = b.step(spec, params, state, x, y, optimizer)
        runs.append(collect(updates=[("step2", params)]))
    assert_parity(_judge(backend_name, spec, *runs, "protocol"))


@pytest.mark.tensorflow
def test_tensorflow_cnn_step_is_traced_once() -> None:
    """The compiled CNN step (with its mask input) is traced once across batch sizes."""
    from nnparity.backends import registry
    from nnparity.backends import tensorflow_backend as tfb

    spec = cases.tiny_cnn_spec(*LOCKSTEP_SPECS["k5-s2-valid-1block"], "float32")
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
