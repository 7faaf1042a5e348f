"""The Python API: check a model in memory from a project's own code or tests.

- :func:`check_model`: a ``torch.nn.Module``, a ``keras.Model`` or a Flax NNX module
  against the NumPy reference (forward, loss, deltas, gradients, ``steps`` optimiser steps),
  as ``nnparity check --model-file`` does;
- :func:`check_port`: two models (a port and its original) each on its own, then layer by
  layer, as ``nnparity check --port`` does;
- :func:`verify_file`: a learner's file with an ``NNPARITY`` declaration, sandboxed, as
  ``nnparity verify FILE`` does.

Each returns a :class:`Report`. Bad arguments and models the reference cannot express raise
:class:`~nnparity.errors.InputError`; anything the model's own code raises (or an exit) raises
:class:`~nnparity.errors.ModelError` naming the model, never a pass. The check runs the
optimiser's steps on the model; its parameters are put back afterwards (the optimiser's state
is not).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnparity.backends.compare import first_divergence
from nnparity.errors import InputError
from nnparity.parity import report
from nnparity.parity.report import CaseResult, Diagnosis

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Divergence:
    """The first failing tensor: which case and backend, stage (``forward``, ``loss``,
    ``delta``, ``grad``, ``update``), tensor name, and its errors against the reference."""

    case: str
    backend: str
    stage: str
    tensor: str
    max_abs: float
    max_rel: float


class Report:
    """The outcome of a check: :attr:`ok`, :attr:`first_divergence`, :attr:`diagnoses`,
    :meth:`table` (the text the command line prints), :meth:`to_json` (schema 2) and
    :meth:`assert_ok`."""

    def __init__(self, results: Sequence[CaseResult], text: str, data: dict[str, Any],
                 diagnoses: Sequence[Diagnosis]) -> None:
        self.results = list(results)
        self._text, self._data = text, data
        self.diagnoses: list[Diagnosis] = list(diagnoses)

    @property
    def ok(self) -> bool:
        """True when every result ran, raised nothing and every tensor matched."""
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def first_divergence(self) -> Divergence | None:
        """The first failing tensor of the first failing result (None when none fails)."""
        for r in self.results:
            first = first_divergence(r.comparisons)
            if first is not None:
                return Divergence(r.case, r.backend, first.stage, first.name, first.max_abs,
                                  first.max_rel)
        return None

    def table(self) -> str:
        """The text the command line prints for the same check."""
        return self._text

    def to_json(self) -> dict[str, Any]:
        """The JSON report (schema 2, ``nnparity/schemas/report-2.json``), a fresh copy."""
        return copy.deepcopy(self._data)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the table and the diagnoses unless :attr:`ok`."""
        if not self.ok:
            raise AssertionError(self.failure_text())

    def failure_text(self) -> str:
        """The table followed by one line per diagnosis (code, message, evidence)."""
        lines = [self._text]
        lines += [f"diagnosis [{d.code}]: {d.message}" + (f" (evidence: {d.evidence})"
                                                          if d.evidence else "")
                  for d in self.diagnoses]
        return "\n".join(lines)

    def __repr__(self) -> str:
        where = self.first_divergence
        return (f"<Report ok={self.ok} results={len(self.results)}"
                + (f" first_divergence={where.stage} {where.tensor}>" if where else ">"))


def _check_report(results: list[CaseResult], seconds: float, command: dict[str, Any]) -> Report:
    text = report.render_text(results, seconds=seconds)
    data = report.to_json(results, command=command)
    return Report(results, text, data, [d for r in results for d in r.diagnoses])


def _label(model: Any, name: str | None) -> str:
    return name or f"{type(model).__name__} (in memory)"


def _adapt(model: Any, label: str, loss: Any, optimizer: Any, input_shape: Sequence[int] | None,
           dtype: str | None, layers: dict[str, str] | None = None) -> Any:
    from nnparity.models import check as model_check
    from nnparity.models.source import describe

    if dtype not in (None, "float32", "float64"):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    source = describe(label, {"model": model, "optimizer": optimizer},
                      tuple(input_shape or ()), loss, flag_name="loss=", given_by="optimizer=",
                      layers=dict(layers or {}))
    return model_check.adapt(source, dtype)


def check_model(model: Any, *, loss: Any = None, optimizer: Any = None,
                input_shape: Sequence[int] | None = None, dtype: str | None = None,
                steps: int = 3, seed: int = 0, name: str | None = None,
                layers: dict[str, str] | None = None) -> Report:
    """Check ``model`` against the reference on batches drawn from ``seed``.

    ``loss``: ``"ce"``, ``"l2"``, ``"bce"``, ``"mse"`` (mean reduction) or the framework's loss
    object (a torch loss module, a Keras loss); a compiled Keras model's own loss comes first,
    and without either the check is refused (nothing is guessed). ``optimizer``: a torch
    optimiser (or a factory called with the parameters), a Keras optimiser (or a compiled
    model's), for a Flax model the pair ``(optax transformation, nnparity.Optimizer)`` (the
    transformation runs the steps; the formula it claims is the reference's); ``None``: updates
    are not checked. ``input_shape``:
    canonical NHWC ``(H, W, C)`` (or ``(D,)``) where the model does not say it (CNNs).
    ``dtype``: convert a torch model to ``float32``/``float64`` first (it stays converted).
    ``name``: how the report names the model. ``layers``: custom modules, layers or activation
    functions (by class or function name) that compute a reference activation, as a model
    file's ``NNPARITY_LAYERS`` (e.g. ``{"MyTanh": "tanh"}``). The report's notes say which loss
    and optimiser were used and where each came from.
    """
    from nnparity.models import check as model_check

    if not isinstance(steps, int) or steps < 0:
        raise InputError(f"steps must be a non-negative integer, got {steps!r}")
    label = _label(model, name)
    started = time.perf_counter()
    user = _adapt(model, label, loss, optimizer, input_shape, dtype, layers)
    before = user.params()
    try:
        result = model_check.check(user, label, seed=seed, steps=steps)
    finally:
        user.load_params(before)
    command = {"api": "check_model", "model": label, "steps": steps, "seed": seed,
               "dtype": dtype, "input_shape": list(input_shape or [])}
    return _check_report([result], time.perf_counter() - started, command)


def check_port(first: Any, second: Any, *, loss: Any = None,
               optimizers: tuple[Any, Any] = (None, None),
               input_shape: Sequence[int] | None = None, transfer_weights: bool = False,
               seed: int = 0, names: tuple[str, str] | None = None,
               layers: dict[str, str] | None = None) -> Report:
    """Check ``second`` (a port of ``first``) as ``nnparity check --port`` does: each model on
    its own against the reference, then ``second`` against ``first`` layer by layer with each
    model's own weights (``transfer_weights``: ``first``'s transferred into ``second`` through
    the canonical layout, the architecture comparison). A difference is diagnosed with the
    weight-conversion mistake that explains it, confirmed by a re-run."""
    from nnparity.models import check as model_check
    from nnparity.models.port import port

    labels = (_label(first, names and names[0]), _label(second, names and names[1]))
    if labels[0] == labels[1]:
        labels = (f"{labels[0]} #1", f"{labels[1]} #2")
    started = time.perf_counter()
    models = [_adapt(m, label, loss, opt, input_shape, None, layers)
              for m, label, opt in zip((first, second), labels, optimizers, strict=True)]
    own = (models[0].params(), models[1].params())
    try:
        results = [model_check.check(m, label, seed=seed) for m, label in zip(models, labels,
                                                                             strict=True)]
        results.append(port(models[0], models[1], labels, seed=seed, own=own,
                            transfer=transfer_weights))
    finally:
        for model, params in zip(models, own, strict=True):
            model.load_params(params)
    command = {"api": "check_port", "models": list(labels), "transfer_weights": transfer_weights,
               "seed": seed, "input_shape": list(input_shape or [])}
    return _check_report(results, time.perf_counter() - started, command)


def verify_file(path: str | Path, *, seed: int = 0, batch: int | None = None,
                backends: Sequence[str] = (), sandbox: str = "auto",
                timeout: float = DEFAULT_TIMEOUT) -> Report:
    """Verify a learner's file as ``nnparity verify FILE`` does: it runs in a child process,
    sandboxed (``sandbox``: ``auto``, ``require`` or ``off``, as ``--sandbox``; the warning
    ``auto`` prints without bubblewrap becomes a note of the report), for at most ``timeout``
    seconds; ``backends``: framework backends shown alongside (none by default)."""
    from nnparity.verify import output
    from nnparity.verify.grade import Options
    from nnparity.verify.grade import verify_file as verify_one
    from nnparity.verify.problem import DEFAULT_BATCH
    from nnparity.verify.sandbox import resolve

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not timeout > 0:
        raise InputError(f"timeout must be positive, got {timeout}")
    box = resolve(sandbox)
    started = time.perf_counter()
    verdict = verify_one(path, path.name, Options(box, float(timeout), seed,
                                                  batch or DEFAULT_BATCH,
                                                  backends=tuple(backends)))
    seconds = time.perf_counter() - started
    warning = box.warning()
    if warning:
        verdict.yours.notes.append(warning)
    text = output.render(verdict) + "\n\n" + output.summary([verdict], seconds)
    data = output.to_json([verdict], {"api": "verify_file", "file": str(path), "seed": seed,
                                      "sandbox": sandbox})
    diagnoses = [Diagnosis(d["code"], d["message"], d["evidence"])
                 for d in data["cases"][verdict.case]["backends"]["yours"]["diagnosis"]]
    return Report([verdict.yours], text, data, diagnoses)  # backends alongside are not judged
