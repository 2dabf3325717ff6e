r"""Data-versus-simulation report: how far generated jets are from a labelled reference sample.

:func:`compare_data_sim` (the ``aalearn datasim`` command) compares, **per class**
(0 = top / tt̄ sample, 1 = W / WW sample), generated jets with reference jets (for
example the challenge's CMS jets in ``Clean_Test_Public.feather``):

* the surrogate-validation suite of :func:`aalearn.surrogates.validate_samples` on the
  jet-level features (ΣpT, mass, multiplicity, width, pT fractions, τ21, τ32): the
  classifier two-sample test (C2ST AUC with its Mann-Whitney null and the classifier
  weight map), per-feature KS and W1 with their nulls, FPD/KPD, tails, all corrected
  together for multiple testing;
* the substructure table of issue 15 for both samples: medians of ΣpT, mass, τ21, τ32
  (FastJet N-subjettiness, one-pass-:math:`k_t` axes, Thaler & Van Tilburg,
  arXiv:1011.2268), ΔR of the two hardest constituents, the share of jets whose two
  hardest constituents lie within ΔR < 0.02, and the hardest constituent's pT fraction;
* a list "where they differ": the failing checks of each class, most significant first.

With ``reweight`` the generated jets carry the per-class spectrum weights of
:func:`aalearn.data.reweight.reweight_to_reference` (weighted C2ST, importance resample
for the other tests, weighted medians). Only the reference's even rows (0, 2, 4, ...)
are used by default (``reference_rows="even"``): the odd rows of the challenge's clean
file stay held out for measurements of taggers.

Example:
    >>> weighted_median([1.0, 2.0, 3.0], [1.0, 1.0, 5.0])
    3.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.result import ReportBuilder
from aalearn.data.dataset import LABEL_NAMES, JetDataset
from aalearn.data.io import load_dataset, load_datasets
from aalearn.data.reweight import REFERENCE_ROWS, REWEIGHT_VARIABLES, reference_rows, reweight_to_reference
from aalearn.physics import CHALLENGE_PT_SCALE_GEV
from aalearn.physics.features import is_challenge_layout
from aalearn.physics.jets import delta_r, nsubjettiness
from aalearn.physics.preprocessing import features_mass, features_to_constituents
from aalearn.report import write_run
from aalearn.surrogates.validate import SurrogateValidation, validate_samples

__all__ = [
    "SUBSTRUCTURE_COLUMNS",
    "DataSimComparison",
    "compare_data_sim",
    "substructure_observables_of",
    "weighted_median",
]

#: Columns of the substructure table (issue 15), per jet.
SUBSTRUCTURE_COLUMNS: tuple[str, ...] = (
    "sum_pt_gev",
    "mass_gev",
    "tau21",
    "tau32",
    "dr_leading_pair",
    "leading_pair_within_0.02",
    "leading_pt_fraction",
)

FloatArray = npt.NDArray[np.float64]


def weighted_median(values: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> float:
    """The (lower) weighted median: the smallest value whose cumulative weight reaches half the total.

    Example:
        >>> weighted_median([3.0, 1.0, 2.0])
        2.0
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    if cum[-1] <= 0:
        return math.nan
    return float(v[order][np.searchsorted(cum, 0.5 * cum[-1])])


def substructure_observables_of(features: npt.ArrayLike) -> FloatArray:
    """Per-jet substructure observables (:data:`SUBSTRUCTURE_COLUMNS`) from challenge-layout features.

    Args:
        features: ``(N, 87)`` features (pT in units of 1679.16 GeV; η, φ relative to the
            leading constituent). Zero-pT (padded) constituents are ignored.

    Returns:
        ``(N, 7)``: ΣpT [GeV], mass [GeV], τ21, τ32 (1 where the denominator vanishes),
        ΔR of the two hardest constituents, 1.0 if that ΔR < 0.02 else 0.0, and the
        hardest constituent's pT fraction.

    Example:
        >>> x = np.zeros((1, 87)); x[0, 0] = x[0, 1] = 0.1; x[0, 2] = 0.3
        >>> obs = substructure_observables_of(x)
        >>> round(float(obs[0, 4]), 3), float(obs[0, 6])
        (0.3, 0.5)
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or not is_challenge_layout(x.shape[1]):
        raise ValueError(f"substructure needs (N, 87) challenge-layout features, got shape {x.shape}")
    c = features_to_constituents(x, pt_scale=CHALLENGE_PT_SCALE_GEV)
    pt, eta, phi = c[..., 0], c[..., 1], c[..., 2]
    sum_pt = pt.sum(axis=1)
    mass = features_mass(x, pt_scale=CHALLENGE_PT_SCALE_GEV)
    keep = pt > 0
    counts = keep.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    tau = nsubjettiness(c[keep], offsets, n=(1, 2, 3), r0=0.8)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau21 = np.where(tau[:, 0] > 0, tau[:, 1] / tau[:, 0], 1.0)
        tau32 = np.where(tau[:, 1] > 0, tau[:, 2] / tau[:, 1], 1.0)
    order = np.argsort(-pt, axis=1, kind="stable")[:, :2]
    rows = np.arange(len(x))
    a, b = order[:, 0], order[:, 1]
    dr = delta_r(eta[rows, a], phi[rows, a], eta[rows, b], phi[rows, b])
    lead_frac = np.divide(pt[rows, a], sum_pt, out=np.zeros(len(x)), where=sum_pt > 0)
    return np.stack([sum_pt, mass, tau21, tau32, dr, (dr < 0.02).astype(np.float64), lead_frac], axis=1)


def _table_rows(sample: str, label: int, obs: FloatArray, weights: FloatArray | None) -> dict[str, Any]:
    row: dict[str, Any] = {"sample": sample, "class": LABEL_NAMES[label], "n": len(obs)}
    for j, name in enumerate(SUBSTRUCTURE_COLUMNS):
        if name == "leading_pair_within_0.02":
            w = np.ones(len(obs)) if weights is None else weights
            row[name] = float(np.sum(w * obs[:, j]) / np.sum(w)) if len(obs) else math.nan
        else:
            row[f"median_{name}"] = weighted_median(obs[:, j], weights)
    return row


@dataclass
class DataSimComparison:
    """Result of :func:`compare_data_sim` (a :class:`~aalearn.core.result.Result`).

    Attributes:
        generated: The generated files.
        reference: The reference file.
        reference_rows: ``"even"`` or ``"all"``.
        reweighted: Whether the generated jets were spectrum-reweighted.
        validations: Per class label, the surrogate validation (reference vs generated).
        substructure: Rows of the substructure table (both samples, both classes).
        differences: Per class, the failing checks, most significant first.
        reweighting: The reweighting summary (or ``None``).
        notes: Remarks (sample sizes, warnings of the validations).
        n_generated: Per class, generated jets read (with ``reweight`` the tests other than
            the C2ST see an importance resample of Kish's effective size, ``n_compared``).
    """

    generated: list[str]
    reference: str
    reference_rows: str
    reweighted: bool
    validations: dict[int, SurrogateValidation]
    substructure: list[dict[str, Any]]
    differences: dict[int, list[str]]
    reweighting: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    n_generated: dict[int, int] = field(default_factory=dict)

    def c2st_auc(self, label: int) -> float | None:
        """C2ST AUC of class ``label`` (``None`` without a classifier test)."""
        c2 = self.validations[label].c2st
        return None if c2 is None else float(c2.auc)

    def summary(self) -> list[dict[str, Any]]:
        """One row per class: jets, C2ST AUC with its null width, verdict, number of failing checks."""
        rows = []
        for label, v in sorted(self.validations.items()):
            rows.append(
                {
                    "class": LABEL_NAMES[label],
                    "n_reference": v.n_reference,
                    "n_generated": self.n_generated.get(label, v.n_candidate),
                    "n_compared": v.n_candidate,
                    "c2st_auc": None if v.c2st is None else v.c2st.auc,
                    "c2st_null_std": None if v.c2st is None else v.c2st.auc_null_std,
                    "verdict": "compatible" if v.safe else "differ",
                    "failing_checks": len(v.failing_checks),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON object: per class the C2ST, verdict, failing checks, substructure, differences."""
        out = {
            "generated": self.generated,
            "reference": self.reference,
            "reference_rows": self.reference_rows,
            "reweighted": self.reweighted,
            "classes": {
                LABEL_NAMES[label]: {
                    "c2st_auc": None if v.c2st is None else v.c2st.auc,
                    "c2st_null_std": None if v.c2st is None else v.c2st.auc_null_std,
                    "n_reference": v.n_reference,
                    "n_generated": self.n_generated.get(label, v.n_candidate),
                    "n_compared": v.n_candidate,
                    "verdict": str(v.verdict),
                    "failing_checks": v.failing_checks,
                    "features": v.feature_table(),
                    "where_they_differ": self.differences[label],
                    "warnings": v.warnings,
                }
                for label, v in sorted(self.validations.items())
            },
            "substructure": self.substructure,
            "reweighting": self.reweighting,
            "notes": self.notes,
        }
        result: dict[str, Any] = to_jsonable(out)
        return result

    def add_to(self, report: ReportBuilder) -> None:
        """The summary, the substructure table, the differences and each class's validation."""
        report.add_section(
            "Data versus simulation",
            text=(
                f"Generated {', '.join(self.generated)} against {self.reference} ({self.reference_rows} rows)"
                + (", generated jets spectrum-reweighted per class" if self.reweighted else "")
                + ". C2ST AUC 0.5 means the classifier cannot tell the samples apart."
            ),
            table=self.summary(),
        )
        report.add_section("Substructure (medians; τ from FastJet one-pass-kT axes)", table=self.substructure)
        diff_rows = [
            {"class": LABEL_NAMES[label], "difference": d}
            for label, items in sorted(self.differences.items())
            for d in items
        ]
        report.add_section(
            "Where they differ",
            text="Failing checks after the multiple-testing correction, most significant first.",
            table=diff_rows or [{"class": "-", "difference": "no significant difference"}],
        )
        for label, v in sorted(self.validations.items()):
            report.add_section(f"Class {LABEL_NAMES[label]}: per-feature comparison", table=v.feature_table())


def _differences(v: SurrogateValidation, limit: int) -> list[str]:
    failing = [c for c in v.verdict.checks if not c.passed]
    failing.sort(key=lambda c: c.value if isinstance(c.value, float) and math.isfinite(c.value) else 1.0)
    return [f"{c.name}: {c.detail}" for c in failing[:limit]]


def compare_data_sim(
    generated: Sequence[str | Path],
    reference: str | Path,
    *,
    reweight: bool = False,
    reweight_var: str = "sum-pt",
    reweight_bins: int = 10,
    rows: str = "even",
    n_null: int = 50,
    n_max: int | None = None,
    seed: int = 0,
    n_threads: int | None = 1,
    c2st_classifier: str = "hgb",
    out: str | Path | None = None,
    max_differences: int = 8,
) -> DataSimComparison:
    """Compare generated jets with a labelled reference sample per class (module docstring).

    Args:
        generated: Labelled generated jet files (aalearn HDF5, Feather, ...), concatenated.
        reference: Labelled reference file (challenge layout), e.g. ``Clean_Test_Public.feather``.
        reweight: Spectrum-reweight each generated class to the reference's spectrum.
        reweight_var: ``"sum-pt"`` or ``"lead-pt"``.
        reweight_bins: Quantile bins of the reference per class for the reweighting.
        rows: Reference rows used: ``"even"`` (default) or ``"all"``.
        n_null: Null resamples of the resampled tests (≥ 41 enables their tail fit).
        n_max: Read at most this many jets per generated file.
        seed: Seed of the resampling and the classifier.
        n_threads: BLAS/OpenMP threads (1 is fastest on a shared machine).
        c2st_classifier: ``"hgb"`` (the only one that takes weights) or ``"mlp"``.
        out: Write ``report.html`` and ``results.json`` here.
        max_differences: Differences listed per class.

    Returns:
        The :class:`DataSimComparison`.

    Raises:
        ValueError: For missing files, unlabelled or single-class input, layouts other than
            the challenge's, bad options.
        FileNotFoundError: For a missing file.
    """
    if not generated:
        raise ValueError("give at least one generated file (--generated)")
    if rows not in REFERENCE_ROWS:
        raise ValueError(f"reference rows must be one of {', '.join(REFERENCE_ROWS)}, got {rows!r}")
    if reweight_var not in REWEIGHT_VARIABLES:
        raise ValueError(
            f"--reweight-var must be one of {', '.join(REWEIGHT_VARIABLES)}, got {reweight_var!r}"
        )
    if isinstance(n_null, bool) or not isinstance(n_null, int) or n_null < 2:
        raise ValueError(f"n_null must be an integer >= 2, got {n_null!r}")
    paths = [Path(p) for p in generated]
    for p in [*paths, Path(reference)]:
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p}")
    gen = load_datasets(paths, require_labels=True, n_max=n_max)
    ref_all = load_dataset(Path(reference), require_labels=True)
    for what, ds in (("generated", gen), ("reference", ref_all)):
        if not is_challenge_layout(ds.features.shape[1], ds.feature_names):
            raise ValueError(f"the {what} jets are not in the 87-column challenge layout")
    ref = ref_all.subset(reference_rows(len(ref_all), rows))
    assert ref.labels is not None  # require_labels
    assert gen.labels is not None
    classes = sorted(set(np.unique(ref.labels).tolist()) & set(np.unique(gen.labels).tolist()))
    if len(classes) == 0:
        raise ValueError("the generated and reference samples share no class label")
    weights = None
    reweighting = None
    if reweight:
        sw = reweight_to_reference(gen, ref_all, variable=reweight_var, rows=rows, n_bins=reweight_bins)
        weights, reweighting = sw.weights, sw.to_dict()
    validations: dict[int, SurrogateValidation] = {}
    table: list[dict[str, Any]] = []
    differences: dict[int, list[str]] = {}
    notes: list[str] = []
    for label in classes:
        r = ref.subset(ref.labels == label)
        g_idx = np.nonzero(gen.labels == label)[0]
        g = gen.subset(g_idx)
        w = None if weights is None else weights[g_idx]
        v = validate_samples(
            r,
            _as_plain(g),
            features="jet",
            n_null=n_null,
            seed=seed,
            c2st_classifier=c2st_classifier,
            n_threads=n_threads,
            candidate_weights=w,
        )
        validations[label] = v
        differences[label] = _differences(v, max_differences)
        notes.extend(f"{LABEL_NAMES[label]}: {text}" for text in v.warnings)
        table.append(_table_rows("reference", label, substructure_observables_of(r.features), None))
        table.append(
            _table_rows(
                "generated" + (" (reweighted)" if w is not None else ""),
                label,
                substructure_observables_of(g.features),
                w,
            )
        )
    result = DataSimComparison(
        generated=[str(p) for p in paths],
        reference=str(reference),
        reference_rows=rows,
        reweighted=reweight,
        validations=validations,
        substructure=table,
        differences=differences,
        reweighting=reweighting,
        notes=notes,
        n_generated={label: int(np.sum(gen.labels == label)) for label in classes},
    )
    if out is not None:
        write_run(result, out, title="aalearn datasim: generated jets versus reference jets")
    return result


def _as_plain(ds: JetDataset) -> JetDataset:
    """The features and labels only (the generator's extra per-jet arrays are not compared)."""
    return JetDataset(ds.features, ds.labels, ds.feature_names, source=ds.source)
