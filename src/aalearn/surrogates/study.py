"""The result of a surrogate study: an ensemble's amplification per class and its closure.

:class:`SurrogateStudy` is what ``aalearn surrogate amplification`` and ``aalearn surrogate
closure`` return (built by :func:`aalearn.apps.surrogate.surrogate_study`); it implements
the :class:`~aalearn.core.result.Result` protocol.

Example:
    >>> s = SurrogateStudy(kind="flow", representation="jet", observable="jet_mass", members=2, epochs=1,
    ...                    n_train={"top": 10, "w": 10}, n_holdout={"top": 5, "w": 5},
    ...                    fit_seconds=[1.0, 2.0], sample_seconds=0.5)
    >>> s.summary()[0]["fit seconds (mean)"]
    1.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.result import ReportBuilder
from aalearn.surrogates.amplification import AmplificationResult
from aalearn.surrogates.closure import ClosureResult
from aalearn.surrogates.verdict import Check

__all__ = ["SurrogateStudy"]

_CLOSURE_TEXT = "Fit of the top-jet signal strength: surrogate templates, resampled held-out jets as data."


@dataclass
class SurrogateStudy:
    """Ensemble of surrogates on bootstraps of real jets: amplification per class and closure.

    Attributes:
        kind: Surrogate family.
        representation: ``"jet"`` or ``"features"``.
        observable: The binned observable.
        members: Ensemble size.
        epochs: Training epochs per member.
        n_train: Training jets per class name.
        n_holdout: Held-out jets per class name.
        fit_seconds: Training time of each member.
        sample_seconds: Time to generate every member's jets.
        amplification: Amplification result per class name (empty when not run).
        closure: The closure result (``None`` when not run).
        checks: The checks of both.
        paths: Files written (``study``, ``report``), empty when nothing was written.
    """

    kind: str
    representation: str
    observable: str
    members: int
    epochs: int
    n_train: dict[str, int]
    n_holdout: dict[str, int]
    fit_seconds: list[float]
    sample_seconds: float
    amplification: dict[str, AmplificationResult] = field(default_factory=dict)
    closure: ClosureResult | None = None
    checks: list[Check] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (``--json`` and ``study.json``).

        Keys: ``kind``, ``representation``, ``observable``, ``members``, ``epochs``,
        ``n_train``, ``n_holdout``, ``fit_seconds``, ``sample_seconds``, ``amplification``
        (per class name, when run), ``closure`` (when run), ``checks`` and the paths written
        (``study``, ``report``).
        """
        out: dict[str, Any] = {
            "kind": self.kind,
            "representation": self.representation,
            "observable": self.observable,
            "members": self.members,
            "epochs": self.epochs,
            "n_train": dict(self.n_train),
            "n_holdout": dict(self.n_holdout),
            "fit_seconds": list(self.fit_seconds),
            "sample_seconds": self.sample_seconds,
        }
        if self.amplification:
            out["amplification"] = {k: v.to_dict() for k, v in self.amplification.items()}
        if self.closure is not None:
            out["closure"] = self.closure.to_dict()
        out["checks"] = [c.to_dict() for c in self.checks]
        out.update(self.paths)
        result: dict[str, Any] = to_jsonable(out)
        return result

    def summary(self) -> list[dict[str, Any]]:
        """One terminal-table row: training time, per-class amplification, closure per variant, failures."""
        rows: dict[str, Any] = {
            "kind": self.kind,
            "members": self.members,
            "fit seconds (mean)": sum(self.fit_seconds) / len(self.fit_seconds),
        }
        for name, amp in self.amplification.items():
            d = amp.to_dict()
            rows[f"n_equiv ({name})"] = d["n_equiv_limit"]
            rows[f"amplification ({name})"] = d["amplification"]
            rows[f"n_gen saturation ({name})"] = d["n_gen_saturation"]
        if self.closure is not None:
            for v in self.closure.to_dict()["variants"]:
                rows[f"closure bias ({v['name']})"] = v["bias"]
                rows[f"closure pull width ({v['name']})"] = v["pull_std"]
                rows[f"closure coverage ({v['name']})"] = v["coverage"]
        failing = [c.name for c in self.checks if not c.passed]
        rows["failing checks"] = ", ".join(failing) or "none"
        if "report" in self.paths:
            rows["report"] = self.paths["report"]
        return [rows]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the training, amplification (per class), closure and checks sections to ``report``."""
        report.add_section(
            "Training",
            text="Each ensemble member is trained on its own bootstrap resample of the training jets.",
            table=[{"member": k, "fit seconds": s} for k, s in enumerate(self.fit_seconds)],
        )
        for name, res in self.amplification.items():
            res.add_to(report, title=f"Amplification ({name})")
        if self.closure is not None:
            self.closure.add_to(report, text=_CLOSURE_TEXT)
        if self.checks:
            report.add_section(
                "Checks",
                table=[
                    {"check": c.name, "passed": c.passed, "value": c.value, "detail": c.detail}
                    for c in self.checks
                ],
            )
