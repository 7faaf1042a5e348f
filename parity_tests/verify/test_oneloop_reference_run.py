"""verify's reference runs through the one judge's runner: the reference backend with a known
mistake built in (:class:`nnparity.parity.mistaken.MistakenReference`), one loop over the steps
(:func:`nnparity.parity.judge.run`) for the parity matrix, users' models and verify alike.

``oneloop_main_digests.json`` holds, per case below, a SHA-256 over every tensor of
``reference_tensors`` (its stage, name, dtype, shape and bytes, in compare order) as main's
hook-based loop computed it (commit ce75dcb, before this change), and ``oneloop_main.npz`` those
tensors' values. The one runner gives the same tensors, names, order, dtypes and shapes, and the
same values to the last few ulps, for an MLP, a CNN with dropout and a batchnorm net, right and
with each kind of mistake (a backward, a formula, a step of another shape, a layer list).

Not the same bits on every machine: NumPy's ``exp``/``log`` loops and OpenBLAS' kernels are
picked by CPU, and AVX-512 ones give other last bits than the AVX2 ones main's digests came
from. ``python parity_tests/verify/test_oneloop_reference_run.py`` stores the values again (on
such a CPU with ``OPENBLAS_CORETYPE=Haswell NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL"``), and
refuses to where they do not hash to main's digests.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nnparity.backends.compare import (
    REORDERED_FLOAT32,
    REORDERED_FLOAT64,
    compare_all,
    compare_tensor,
    first_divergence,
    tolerance,
)
from nnparity.backends.layout import nchw_flatten_order
from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.parity.judge import run
from nnparity.parity.mistaken import Mistake, MistakenReference
from nnparity.reference import MLPSpec
from nnparity.reference.family import init_params, spec_from_dict
from nnparity.reference.optim import Formula, Optimizer, init_state, step
from nnparity.verify import mistakes as m
from nnparity.verify import norm_mistakes
from nnparity.verify.diagnose import Context, diagnose
from nnparity.verify.dropout_masks import without_dropout
from nnparity.verify.problem import Problem, make_problem, reference_tensors

ROOT = Path(__file__).resolve().parents[2]
DIGESTS = json.loads((Path(__file__).parent / "oneloop_main_digests.json").read_text())
STORED = Path(__file__).parent / "oneloop_main.npz"

MLP = MLPSpec(3, (6, 4, 3), ("relu", "sigmoid", "identity"), loss="ce", reduction="mean",
              weight_decay=1e-2)
CNN = spec_from_dict({"input_shape": [6, 6, 2], "loss": "ce", "reduction": "mean", "net": [
    {"kind": "conv2d", "filters": 3, "kernel": 3, "padding": "SAME", "stride": 1},
    {"kind": "relu"}, {"kind": "maxpool", "size": 2, "stride": 2, "padding": "VALID"},
    {"kind": "flatten"}, {"kind": "dropout", "keep_prob": 0.75},
    {"kind": "dense", "units": 4}, {"kind": "tanh"}, {"kind": "dense", "units": 3}]})
BN = spec_from_dict({"input_shape": [4], "loss": "ce", "reduction": "mean", "net": [
    {"kind": "dense", "units": 6},
    {"kind": "batchnorm", "momentum": 0.9, "variance": "unbiased"},
    {"kind": "tanh"}, {"kind": "dense", "units": 3}]})
SGD, MOM, ADAM = (Optimizer("sgd", lr=0.1), Optimizer("momentum", lr=0.1, momentum=0.9),
                  Optimizer("adam", lr=0.01))
KMOM = Optimizer("momentum", lr=0.1, momentum=0.9, variant="keras")
KADAM = Optimizer("adam", lr=0.01, variant="keras")

MISTAKES = {  # how each case builds its mistake: a Mistake, or a problem holding it
    "right": lambda p: (p, Mistake()),
    "scaled": lambda p: (p, m.scaled(2.0)),
    "bias_decay": lambda p: (p, m.bias_decay),
    "stale": lambda p: (p, m.stale_weights(p.update_rule().lr)),
    "derivative_z": lambda p: (p, m.derivative_argument(["layer2"], "z")),
    "no_l2": lambda p: (p, m.with_spec(p.spec.with_(weight_decay=0.0))),
    "one_hot": lambda p: (p, m.one_hot_left_out),
    "momentum_late": lambda p: (p, m.momentum_late),
    "momentum_average": lambda p: (p, m.momentum_average),
    "adam_no_correction": lambda p: (p, m.adam_with(correct=False, eps_inside=False)),
    "adam_eps_inside": lambda p: (p, m.adam_with(correct=True, eps_inside=True)),
    "adam_eps_before": lambda p: (p, m.adam_eps_before_correction),
    "keras_exact": lambda p: (p, m.keras_exact),
    "negated": lambda p: (p, m.negated_update),
    "no_update": lambda p: (p, m.no_update),
    "adam_counter": lambda p: (p, m.adam_counter_per_parameter(list(p.spec.trained_names))),
    "unflipped": lambda p: (p, m.with_spec(m.unflipped(p.spec))),
    "bn_mean_path": lambda p: (p, m.with_spec(norm_mistakes.without_path(p.spec, "batchnorm",
                                                                         "mean"))),
    "pool_to_all": lambda p: (replace(p, spec=m.pool_to_all(p.spec)), Mistake()),
    "flatten_order": lambda p: (replace(p, spec=m.flattened_in_order(
        p.spec, nchw_flatten_order(*p.spec.flat_map))), Mistake()),
    "no_dropout": lambda p: (replace(p, spec=without_dropout(p.spec)), Mistake()),
    "other_variance": lambda p: (replace(p, spec=norm_mistakes.other_variance(p.spec)),
                                 Mistake()),
    "inverted_momentum": lambda p: (replace(p, spec=norm_mistakes.inverted_momentum(p.spec)),
                                    Mistake()),
}
CASES = {  # name: (spec, optimiser, steps, mistake); "keras_rule": the framework's formulation
    "mlp-right-sgd": (MLP, SGD, 2, "right"), "mlp-right-adam": (MLP, ADAM, 3, "right"),
    "mlp-scaled": (MLP, MOM, 2, "scaled"), "mlp-bias-decay": (MLP, MOM, 3, "bias_decay"),
    "mlp-stale": (MLP, SGD, 2, "stale"), "mlp-derivative-z": (MLP, SGD, 2, "derivative_z"),
    "mlp-no-l2": (MLP, ADAM, 2, "no_l2"), "mlp-one-hot": (MLP, SGD, 1, "one_hot"),
    "mlp-momentum-late": (MLP, MOM, 3, "momentum_late"),
    "mlp-momentum-average": (MLP, MOM, 3, "momentum_average"),
    "mlp-kmomentum-average": (MLP, KMOM, 3, "momentum_average"),
    "mlp-adam-no-correction": (MLP, ADAM, 3, "adam_no_correction"),
    "mlp-adam-eps-inside": (MLP, ADAM, 3, "adam_eps_inside"),
    "mlp-adam-eps-before": (MLP, ADAM, 3, "adam_eps_before"),
    "mlp-keras-exact": (MLP, KADAM, 2, "keras_exact"),
    "mlp-keras-optimizer": (MLP, SGD, 2, "keras_rule"),
    "mlp-negated": (MLP, ADAM, 3, "negated"), "mlp-no-update": (MLP, MOM, 2, "no_update"),
    "mlp-adam-counter": (MLP, ADAM, 3, "adam_counter"),
    "cnn-right": (CNN, SGD, 2, "right"), "cnn-right-mom": (CNN, MOM, 2, "right"),
    "cnn-unflipped": (CNN, SGD, 2, "unflipped"), "cnn-pool-to-all": (CNN, SGD, 2, "pool_to_all"),
    "cnn-flatten-order": (CNN, SGD, 2, "flatten_order"),
    "cnn-no-dropout": (CNN, SGD, 2, "no_dropout"),
    "bn-right-sgd": (BN, SGD, 2, "right"), "bn-right-adam": (BN, ADAM, 2, "right"),
    "bn-mean-path": (BN, SGD, 2, "bn_mean_path"),
    "bn-other-variance": (BN, MOM, 2, "other_variance"),
    "bn-inverted-momentum": (BN, SGD, 2, "inverted_momentum"),
    "bn-momentum-average": (BN, MOM, 2, "momentum_average"),
    "bn-negated": (BN, MOM, 2, "negated"),
}


def _problem(spec, optimizer: Optimizer, steps: int) -> Problem:
    return replace(make_problem(spec, seed=4, batch=5, edges=False), optimizer=optimizer,
                   steps=steps)


def _digest(tensors: dict) -> str:
    """SHA-256 of every tensor's stage, name, dtype, shape and bytes, in order."""
    h = hashlib.sha256()
    for (stage, name), value in tensors.items():
        a = np.ascontiguousarray(np.asarray(value))
        h.update(f"{stage}|{name}|{a.dtype.str}|{a.shape}|".encode() + a.tobytes())
    return h.hexdigest()[:32]


def _tensors(case: str) -> dict:
    """``reference_tensors`` of ``case`` on the current code."""
    spec, optimizer, steps, key = CASES[case]
    problem = _problem(spec, optimizer, steps)
    if key == "keras_rule":
        return reference_tensors(problem, optimizer=problem.update_rule("keras"))
    problem, mistake = MISTAKES[key](problem)
    return reference_tensors(problem, mistake)


def _main_s(case: str, tensors: dict) -> dict:
    """Main's tensors of ``case``: :data:`STORED`'s values (every tensor's, flattened in compare
    order into one float64 array, exact for float32 too) in the names, order, dtypes and shapes of
    ``tensors``; the test that they hash to main's digest pins those as well."""
    with np.load(STORED, allow_pickle=False) as archive:
        values = archive[case]
    sizes = [np.size(value) for value in tensors.values()]
    assert sum(sizes) == values.size, f"{case}: {sum(sizes)} values, main's had {values.size}"
    parts = np.split(values, np.cumsum(sizes)[:-1])
    return {key: part.astype(np.asarray(value).dtype).reshape(np.shape(value))
            for (key, value), part in zip(tensors.items(), parts, strict=True)}


def test_every_case_has_main_s_digest_and_tensors():
    with np.load(STORED, allow_pickle=False) as archive:
        assert set(CASES) == set(DIGESTS) == set(archive.files)


@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_tensors_are_main_s(case):
    """Names, order, dtypes and shapes as main's (the digest of main's values laid out as these
    tensors are), the values to a few ulps (main's bits on main's kernels, module docstring)."""
    tensors = _tensors(case)
    main = _main_s(case, tensors)
    assert _digest(main) == DIGESTS[case]
    for (stage, name), value in tensors.items():
        tol = REORDERED_FLOAT32 if np.asarray(value).dtype == np.float32 else REORDERED_FLOAT64
        result = compare_tensor(stage, name, np.asarray(value), main[(stage, name)], tol)
        assert result.passed, result


def store_main_tensors() -> None:
    """Write :data:`STORED` from the current code, refusing where a case's tensors do not hash
    to main's digest (run it on the kernels main's digests came from: module docstring)."""
    arrays = {}
    for case in sorted(CASES):
        tensors = _tensors(case)
        if _digest(tensors) != DIGESTS[case]:
            raise SystemExit(f"{case}: the tensors do not hash to main's digest on these kernels")
        arrays[case] = np.concatenate([np.ravel(value).astype(np.float64)
                                       for value in tensors.values()])
    np.savez_compressed(STORED, **arrays)


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_reference_tensors_has_no_loop_of_its_own_and_calls_the_runner():
    body = _functions(ROOT / "nnparity" / "verify" / "problem.py")["reference_tensors"]
    assert not [n for n in ast.walk(body) if isinstance(n, ast.For | ast.While)]
    calls = {n.func.id for n in ast.walk(body)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "run" in calls


@pytest.mark.parametrize("folder", ["verify", "models"])
def test_no_diagnoser_steps_an_optimiser_by_hand(folder):
    """Only the runner's trainers step an optimiser: nothing in verify/ or models/ takes
    ``optim.step`` or builds optimiser state (``init_state``) for a loop of its own."""
    for path in sorted((ROOT / "nnparity" / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "nnparity.reference.optim":
                taken = {alias.name for alias in node.names}
                assert not taken & {"step", "init_state"}, (path.name, taken)


def _params(dtype: str = "float64") -> dict:
    rng = np.random.default_rng(5)
    return {"W1": rng.standard_normal((3, 4)).astype(dtype),
            "b1": rng.standard_normal((1, 4)).astype(dtype)}


def test_adamw_decay_as_l2_is_adam_fed_the_decayed_gradient_to_the_bit():
    opt = Optimizer("adamw", lr=0.01, decay=0.1)
    params, grads = _params(), {k: v * 0.5 for k, v in _params().items()}
    got, _ = step(opt, params, grads, init_state(opt, params), Formula(decoupled=False))
    adam = replace(opt, name="adam")
    want, _ = step(adam, params, {k: g + opt.decay * params[k] for k, g in grads.items()},
                   init_state(adam, params))
    right, _ = step(opt, params, grads, init_state(opt, params))
    for k in params:
        assert np.array_equal(got[k], want[k]) and not np.allclose(got[k], right[k],
                                                                 rtol=REORDERED_FLOAT64)


def test_adamw_decay_as_l2_is_written_as_update_evaluates_it():
    opt = Optimizer("adamw", lr=0.05, eps=1e-3, decay=0.1)
    formula = Formula(decoupled=False)
    assert "g = g + DECAY * p" in formula.written(opt)
    params, grads = _params(), {k: v * 0.5 for k, v in _params().items()}
    scope = {"np": np, "math": __import__("math"), "t": 1, "DECAY": opt.decay, "LR": opt.lr,
             "BETA1": opt.beta1, "BETA2": opt.beta2, "EPS": opt.eps}
    got, _ = step(opt, params, grads, init_state(opt, params), formula)
    for k, p in params.items():
        local = {**scope, "p": p, "g": grads[k], "m": np.zeros_like(p), "v": np.zeros_like(p)}
        exec("\n".join(formula.written(opt)).format(xp="np"), local)  # our own formula text
        assert np.array_equal(local["p"], got[k])


@pytest.mark.parametrize("variant", ["torch", "keras"])
def test_momentum_average_is_dampening_in_the_optimiser_s_own_form(variant):
    """The models' dampening diagnosis used to feed ``(1 - mu) g`` to the declared rule; the
    formula's averaged momentum gives the same bits in either form (Keras' rounded lr
    included), and over two steps the averaged velocity of the torch form."""
    opt = Optimizer("momentum", lr=0.1, momentum=0.9, variant=variant)
    params, grads = _params(), {k: v * 0.5 for k, v in _params().items()}
    state = init_state(opt, params)
    got, state_got = step(opt, params, grads, state, Formula(momentum="average"))
    fed, _ = step(opt, params, {k: (1 - opt.momentum) * g for k, g in grads.items()},
                  state)
    for k in params:
        assert np.array_equal(got[k], fed[k])
    again, _ = step(opt, got, grads, state_got, Formula(momentum="average"))
    torch_form, torch_state = step(opt, params, grads, state,
                                   Formula(form="torch", momentum="average"))
    torch_again, _ = step(opt, torch_form, grads, torch_state,
                          Formula(form="torch", momentum="average"))
    for k in params:  # the two forms in float64: the table's float64 row (keras: 9.8e-11)
        np.testing.assert_allclose(again[k], torch_again[k], rtol=tolerance("float64"))


def test_the_mistaken_reference_without_a_mistake_is_the_reference_to_the_bit():
    spec = MLPSpec(3, (5, 2), ("tanh", "identity"), loss="l2", reduction="mean",
                   keep_prob=0.5, dropout_after=(1,))
    params = init_params(spec, seed=1)
    rng = np.random.default_rng(2)
    batches = [(rng.standard_normal((4, 3)), rng.standard_normal((4, 2))) for _ in range(3)]
    mask = (rng.random((4, spec.dropout_units)) < 0.5).astype(float)
    right = run(NumpyBackend(), spec, params, batches, ADAM, dropout_mask=mask).tensors
    again = run(MistakenReference(), spec, params, batches, ADAM, dropout_mask=mask).tensors
    assert list(right) == list(again)
    assert all(np.array_equal(right[k], again[k]) for k in right)
    formula = run(MistakenReference(Mistake(formula=Formula(bias_correction=False))), spec,
                  params, batches, ADAM, dropout_mask=mask).tensors
    assert np.array_equal(formula[("grad", "W1")], right[("grad", "W1")])
    assert not np.allclose(formula[("update", "step1.W1")], right[("update", "step1.W1")])


def test_a_mistaken_backward_refuses_a_dropout_mask():
    spec = MLPSpec(3, (5, 2), ("tanh", "identity"), loss="l2", keep_prob=0.5,
                   dropout_after=(1,))
    params = init_params(spec, seed=1)
    x, y = np.ones((4, 3)), np.ones((4, 2))
    with pytest.raises(ValueError, match="takes no dropout mask"):
        MistakenReference(m.scaled(2.0)).gradients(spec, params, x, y,
                                                   dropout_mask=np.ones((4, 5)))


def test_adam_s_counter_per_parameter_is_diagnosed_in_a_net_with_running_statistics():
    """The counter's orders are the trained parameters (main took every parameter, the running
    statistics too, and raised a KeyError on their Adam state)."""
    problem = _problem(BN, ADAM, 2)
    reference = reference_tensors(problem)
    user = reference_tensors(problem, m.adam_counter_per_parameter(list(BN.trained_names)))
    first = first_divergence(compare_all(user, reference, tolerance("float64")))
    assert first is not None and first.stage == "update"
    found = diagnose(Context(problem, reference, user), first)
    assert found is not None and found.code == "adam-step-counter"


if __name__ == "__main__":
    store_main_tensors()
