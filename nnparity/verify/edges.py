"""The edge-case verdict, apart from the math: the learner's code on the batch built to expose
robustness problems (exact zeros of ``z`` at relu's kink, the +1000 offset of the output biases:
:func:`nnparity.verify.problem.make_problem`), once its math has passed on the generic batch.

What fails there becomes a *finding*: ``softmax-overflow`` and ``relu-at-zero`` by name (each
confirmed numerically by :mod:`nnparity.verify.diagnose`), any other divergence or crash as
``edge-case``. ``--edge-cases`` says what a finding is: ``warn`` (the default; counted, never
failed), ``fail``, or ``off`` (the edge batch is not run). relu'(0) = 1 is a valid subgradient:
it fails under ``warn`` only when the declaration asks for the reference's convention
(``"relu_at_zero": 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import Verdict

MODES = ("off", "warn", "fail")
DEFAULT_MODE = "warn"
ROBUSTNESS = ("softmax-overflow", "relu-at-zero")  # named findings
UNNAMED = "edge-case"
CONVENTIONS = ("any", 0)  # the declaration's relu_at_zero


@dataclass(frozen=True)
class Finding:
    """One robustness finding: its code, what it is, where the edge batch first differs, and
    whether it fails the submission."""

    code: str
    title: str
    detail: str
    evidence: str
    where: str
    fails: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"code": self.code, "title": self.title, "detail": self.detail,
                "evidence": self.evidence, "where": self.where,
                "severity": "failure" if self.fails else "warning"}


@dataclass
class EdgeReport:
    """The edge-case verdict: ``status`` ``pass``, ``warn``, ``fail``, ``off`` or ``not judged``
    (``reason`` says why: the math failed first)."""

    mode: str
    status: str
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""

    @property
    def failed(self) -> bool:
        """True when a finding fails the submission."""
        return any(f.fails for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"mode": self.mode, "status": self.status, "reason": self.reason or None,
                "findings": [f.to_dict() for f in self.findings]}


def not_judged(mode: str, reason: str) -> EdgeReport:
    """The report when the edge batch did not run (``--edge-cases off``, or the math failed)."""
    return EdgeReport(mode, "off" if mode == "off" else "not judged", reason=reason)


def judge_edges(edge: Verdict, mode: str, relu_convention: str | int = "any") -> EdgeReport:
    """The findings of the learner's run on the edge batch (``edge``, already judged)."""
    yours = edge.yours
    if yours.passed:
        return EdgeReport(mode, "pass")
    diagnosis = edge.diagnosis
    code = diagnosis.code if diagnosis and diagnosis.code in ROBUSTNESS else UNNAMED
    if code == UNNAMED:
        title = "your code differs only on the edge-case batch"
        detail = ("The math passes on a generic batch, but not on the batch with exact zeros "
                  "at relu's kink and a +1000 offset on the output biases"
                  + (f" (diagnosis: {diagnosis.title})" if diagnosis else "") + ".")
        evidence = diagnosis.evidence if diagnosis else ""
    else:
        assert diagnosis is not None
        title, detail, evidence = diagnosis.title, diagnosis.detail, diagnosis.evidence
    fails = mode == "fail" or (code == "relu-at-zero" and relu_convention == 0)
    finding = Finding(code, title, detail, evidence, edge.divergence, fails)
    return EdgeReport(mode, "fail" if fails else "warn", [finding])


def combine(math: Verdict, edge: Verdict, mode: str,
            relu_convention: str | int = "any") -> Verdict:
    """The file's verdict: the math run's, with the edge report attached; when a finding fails
    the submission, the edge run's (its table and diagnosis) with the same report."""
    report = judge_edges(edge, mode, relu_convention)
    chosen = edge if report.failed else math
    chosen.edges = report
    chosen.yours.seconds = math.yours.seconds + edge.yours.seconds  # both runs of the file
    if report.failed:
        chosen.results += math.results[1:]
        chosen.skipped_backends = math.skipped_backends
    return chosen
