"""Results of the sbibm validation (C2ST) and coverage runs, with their report sections.

Both implement the :class:`aalearn.core.result.Result` protocol: ``to_dict()`` is the
JSON object of ``aalearn sbi validate`` / ``aalearn sbi coverage``, ``add_to(report)``
adds the sections of their ``report.html``. The posterior samples and reference samples
needed by the figures travel with the result.

Example:
    >>> import numpy as np
    >>> r = ValidationResult({"task": "t", "c2st": 0.5}, samples=np.zeros((3, 1)),
    ...                      reference=np.zeros((3, 1)), truth=np.zeros(1), names=("a",), observation=1)
    >>> r.to_dict()["c2st"]
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.result import ReportBuilder
from aalearn.inference.sbi.diagnostics import CoverageReport
from aalearn.inference.sbi.plots import plot_c2st_per_observation, plot_posterior

__all__ = ["CoverageTaskResult", "ValidationResult", "coverage_row", "validation_row"]

FloatArray = npt.NDArray[np.float64]

_COVERAGE_KEYS = (
    "task",
    "method",
    "simulations",
    "verdict",
    "max_deficit",
    "max_excess",
    "p_overconfident",
    "p_conservative",
    "tarp_atc",
    "n_test",
    "seconds",
    "report",
)


def validation_row(r: dict[str, Any]) -> dict[str, Any]:
    """The terminal row of ``sbi validate``'s JSON object (CLI and :class:`ValidationResult`)."""
    return {
        "task": r["task"],
        "method": r["method"],
        "simulations": r["simulations"],
        "c2st (mean)": r["c2st"],
        "c2st (sd)": r["c2st_std"],
        "published c2st": r["published_c2st"],
        "seconds": r["seconds"],
        **{f"c2st obs {k}": v for k, v in r["c2st_per_observation"].items()},
    }


def coverage_row(r: dict[str, Any]) -> dict[str, Any]:
    """The terminal row of ``sbi coverage``'s JSON object (CLI and :class:`CoverageTaskResult`)."""
    return {k: r[k] for k in _COVERAGE_KEYS if k in r}


@dataclass
class ValidationResult:
    """C2ST of a posterior against sbibm's reference posterior samples.

    Attributes:
        data: The JSON object (``task``, ``method``, ``c2st``, ``c2st_per_observation``, ...).
        samples: Posterior samples of the first evaluated observation (for the figure).
        reference: Reference posterior samples of that observation.
        truth: True parameters of that observation.
        names: Parameter names.
        observation: The observation number of ``samples``.
    """

    data: dict[str, Any]
    samples: FloatArray
    reference: FloatArray
    truth: FloatArray
    names: tuple[str, ...]
    observation: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON object."""
        return self.data

    def summary(self) -> list[dict[str, Any]]:
        """One row: task, method, simulations, mean and sd of the C2ST, published value, time."""
        return [validation_row(self.data)]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the C2ST table and the posterior-versus-reference plots to ``report``."""
        result = self.data
        rows = [{"observation": int(k), "C2ST": v} for k, v in result["c2st_per_observation"].items()]
        pub = result.get("published_c2st")
        text = (
            f"C2ST accuracy between {result['n_posterior_samples']} posterior samples of aalearn's "
            f"{str(result['method']).upper()} ({result['simulations']} simulations) and sbibm's reference "
            f"posterior samples; 0.5 is perfect. Mean {result['c2st']:.3f} ± {result['c2st_std']:.3f} "
            "(sd over "
            f"{len(rows)} observations)"
            + (f"; sbibm published {pub:.3f} ({result['published_source']})." if pub is not None else ".")
            + f"\n\n{result['c2st_protocol']}."
        )
        figures = [
            plot_c2st_per_observation(result["c2st_per_observation"], published=pub),
            plot_posterior(
                self.samples,
                reference=self.reference,
                truth=self.truth,
                names=self.names,
                title=f"{result['task']}, observation {self.observation}",
            ),
        ]
        report.add_section(f"C2ST on {result['task']}", text=text, table=rows, figures=figures)


@dataclass
class CoverageTaskResult:
    """Coverage diagnostics of a posterior trained on an sbibm task.

    Attributes:
        data: The JSON object (:meth:`CoverageReport.to_dict` plus task, method, sizes, times).
        coverage: The :class:`~aalearn.inference.sbi.diagnostics.CoverageReport`.
        example: Posterior samples for observation 1.
        reference: sbibm's reference posterior samples for observation 1.
        truth: True parameters of observation 1.
        names: Parameter names.
    """

    data: dict[str, Any]
    coverage: CoverageReport
    example: FloatArray
    reference: FloatArray
    truth: FloatArray
    names: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object."""
        return self.data

    def summary(self) -> list[dict[str, Any]]:
        """One row: task, method, verdict and its numbers, time (and the report path when written)."""
        return [coverage_row(self.data)]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the coverage diagnostics and the posterior of observation 1 to ``report``."""
        task, method = self.data["task"], str(self.data["method"])
        self.coverage.add_to(report, title=f"Coverage of the {method.upper()} posterior on {task}")
        report.add_section(
            "Posterior for observation 1",
            text="aalearn's posterior samples against sbibm's reference posterior samples; the star marks "
            "the "
            "true parameters.",
            figures=[
                plot_posterior(
                    self.example,
                    reference=self.reference,
                    truth=self.truth,
                    names=self.names,
                    title=f"{task}, observation 1",
                )
            ],
        )
