"""The result of the physics inference, with its JSON form, terminal rows and report sections.

Example:
    >>> from aalearn.inference.sbi.physics.result import PhysicsInferenceResult
    >>> sorted(PhysicsInferenceResult.__dataclass_fields__)[:3]
    ['cache_dir', 'coverage', 'coverage_report']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.result import ReportBuilder
from aalearn.inference.sbi.physics.grid import GridSummary
from aalearn.inference.sbi.physics.plots import plot_coverage, plot_observables, plot_posterior
from aalearn.inference.sbi.physics.simulator import OBSERVABLES, PARAMETERS

__all__ = ["PhysicsInferenceResult", "add_report_section"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class PhysicsInferenceResult:
    """Result of :func:`infer_pythia_parameters`.

    Attributes:
        parameters: Inferred parameters (names in :data:`PARAMETERS`).
        method: ``"nle"``, ``"nre"``, ``"bnre"`` or ``"summary"``.
        true_value: True parameter values of the observed set.
        posterior_mean: Posterior mean per parameter.
        posterior_std: Posterior standard deviation per parameter.
        interval_68: Central 68.27 % credible interval per parameter.
        interval_95: Central 95.45 % credible interval per parameter.
        covered_68: Whether the true value lies in ``interval_68``, per parameter.
        covered_95: Whether the true value lies in ``interval_95``, per parameter.
        coverage: Held-out sets: number, jets per set, fraction of sets whose 68 %/95 %
            intervals cover the truth (per parameter), and the verdict of the expected
            HPD coverage (:func:`aalearn.inference.sbi.diagnostics.coverage_verdict`).
        simulations: Training jets.
        simulation_blocks: Training Pythia runs (one θ each).
        jets_per_simulation: Jets per Pythia run.
        observed_jets: Jets in the observed set (and in each held-out set).
        seconds: Wall-clock time of the whole call.
        timings: Seconds per stage (simulate, train, observe, posterior, coverage).
        simulations_per_second: Jets per wall-clock second of the training simulation
            (0 if it came from the cache).
        cache_dir: Cache directory of the simulations.
        grid_summary: The observed set's :class:`GridSummary` (for plots).
        coverage_report: :class:`aalearn.inference.sbi.diagnostics.CoverageReport` of the held-out sets.
        held_out: Per held-out set: true θ, posterior mean and std (for plots).
        training_sample: A subsample of training (θ, per-jet observables) for plots.
        epochs: Training epochs.
        observables: Observables the estimator used.
    """

    parameters: tuple[str, ...]
    method: str
    true_value: FloatArray
    posterior_mean: FloatArray
    posterior_std: FloatArray
    interval_68: FloatArray
    interval_95: FloatArray
    covered_68: npt.NDArray[np.bool_]
    covered_95: npt.NDArray[np.bool_]
    coverage: dict[str, Any]
    simulations: int
    simulation_blocks: int
    jets_per_simulation: int
    observed_jets: int
    seconds: float
    timings: dict[str, float]
    simulations_per_second: float
    cache_dir: str | None
    grid_summary: GridSummary
    coverage_report: Any = None
    held_out: dict[str, FloatArray] = field(default_factory=dict)
    training_sample: dict[str, FloatArray] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    observables: tuple[str, ...] = OBSERVABLES

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary; the first parameter's numbers are also at the top level.

        Keys: ``parameter``, ``true_value``, ``posterior_mean``, ``posterior_std``,
        ``interval_68``, ``interval_95``, ``covered_68``, ``covered_95`` (first
        parameter), ``per_parameter`` (all), ``coverage``, ``method``, ``simulations``,
        ``simulation_blocks``, ``jets_per_simulation``, ``observed_jets``, ``seconds``,
        ``timings``, ``simulations_per_second``, ``cache_dir``.
        """
        per = {
            name: {
                "true_value": float(self.true_value[d]),
                "posterior_mean": float(self.posterior_mean[d]),
                "posterior_std": float(self.posterior_std[d]),
                "interval_68": [float(v) for v in self.interval_68[d]],
                "interval_95": [float(v) for v in self.interval_95[d]],
                "covered_68": bool(self.covered_68[d]),
                "covered_95": bool(self.covered_95[d]),
                "prior": [PARAMETERS[name].low, PARAMETERS[name].high],
                "unit": PARAMETERS[name].unit,
            }
            for d, name in enumerate(self.parameters)
        }
        first = per[self.parameters[0]]
        return {
            "parameter": self.parameters[0],
            **{k: first[k] for k in ("true_value", "posterior_mean", "posterior_std")},
            **{k: first[k] for k in ("interval_68", "interval_95", "covered_68", "covered_95")},
            "coverage": self.coverage,
            "parameters": list(self.parameters),
            "per_parameter": per,
            "method": self.method,
            "observables": list(self.observables),
            "simulations": self.simulations,
            "simulation_blocks": self.simulation_blocks,
            "jets_per_simulation": self.jets_per_simulation,
            "observed_jets": self.observed_jets,
            "epochs": list(self.epochs),
            "simulations_per_second": self.simulations_per_second,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "cache_dir": self.cache_dir,
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row for the terminal: the first parameter's numbers, held-out coverage, cost."""
        data = self.to_dict()
        cov = data["coverage"]
        row: dict[str, Any] = {
            "parameter": data["parameter"],
            "true value": data["true_value"],
            "posterior mean": data["posterior_mean"],
            "posterior std": data["posterior_std"],
            "68 % interval": "[{:.4g}, {:.4g}]".format(*data["interval_68"]),
            "95 % interval": "[{:.4g}, {:.4g}]".format(*data["interval_95"]),
            "covered (68 %)": data["covered_68"],
            "held-out sets": cov["n_sets"],
            "held-out coverage 68 %": cov.get("coverage_68", {}).get(data["parameter"]),
            "held-out coverage 95 %": cov.get("coverage_95", {}).get(data["parameter"]),
            "coverage verdict": cov.get("verdict"),
            "method": data["method"],
            "simulations": data["simulations"],
            "seconds": data["seconds"],
        }
        for name, v in data["per_parameter"].items():
            if name != data["parameter"]:
                row[f"{name}: true / mean / std"] = (
                    f"{v['true_value']:.4g} / {v['posterior_mean']:.4g} / {v['posterior_std']:.2g}"
                )
        return [row]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the physics inference (posterior, held-out coverage, observables) to ``report``.

        The coverage diagnostics of the held-out sets (SBC, expected HPD coverage, TARP)
        follow as their own section (:meth:`~aalearn.inference.sbi.diagnostics.CoverageReport.add_to`).

        Example:
            >>> result.add_to(report)  # doctest: +SKIP
        """
        d = self.to_dict()
        table = [
            {
                "parameter": name,
                "true": v["true_value"],
                "mean": v["posterior_mean"],
                "std": v["posterior_std"],
                "68 % interval": f"[{v['interval_68'][0]:.4g}, {v['interval_68'][1]:.4g}]",
                "95 % interval": f"[{v['interval_95'][0]:.4g}, {v['interval_95'][1]:.4g}]",
                "covered (68 %)": v["covered_68"],
                "held-out coverage 68 %": d["coverage"].get("coverage_68", {}).get(name),
                "held-out coverage 95 %": d["coverage"].get("coverage_95", {}).get(name),
            }
            for name, v in d["per_parameter"].items()
        ]
        priors = "; ".join(
            f"{n} uniform on [{PARAMETERS[n].low}, {PARAMETERS[n].high}] {PARAMETERS[n].unit}".rstrip()
            for n in self.parameters
        )
        text = (
            f"Pythia 8 as the simulator: {self.simulations} training jets in {self.simulation_blocks} "
            f"Pythia runs of {self.jets_per_simulation} jets, each at parameters drawn from the prior "
            f"({priors}). Per-jet observables: "
            "jet pT, mass, constituent multiplicity (dequantised), N-subjettiness ratios τ21 and τ32 "
            "(FastJet's Nsubjettiness contrib, one-pass kT axes, β = 1, R0 = 0.8; Thaler & Van Tilburg, "
            "arXiv:1011.2268). "
            + (
                "The Gaussian synthetic likelihood of the mean per-jet summaries of the "
                f"{self.observed_jets} i.i.d. jets of a set (means fitted as polynomials in the "
                "parameters over all training jets) "
                if self.method == "summary"
                else f"A per-jet {self.method.upper()} estimator (sbi) is combined over the "
                f"{self.observed_jets} i.i.d. jets of a set, "
            )
            + "and the posterior is evaluated exactly on a grid over the prior. "
            f"Held-out coverage: {d['coverage'].get('n_sets', 0)} sets of {self.observed_jets} jets at "
            "parameters drawn from the prior; verdict of the expected HPD coverage: "
            f"{d['coverage'].get('verdict', 'not run')}."
        )
        figures = [plot_posterior(self), plot_observables(self)]
        if self.held_out:
            figures.insert(1, plot_coverage(self))
        report.add_section(
            "Physics inference: Pythia parameters from top jets", text=text, table=table, figures=figures
        )
        if self.coverage_report is not None:
            self.coverage_report.add_to(report, title="Physics inference: coverage of the held-out sets")


def add_report_section(report: ReportBuilder, result: PhysicsInferenceResult) -> None:
    """Add the physics inference to ``report`` (the same as ``result.add_to(report)``).

    Example:
        >>> add_report_section(report, result)  # doctest: +SKIP
    """
    result.add_to(report)
