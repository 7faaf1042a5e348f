"""Shared test set-up: the determinism profile, framework markers, hypothesis profiles, and the
MLP parity cases and checks used by the backend test files.

- Tests marked ``torch`` / ``tensorflow`` are skipped, with the registry's reason (``pytest -rs``),
  when that backend is not installed.
- Fixtures: ``backend_name`` (each installed framework backend; missing ones skip with the reason),
  ``backend``, ``reference``; ``mlp_case`` and ``lockstep_case`` are parametrised over the case
  matrices below for any test that asks for them, and ``parity`` runs the comparisons.
- ``need_dataset(name)`` skips a real-data test when the dataset is not fetched, saying how to
  fetch it, and fails instead when ``NNPARITY_REQUIRE_DATA=1`` (CI fetches the data first).
- Hypothesis: profile ``default`` (quick) and ``ci`` (more examples; loaded when ``CI`` is set,
  or by ``--hypothesis-profile ci``).
- The worst relative error seen per backend and dtype is printed at the end of the run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

from nnparity.backends import registry
from nnparity.backends.compare import (
    Comparison,
    collect,
    compare_all,
    describe_divergence,
    tolerance,
)
from nnparity.backends.determinism import apply_determinism
from nnparity.backends.protocol import Backend
from nnparity.datasets.catalog import get_dataset
from nnparity.datasets.sources import DatasetMissing, locate
from nnparity.reference import CNNSpec, MLPSpec, Optimizer, init_params

apply_determinism()

settings.register_profile("default", max_examples=20, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None)
# CI (the CI variable set) draws more examples; --hypothesis-profile still overrides this.
settings.load_profile("ci" if os.environ.get("CI") else "default")

FRAMEWORKS = ("torch", "tensorflow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked with a framework whose backend is not installed, saying why."""
    reasons: dict[str, str | None] = {}
    for item in items:
        for name in FRAMEWORKS:
            if item.get_closest_marker(name) is None:
                continue
            if name not in reasons:
                reasons[name] = registry.reason(name)
            if reasons[name]:
                item.add_marker(pytest.mark.skip(reason=f"{name} backend {reasons[name]}"))


@pytest.fixture(params=[pytest.param(n, marks=getattr(pytest.mark, n), id=n) for n in FRAMEWORKS])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each framework backend (not numpy); a missing one is skipped with the registry's reason."""
    why = registry.reason(request.param)
    if why:
        pytest.skip(f"{request.param} backend {why}")
    return request.param


@pytest.fixture
def backend(backend_name: str) -> Backend:
    """The backend object for ``backend_name``."""
    return registry.get(backend_name)


@pytest.fixture(scope="session")
def reference() -> Backend:
    """The NumPy reference backend."""
    return registry.get("numpy")


@pytest.fixture
def need_dataset() -> Callable[[str], dict[str, Path]]:
    """``need_dataset(name)`` -> the dataset's file paths, or skip (fail in CI) when absent."""

    def need(name: str) -> dict[str, Path]:
        try:
            return locate(get_dataset(name))[1]
        except DatasetMissing:
            message = f"{name} not fetched: run `nnparity data fetch {name}`"
            if os.environ.get("NNPARITY_REQUIRE_DATA") == "1":
                pytest.fail(f"{message} (NNPARITY_REQUIRE_DATA=1)")
            pytest.skip(message)

    return need


# --- the case matrices -------------------------------------------------------------------------

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "relu3", "leaky_relu", "prelu")
LOSSES = ("ce", "l2", "bce")
OUTPUT_WIDTH = {"ce": 3, "l2": 2, "bce": 1}


@dataclass(frozen=True)
class MLPCase:
    """One spec and batch size; ``data()`` draws reproducible params and batches."""

    spec: MLPSpec
    batch: int
    seed: int = 0

    @property
    def id(self) -> str:
        s = self.spec
        wd = f"wd{s.weight_decay:g}"
        return f"{s.activations[0]}-{s.loss}-{s.reduction}-{wd}-{s.dtype}-b{self.batch}"

    def params(self) -> dict[str, np.ndarray]:
        return init_params(self.spec, "seed004", seed=self.seed)

    def batches(self, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``count`` batches ``(x [B, D], y)``; ``ce`` labels alternate indices and one-hot."""
        spec, rng = self.spec, np.random.default_rng([self.seed, 1])
        k, out = spec.output_dim, []
        for i in range(count):
            x = rng.standard_normal((self.batch, spec.input_dim)).astype(spec.dtype)
            if spec.loss == "ce":
                y = rng.integers(0, k, self.batch)
                y = y if (self.seed + i) % 2 == 0 else np.eye(k, dtype=spec.dtype)[y]
            elif spec.loss == "bce":
                y = rng.integers(0, 2, self.batch).astype(spec.dtype)
            else:
                y = rng.standard_normal((self.batch, k)).astype(spec.dtype)
            out.append((x, y))
        return out


def make_spec(act: str, loss: str, reduction: str = "sum", weight_decay: float = 0.0,
              dtype: str = "float64", layers: tuple[int, ...] | None = None) -> MLPSpec:
    """``3 -> layers -> K``: ``act`` on the hidden layers; identity on logits (``ce``, ``bce``),
    ``act`` on the output for ``l2``. Hidden layers ``(5, 4)``, but ``(5,)`` for relu3: cubes of
    cubes saturate the output (|o| ~ 1e2), and then a whole delta tensor can be 0 in one
    framework and 1e-71 in another (TF differentiates BCE's log1p(exp(-|o|)) term; torch and the
    reference compute ``sigmoid(o) - t``), which no relative error can judge."""
    if layers is None:
        layers = (5,) if act == "relu3" else (5, 4)
    out_act = act if loss == "l2" else "identity"
    return MLPSpec(3, (*layers, OUTPUT_WIDTH[loss]), (act,) * len(layers) + (out_act,),
                   loss, reduction, weight_decay, dtype=dtype)


def _gradient_cases() -> list[MLPCase]:
    """float64: every activation x loss x reduction x weight decay; float32: every activation
    x loss (reduction and weight decay rotate). Batch sizes rotate through 1, 4, 7."""
    cases = []
    combos = itertools.product(ACTIVATIONS, LOSSES, ("sum", "mean"), (0.0, 1e-3))
    for i, (act, loss, red, wd) in enumerate(combos):
        cases.append(MLPCase(make_spec(act, loss, red, wd), (1, 4, 7)[i % 3], seed=i))
    for i, (act, loss) in enumerate(itertools.product(ACTIVATIONS, LOSSES)):
        spec = make_spec(act, loss, ("sum", "mean")[i % 2], (0.0, 1e-3)[i // 2 % 2], "float32")
        cases.append(MLPCase(spec, (4, 1, 7)[i % 3], seed=100 + i))
    return cases


def _lockstep_cases() -> list[tuple[MLPCase, str]]:
    """Each optimiser on four specs per dtype (every activation and loss appears)."""
    picks = [("sigmoid", "ce", "sum", 0.0), ("tanh", "l2", "mean", 1e-3),
             ("relu", "bce", "mean", 0.0), ("leaky_relu", "ce", "mean", 1e-3),
             ("relu3", "ce", "mean", 0.0), ("identity", "l2", "sum", 1e-3)]
    cases = []
    for dtype, chosen in (("float64", picks[:4]), ("float32", picks[2:])):
        for i, (act, loss, red, wd) in enumerate(chosen):
            case = MLPCase(make_spec(act, loss, red, wd, dtype), 1 if i == 0 else 4, seed=7 + i)
            cases.extend((case, opt) for opt in ("sgd", "momentum", "adam"))
    return cases


@dataclass(frozen=True)
class EdgeCase:
    """A hand-made input that exercises one convention at the edges."""

    name: str
    spec: MLPSpec
    params: dict
    x: np.ndarray
    y: np.ndarray


def _edge_cases() -> list[EdgeCase]:
    relu = MLPSpec(2, (3, 2), ("relu", "identity"), "ce")
    ones = {k: np.ones(v.shape) for k, v in init_params(relu).items()}
    ones["b1"][:] = 0  # x = 0 and b1 = 0 give z1 = 0 exactly: relu'(0) = 0 everywhere
    sig = MLPSpec(2, (3, 2), ("sigmoid", "identity"), "l2", "mean")
    sig_params = {k: 30.0 * v for k, v in init_params(sig, "seed004", seed=4).items()}
    ce = MLPSpec(2, (3,), ("identity",), "ce", "mean")
    ce_params = {"W1": np.array([[1e3, -1e3, 0.0], [0.0, 5e2, -1e3]]), "b1": np.zeros((1, 3))}
    ce_sig = MLPSpec(2, (3, 2), ("tanh", "sigmoid"), "ce")
    bce = MLPSpec(2, (1,), ("sigmoid",), "bce", "mean")
    bce_params = init_params(bce, "seed004", seed=5)
    x2 = np.array([[1.0, 2.0], [-2.0, 1.0], [0.5, -0.5]])
    prelu = MLPSpec(2, (3, 2), ("prelu", "identity"), "ce")
    prelu_params = {**init_params(prelu, "seed004", seed=7), "a1": np.array([0.3])}
    prelu_params["b1"] = np.zeros((1, 3))  # x = 0 gives z1 = 0: prelu'(0) = a (torch's rule)
    return [
        EdgeCase("relu-z-exactly-0", relu, ones, np.zeros((2, 2)), np.array([0, 1])),
        EdgeCase("prelu-z-exactly-0", prelu, prelu_params, np.vstack([np.zeros((1, 2)), x2]),
                 np.array([0, 1, 1, 0])),
        EdgeCase("sigmoid-saturated", sig, sig_params, 3 * x2, np.ones((3, 2))),
        EdgeCase("ce-logits-1e3", ce, ce_params, x2, np.array([0, 2, 1])),
        EdgeCase("ce-one-hot-labels", ce, ce_params, x2, np.eye(3)[[0, 2, 1]]),
        EdgeCase("batch-of-one", ce, ce_params, x2[:1] * 1e-3, np.array([1])),
        # the loss takes the sigmoid's output as logits (Keras' own losses would take its input)
        EdgeCase("ce-on-sigmoid-output", ce_sig, init_params(ce_sig, "seed004", seed=6), x2,
                 np.eye(2)[[0, 1, 1]]),
        EdgeCase("bce-on-sigmoid-output", bce, bce_params, x2, np.array([1.0, 0.0, 1.0])),
    ]


GRADIENT_CASES = _gradient_cases()
LOCKSTEP_CASES = _lockstep_cases()
EDGE_CASES = _edge_cases()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``mlp_case`` and ``lockstep_case`` with named cases."""
    if "mlp_case" in metafunc.fixturenames:
        metafunc.parametrize("mlp_case", GRADIENT_CASES, ids=[c.id for c in GRADIENT_CASES])
    if "lockstep_case" in metafunc.fixturenames:
        metafunc.parametrize("lockstep_case", LOCKSTEP_CASES,
                             ids=[f"{c.id}-{o}" for c, o in LOCKSTEP_CASES])
    if "edge_case" in metafunc.fixturenames:
        metafunc.parametrize("edge_case", EDGE_CASES, ids=[c.name for c in EDGE_CASES])


@st.composite
def random_mlp_cases(draw: st.DrawFn, dtype: str = "float64") -> MLPCase:
    """Random specs (1-4 layers of width 1-6, any activation but relu3, any loss, reduction and
    weight decay), random U(-1, 1) weights and batch sizes 1-6."""
    loss = draw(st.sampled_from(LOSSES))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    out = {"ce": draw(st.integers(2, 4)), "bce": 1, "l2": draw(st.integers(1, 3))}[loss]
    acts = draw(st.lists(st.sampled_from([a for a in ACTIVATIONS if a != "relu3"]),
                         min_size=len(hidden) + 1, max_size=len(hidden) + 1))
    spec = MLPSpec(draw(st.integers(1, 5)), (*hidden, out), tuple(acts), loss,
                   draw(st.sampled_from(("sum", "mean"))), draw(st.sampled_from((0.0, 1e-3))),
                   bias=draw(st.booleans()), dtype=dtype)
    return MLPCase(spec, draw(st.integers(1, 6)), seed=draw(st.integers(0, 2**16)))


@pytest.fixture(scope="session")
def random_mlp_case() -> st.SearchStrategy[MLPCase]:
    """The :func:`random_mlp_cases` strategy (draw from it with ``st.data()``)."""
    return random_mlp_cases()


# --- the checks ----------------------------------------------------------------------------------

LEARNING_RATES = {"sgd": 0.02, "momentum": 0.01, "adam": 0.01}
_worst: dict[tuple[str, str, str], float] = {}


class Parity:
    """Runs a backend beside the reference and asserts every tensor within ``tolerance``."""

    def __init__(self, reference: Backend) -> None:
        self.reference = reference

    def check(self, name: str, dtype: str, actual: dict, expected: dict,
              family: str = "mlp") -> list[Comparison]:
        """Compare collected tensors, record the worst error, fail naming the first divergence."""
        comparisons = compare_all(actual, expected, tolerance(dtype, family))
        worst = max(c.max_rel for c in comparisons)
        key = (family, name, dtype)
        _worst[key] = max(_worst.get(key, 0.0), worst)
        assert all(c.passed for c in comparisons), f"{name}: {describe_divergence(comparisons)}"
        return comparisons

    def gradients(self, backend: Backend, case: MLPCase | EdgeCase) -> list[Comparison]:
        """Forward ``z``/``h``, loss, every delta and every gradient on one batch."""
        if isinstance(case, EdgeCase):
            spec, params, x, y = case.spec, case.params, case.x, case.y
        else:
            spec, params = case.spec, case.params()
            x, y = case.batches(1)[0]
        expected = collect(self.reference.forward(spec, params, x),
                           self.reference.gradients(spec, params, x, y))
        actual = collect(backend.forward(spec, params, x), backend.gradients(spec, params, x, y))
        return self.check(backend.name, spec.dtype, actual, expected)

    def cnn_gradients(self, backend: Backend, spec: CNNSpec, params: dict, x: np.ndarray,
                      y: np.ndarray, dropout_mask: np.ndarray | None) -> list[Comparison]:
        """A CNN on one batch: every forward ``z`` and ``h`` (pools, flatten and dropout output
        included), loss, every delta and every gradient, at the CNN tolerance."""
        tensors = []
        for b in (backend, self.reference):
            trace = b.forward(spec, params, x, dropout_mask=dropout_mask)
            grads = b.gradients(spec, params, x, y, dropout_mask=dropout_mask)
            tensors.append(collect(trace, grads))
        assert list(tensors[0]) == list(tensors[1])
        return self.check(backend.name, spec.dtype, *tensors, family="cnn")

    def lockstep(self, backend: Backend, case: MLPCase, opt_name: str,
                 steps: int = 10) -> list[Comparison]:
        """Both trainers on the same ``steps`` batches: losses at every step, params after step 1
        and the last step, optimiser state after the last step."""
        optimizer = Optimizer(opt_name, lr=LEARNING_RATES[opt_name],
                              variant=backend.optimizer_variant)
        spec, params = case.spec, case.params()
        trainers = [b.trainer(spec, params, optimizer) for b in (backend, self.reference)]
        tensors: list[dict] = [{}, {}]
        for i, (x, y) in enumerate(case.batches(steps), 1):
            for trainer, out in zip(trainers, tensors, strict=True):
                loss = out[("loss", f"step{i}")] = np.float64(trainer.step(x, y))
                assert np.isfinite(loss), f"{case.id}: training diverged (a bad case, not parity)"
                if i in (1, steps):
                    out.update(collect(updates=[(f"step{i}", trainer.params())]))
        for trainer, out in zip(trainers, tensors, strict=True):
            out.update(collect(updates=[(f"state{steps}", trainer.state())]))
        return self.check(backend.name, spec.dtype, *tensors)


    def protocol_steps(self, backend: Backend, optimizer_name: str,
                       steps: int = 5) -> list[Comparison]:
        """``Backend.step`` ``steps`` times, passing params and state along, against the
        reference; the state keys must come back in the reference's order."""
        spec = MLPSpec(3, (4, 2), ("tanh", "identity"), "ce", "mean", 1e-3)
        case = MLPCase(spec, 4, seed=3)
        optimizer = Optimizer(optimizer_name, lr=0.05, variant=backend.optimizer_variant)
        runs = []
        for b in (backend, self.reference):
            params, state = case.params(), None
            for x, y in case.batches(steps):
                params, state, _ = b.step(spec, params, state, x, y, optimizer)
            runs.append({("update", k): v for k, v in {**params, **state}.items()})
        assert list(runs[0]) == list(runs[1])
        return self.check(backend.name, spec.dtype, *runs)


@pytest.fixture(scope="session")
def parity(reference: Backend) -> Parity:
    """The comparison helper."""
    return Parity(reference)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the worst max relative error per family, backend and dtype seen by the parity
    checks."""
    if not _worst:
        return
    terminalreporter.section("parity: worst max relative error")
    for (family, name, dtype), value in sorted(_worst.items()):
        line = f"{family:<4} {name:<11} {dtype:<8} {value:.2e}  (tol {tolerance(dtype, family):g})"
        terminalreporter.write_line(line)
