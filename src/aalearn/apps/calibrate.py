r"""Calibrate the detector resolution against a reference sample (``aalearn calibrate``).

The resolution model (:class:`aalearn.physics.ResolutionModel`) has an angular term
:math:`\sigma_{\eta,\phi} = \sqrt{d^2/p_T + e^2}` and a relative pT term
:math:`\sigma_{p_T}/p_T = \sqrt{a^2/p_T + (b/p_T)^2 + c^2}`. This module fits
:math:`(e, d, a, c)` (``angle_constant``, ``angle_stochastic``, ``pt_stochastic``,
``pt_constant``; ``pt_noise`` and ``pt_floor`` stay fixed) so that generated jets, smeared
with the candidate parameters, look like a labelled reference sample (the CMS jets of the
challenge). Procedure:

1. **Inputs.** The generated file(s) must hold ``constituents_unsmeared`` (the
   detector-level objects before smearing; written by ``aalearn generate``). The reference
   is any labelled file in the challenge layout; by default only its **even rows**
   (0, 2, 4, ...) are used, so that the odd rows remain a held-out check. Generated top jets
   are compared with reference label 0, W jets with label 1 (each class present in the
   generated files must be present in the reference).
2. **Observables** (rotation-invariant, computed from the 87 features exactly as for the
   reference, so the TopoDNN preprocessing cancels): the log-ratios
   :math:`\log(p_{T,i+1}/p_{T,i})` of adjacent constituents (sensitive to the pT
   resolution: a positive value is a pair the smearing put out of order), the log
   distance of each of the 20 leading constituents to its nearest neighbour among them and the log
   distance of the leading pair (sensitive to the angular resolution: smearing pushes
   collinear pairs apart), and the distance of every constituent to the leading one (the
   jet's extent, which a too large angular smearing of soft constituents inflates).
3. **Distance**: for each class and observable, the 1-Wasserstein distance between the
   pooled generated and reference values, divided by the reference's standard deviation;
   the objective is the sum over classes and observables.
4. **Fit**: Nelder–Mead (Nelder & Mead, Comput. J. 7 (1965) 308) in the logarithms of
   the parameters, with common random numbers (the same normal deviates at every
   evaluation, so the objective is a deterministic function of the parameters).
5. **Uncertainty**: bootstrap (Efron, Ann. Statist. 7 (1979) 1): the reference and the
   generated jets are resampled with replacement ``n_bootstrap`` times, each replica is
   refitted (starting from the best fit), and the standard deviation of the refitted
   parameters is the quoted uncertainty (statistical only: the generator's physics
   mismatch with the reference also pulls the fit and is not included).

The result is a resolution JSON file (``resolution.json``) that ``aalearn generate
--resolution FILE`` and ``AALEARN_RESOLUTION=FILE`` (the σ of attack budgets) accept.

Example:
    >>> res = calibrate_files("Clean_Test_Public.feather", ["top.h5", "w.h5"])  # doctest: +SKIP
    >>> res.resolution.angle_constant, res.uncertainty["angle_constant"]  # doctest: +SKIP
    (0.02, 0.001)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.optional import require
from aalearn.core.result import ReportBuilder
from aalearn.core.validation import check_positive
from aalearn.data.dataset import LABEL_TOP, LABEL_W
from aalearn.data.hdf5 import read_jets_hdf5
from aalearn.data.io import load_dataset
from aalearn.physics.detector import sort_by_pt
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV, N_CHALLENGE_FEATURES
from aalearn.physics.preprocessing import features_to_constituents, topodnn_preprocess
from aalearn.physics.resolution import ResolutionModel
from aalearn.report import write_run

__all__ = [
    "CALIBRATED_PARAMETERS",
    "OBSERVABLES",
    "CalibrationResult",
    "calibrate",
    "calibrate_files",
    "calibration_observables",
]

#: Parameters of :class:`ResolutionModel` that the calibration fits.
CALIBRATED_PARAMETERS: tuple[str, ...] = (
    "angle_constant",
    "angle_stochastic",
    "pt_stochastic",
    "pt_constant",
)
#: Observables compared (see the module docstring).
OBSERVABLES: tuple[str, ...] = ("log_pt_ratio", "log_nearest_dr", "log_dr01", "dr_lead")
_LABEL_NAME = {LABEL_TOP: "top", LABEL_W: "w"}
_EPS = 1e-6
#: Constituents (the leading ones) whose nearest-neighbour distance is an observable.
_N_NEAREST = 20


def calibration_observables(
    features: npt.ArrayLike, *, pt_scale: float = CHALLENGE_PT_SCALE_GEV
) -> dict[str, npt.NDArray[np.float64]]:
    """The calibration observables of jets in the 87-column challenge layout.

    Args:
        features: ``(N, 87)`` features (pT in units of ``pt_scale`` GeV).
        pt_scale: GeV per pT unit.

    Returns:
        ``log_pt_ratio`` (N·29,), ``log_nearest_dr`` (N·20: the distance of each of the
        20 leading constituents to its nearest neighbour among them), ``log_dr01`` (N,)
        (natural logs) and ``dr_lead`` (N·29: the distance of every other constituent to the
        leading one, the jet's extent).

    Example:
        >>> c = np.zeros((1, 30, 3))
        >>> c[0, :, 0], c[0, :, 1] = np.linspace(30, 1, 30), np.linspace(0, 0.29, 30)
        >>> obs = calibration_observables(topodnn_preprocess(c), pt_scale=CHALLENGE_PT_SCALE_GEV)
        >>> round(float(np.exp(obs["log_dr01"][0])), 3)
        0.01
    """
    c = features_to_constituents(np.asarray(features, dtype=np.float64), pt_scale=pt_scale)
    pt = np.maximum(c[..., 0], _EPS)
    ratio = np.log(pt[:, 1:] / pt[:, :-1]).ravel()
    lead = c[:, :_N_NEAREST].astype(np.float32)
    d_eta = lead[:, :, None, 1] - lead[:, None, :, 1]
    d_phi = lead[:, :, None, 2] - lead[:, None, :, 2]
    d_phi -= np.float32(2 * np.pi) * np.round(d_phi / np.float32(2 * np.pi))
    dr = np.hypot(d_eta, d_phi).astype(np.float64)
    k = dr.shape[1]
    dr[:, np.arange(k), np.arange(k)] = np.inf
    nearest = np.log(np.maximum(dr.min(axis=2), _EPS)).ravel()
    dr01 = np.log(np.maximum(dr[:, 0, 1], _EPS))
    dr_lead = np.hypot(c[:, 1:, 1], c[:, 1:, 2]).ravel()  # the leading constituent is at the origin
    return {"log_pt_ratio": ratio, "log_nearest_dr": nearest, "log_dr01": dr01, "dr_lead": dr_lead}


def _w1(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """1-Wasserstein distance of two 1-D samples (quantile form on a common grid)."""
    q = np.linspace(0.0025, 0.9975, 200)
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


@dataclass
class _ClassData:
    unsmeared: npt.NDArray[np.float64]  # (N, K, 3) GeV
    reference: dict[str, npt.NDArray[np.float64]]  # observables of the reference jets
    scale: dict[str, float]  # reference standard deviations


def _objective_terms(
    resolution: ResolutionModel,
    data: Mapping[int, _ClassData],
    *,
    seed: int,
    resort: bool,
    pt_scale: float,
) -> dict[str, float]:
    terms: dict[str, float] = {}
    for label, cd in data.items():
        smeared = resolution.smear(cd.unsmeared, np.random.default_rng(seed + label))
        if resort:
            smeared = sort_by_pt(smeared)
        obs = calibration_observables(topodnn_preprocess(smeared, pt_scale=pt_scale), pt_scale=pt_scale)
        for name in OBSERVABLES:
            terms[f"{_LABEL_NAME[label]}:{name}"] = _w1(obs[name], cd.reference[name]) / cd.scale[name]
    return terms


def _with_params(
    base: ResolutionModel, names: Sequence[str], log_values: npt.NDArray[np.float64]
) -> ResolutionModel:
    return replace(base, **{n: float(np.exp(v)) for n, v in zip(names, log_values, strict=True)})


def _fit(
    base: ResolutionModel,
    start: ResolutionModel,
    data: Mapping[int, _ClassData],
    *,
    names: Sequence[str],
    seed: int,
    resort: bool,
    pt_scale: float,
    max_evaluations: int,
) -> tuple[ResolutionModel, float, int, bool]:
    minimize = require("scipy.optimize", purpose="the calibration fit").minimize

    def objective(v: npt.NDArray[np.float64]) -> float:
        res = _with_params(base, names, v)
        return sum(_objective_terms(res, data, seed=seed, resort=resort, pt_scale=pt_scale).values())

    x0 = np.log([max(getattr(start, n), 1e-4) for n in names])
    opt = minimize(
        objective,
        x0,
        method="Nelder-Mead",
        options={"maxfev": max_evaluations, "xatol": 0.01, "fatol": 1e-4, "initial_simplex": None},
    )
    return _with_params(base, names, opt.x), float(opt.fun), int(opt.nfev), bool(opt.success)


@dataclass
class CalibrationResult:
    """The fitted resolution, its bootstrap uncertainties and the fit's diagnostics.

    Attributes:
        resolution: The fitted :class:`ResolutionModel`.
        uncertainty: Bootstrap standard deviation of every fitted parameter.
        start: The resolution the fit started from (the generated files').
        objective: Objective at the fit (sum of the normalised W1 distances).
        objective_start: Objective at ``start``.
        terms: Normalised W1 distance per class and observable at the fit.
        terms_start: The same at ``start``.
        n_reference: Reference jets used per class.
        n_generated: Generated jets used per class.
        n_bootstrap: Bootstrap replicas.
        rows: Which reference rows were used (``"even"`` or ``"all"``).
        evaluations: Objective evaluations of the main fit.
        seconds: Wall time.
        sources: The input files.
        parameters: The fitted parameters.
        converged: Whether Nelder–Mead met its tolerances within ``max_evaluations`` (if not,
            raise ``max_evaluations``: the fit may have stopped short of the minimum).
    """

    resolution: ResolutionModel
    uncertainty: dict[str, float]
    start: ResolutionModel
    objective: float
    objective_start: float
    terms: dict[str, float]
    terms_start: dict[str, float]
    n_reference: dict[str, int]
    n_generated: dict[str, int]
    n_bootstrap: int
    rows: str
    evaluations: int
    seconds: float
    sources: dict[str, Any] = field(default_factory=dict)
    parameters: tuple[str, ...] = CALIBRATED_PARAMETERS
    converged: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The resolution file's content (``resolution`` is what the loaders read)."""
        return {
            "resolution": self.resolution.to_dict(),
            "uncertainty": dict(self.uncertainty),
            "fitted_parameters": list(self.parameters),
            "start": self.start.to_dict(),
            "objective": self.objective,
            "objective_start": self.objective_start,
            "terms": dict(self.terms),
            "terms_start": dict(self.terms_start),
            "n_reference": dict(self.n_reference),
            "n_generated": dict(self.n_generated),
            "n_bootstrap": self.n_bootstrap,
            "rows": self.rows,
            "evaluations": self.evaluations,
            "converged": self.converged,
            "seconds": self.seconds,
            "sources": dict(self.sources),
            "procedure": (
                "Nelder-Mead in log-parameters minimising the sum over classes of the W1 distances "
                "(in reference standard deviations) of adjacent log pT ratios, log nearest-neighbour "
                "ΔR, log ΔR of the leading pair and ΔR to the leading constituent; uncertainties "
                "from a bootstrap of both samples "
                "(aalearn.apps.calibrate)"
            ),
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row per fitted parameter: start, fit, bootstrap uncertainty."""
        return [
            {
                "parameter": n,
                "start": getattr(self.start, n),
                "fit": getattr(self.resolution, n),
                "uncertainty": self.uncertainty.get(n),
            }
            for n in self.parameters
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """The parameter table and the distances before and after."""
        report.add_section(
            "Calibrated resolution",
            text=(
                f"Fitted to {self.n_reference} reference jets ({self.rows} rows) with "
                f"{self.n_generated} generated jets; uncertainties from {self.n_bootstrap} bootstrap "
                f"replicas. Objective {self.objective_start:.3f} → {self.objective:.3f}."
            ),
            table=self.summary(),
        )
        report.add_section(
            "Distances per class and observable (W1 / reference σ)",
            table=[{"term": k, "start": self.terms_start[k], "fit": v} for k, v in self.terms.items()],
        )


def _class_data(
    unsmeared: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    reference: npt.NDArray[np.float64],
    ref_labels: npt.NDArray[np.int64],
    pt_scale: float,
) -> dict[int, _ClassData]:
    out: dict[int, _ClassData] = {}
    for label in (LABEL_TOP, LABEL_W):
        gen = unsmeared[labels == label]
        if len(gen) == 0:
            continue
        ref = reference[ref_labels == label]
        obs = calibration_observables(ref, pt_scale=pt_scale)
        out[label] = _ClassData(gen, obs, {k: float(np.std(v)) or 1.0 for k, v in obs.items()})
    return out


def calibrate(
    reference: npt.ArrayLike,
    reference_labels: npt.ArrayLike,
    unsmeared: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    start: ResolutionModel | None = None,
    resort: bool = False,
    pt_scale: float = CHALLENGE_PT_SCALE_GEV,
    n_bootstrap: int = 10,
    max_evaluations: int = 200,
    seed: int = 0,
    rows: str = "all",
    parameters: Sequence[str] = CALIBRATED_PARAMETERS,
) -> CalibrationResult:
    """Fit the resolution parameters (see the module docstring for the procedure).

    Args:
        reference: ``(M, 87)`` reference features (already the rows to use).
        reference_labels: ``(M,)`` labels 0/1 of the reference.
        unsmeared: ``(N, K, 3)`` generated detector-level objects before smearing (GeV).
        labels: ``(N,)`` labels of the generated jets.
        start: Starting resolution (also gives the fixed ``pt_noise`` and ``pt_floor``).
        resort: Re-sort by smeared pT before preprocessing (as the generator's ``resort``).
        pt_scale: GeV per pT unit of ``reference``.
        n_bootstrap: Bootstrap replicas for the uncertainties (0: none, uncertainties NaN).
        max_evaluations: Objective evaluations of the main fit (replicas get half).
        seed: Seed of the common random numbers and the bootstrap.
        rows: Label for the record (``"even"`` / ``"all"``).
        parameters: The :class:`ResolutionModel` fields to fit (the others stay at ``start``).

    Returns:
        A :class:`CalibrationResult`.

    Raises:
        ValueError: For a reference without both classes of the generated jets, mismatched
            shapes or bad settings.
    """
    t0 = time.perf_counter()
    ref = np.asarray(reference, dtype=np.float64)
    ref_y = np.asarray(reference_labels).astype(np.int64)
    gen = np.asarray(unsmeared, dtype=np.float64)
    gen_y = np.asarray(labels).astype(np.int64)
    if ref.ndim != 2 or ref.shape[1] != N_CHALLENGE_FEATURES:
        raise ValueError(
            f"the reference must have {N_CHALLENGE_FEATURES} challenge features, got shape {ref.shape}"
        )
    if ref_y.shape != (len(ref),) or gen_y.shape != (len(gen),):
        raise ValueError("labels must have one entry per jet")
    if gen.ndim != 3 or gen.shape[2] != 3 or len(gen) == 0:
        raise ValueError(f"unsmeared constituents must have shape (N, K, 3) with N > 0, got {gen.shape}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    check_positive(max_evaluations, name="max_evaluations")
    for label in np.unique(gen_y):
        if label not in (LABEL_TOP, LABEL_W):
            raise ValueError(f"generated labels must be 0 (top) or 1 (W), got {label}")
        if int((ref_y == label).sum()) < 10:
            raise ValueError(
                f"the reference has {int((ref_y == label).sum())} jets of label {label} "
                f"({_LABEL_NAME[int(label)]}); the calibration needs both classes of the generated jets "
                "(at least 10 reference jets each)"
            )
    base = start or ResolutionModel()
    names = tuple(parameters)
    if not names or any(n not in CALIBRATED_PARAMETERS for n in names) or len(set(names)) != len(names):
        raise ValueError(
            f"parameters must be distinct names among {', '.join(CALIBRATED_PARAMETERS)}, got {list(names)}"
        )
    data = _class_data(gen, gen_y, ref, ref_y, pt_scale)
    kw: dict[str, Any] = {"seed": seed, "resort": resort, "pt_scale": pt_scale}
    terms_start = _objective_terms(base, data, **kw)
    fit, value, nfev, converged = _fit(base, base, data, names=names, max_evaluations=max_evaluations, **kw)
    terms = _objective_terms(fit, data, **kw)

    rng = np.random.default_rng(seed + 7919)
    replicas: list[list[float]] = []
    for b in range(n_bootstrap):
        boot: dict[int, _ClassData] = {}
        for label, cd in data.items():
            r = ref[ref_y == label]
            r = r[rng.integers(0, len(r), len(r))]
            g = cd.unsmeared[rng.integers(0, len(cd.unsmeared), len(cd.unsmeared))]
            obs = calibration_observables(r, pt_scale=pt_scale)
            boot[label] = _ClassData(g, obs, cd.scale)
        rfit, _, _, _ = _fit(
            base,
            fit,
            boot,
            names=names,
            max_evaluations=max(20, max_evaluations // 2),
            seed=seed + 1000 * (b + 1),
            resort=resort,
            pt_scale=pt_scale,
        )
        replicas.append([getattr(rfit, n) for n in names])
    arr = np.asarray(replicas, dtype=np.float64).reshape(len(replicas), len(names))
    unc = {n: float(arr[:, i].std(ddof=1)) if len(arr) > 1 else float("nan") for i, n in enumerate(names)}
    return CalibrationResult(
        resolution=fit,
        uncertainty=unc,
        start=base,
        objective=value,
        objective_start=float(sum(terms_start.values())),
        terms=terms,
        terms_start=terms_start,
        n_reference={_LABEL_NAME[k]: int((ref_y == k).sum()) for k in data},
        n_generated={_LABEL_NAME[k]: len(v.unsmeared) for k, v in data.items()},
        n_bootstrap=n_bootstrap,
        rows=rows,
        evaluations=nfev,
        seconds=time.perf_counter() - t0,
        parameters=names,
        converged=converged,
    )


def calibrate_files(
    reference: str | os.PathLike[str],
    generated: Sequence[str | os.PathLike[str]],
    *,
    rows: str = "even",
    n_max: int | None = None,
    n_bootstrap: int = 10,
    max_evaluations: int = 200,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
) -> CalibrationResult:
    """``aalearn calibrate``: fit the resolution of generated files to a labelled reference file.

    Args:
        reference: Labelled reference file in the challenge layout (Feather, Parquet, ...).
        generated: aalearn HDF5 files with ``constituents_unsmeared`` (one per class, or mixed).
        rows: ``"even"`` (rows 0, 2, 4, ...; the default, leaving the odd rows for checks) or ``"all"``.
        n_max: Use at most this many generated jets per file.
        n_bootstrap: Bootstrap replicas.
        max_evaluations: Objective evaluations of the main fit.
        seed: Seed.
        out: Directory for ``resolution.json`` (the resolution file) and ``report.html``.

    Returns:
        A :class:`CalibrationResult`.

    Raises:
        FileNotFoundError: For a missing file.
        ValueError: For a reference without labels or without a class of the generated jets,
            generated files without unsmeared constituents or with different settings.
    """
    if rows not in ("even", "all"):
        raise ValueError(f"rows must be 'even' or 'all', got {rows!r}")
    if not generated:
        raise ValueError("give at least one generated file (--generated)")
    gens = [read_jets_hdf5(p) for p in generated]  # validates before the reference is read
    configs = [g.metadata.get("config", {}) for g in gens]
    for g in gens:
        if "constituents_unsmeared" not in g.extras:
            raise ValueError(
                f"{g.source} has no 'constituents_unsmeared' dataset; regenerate it with this aalearn "
                "(aalearn generate writes the unsmeared objects the calibration needs)"
            )
    scales = {float(g.metadata["pt_scale_gev"]) for g in gens}
    if len(scales) != 1:
        raise ValueError(f"the generated files have different pT scales {sorted(scales)}")
    resorts = {bool(c.get("resort", False)) for c in configs}
    if len(resorts) != 1:
        raise ValueError("the generated files differ in 'resort'; calibrate them separately")
    res_dicts = [c.get("resolution") for c in configs]
    start = (
        ResolutionModel.from_dict(res_dicts[0]) if isinstance(res_dicts[0], Mapping) else ResolutionModel()
    )
    ds = load_dataset(reference, require_labels=True)
    if ds.labels is None:
        raise ValueError(f"{reference} has no labels; the calibration compares each class separately")
    if ds.features.shape[1] != N_CHALLENGE_FEATURES:
        raise ValueError(
            f"{reference} has {ds.features.shape[1]} features; the calibration needs the 87-column layout"
        )
    x = np.asarray(ds.features, dtype=np.float64)
    y = np.asarray(ds.labels)
    if rows == "even":
        x, y = x[::2], y[::2]
    take = slice(None) if n_max is None else slice(0, int(check_positive(n_max, name="n_max")))
    unsmeared = np.concatenate([np.asarray(g.extras["constituents_unsmeared"])[take] for g in gens])
    labels = np.concatenate([np.asarray(g.labels)[take] for g in gens])
    result = calibrate(
        x,
        y,
        unsmeared,
        labels,
        start=start,
        resort=resorts.pop(),
        pt_scale=scales.pop(),
        n_bootstrap=n_bootstrap,
        max_evaluations=max_evaluations,
        seed=seed,
        rows=rows,
    )
    result.sources = {"reference": str(reference), "generated": [str(p) for p in generated]}
    if out is not None:
        write_run(
            result,
            out,
            title="aalearn calibrate",
            json_name="resolution.json",
            metadata={"reference": str(reference), "rows": rows},
        )
    return result
