r"""Validate a surrogate's sample against a reference sample: every metric, its null, the verdict.

:func:`validate_samples` runs the whole suite on jet-level features
(:mod:`aalearn.surrogates.features`):

==========================  ================================================  ===============================
check                       statistic                                         null / p-value
==========================  ================================================  ===============================
``fpd``                     Fréchet physics distance (jetnet estimator)       reference-vs-reference
``kpd``                     kernel physics distance (jetnet estimator)        reference-vs-reference
``corr``                    :math:`\lVert \Delta C \rVert_F`, correlations    reference-vs-reference
``w1:<feature>``            1-D Wasserstein-1 distance                        reference-vs-reference
``ks:<feature>``            two-sample Kolmogorov-Smirnov                     exact/asymptotic (scipy)
``tail:<feature>:q<q>``     candidate share beyond the reference q-quantile   beta-binomial (exact)
``c2st``                    held-out classifier AUC                           Mann-Whitney (label permutation)
==========================  ================================================  ===============================

(Kansal et al., arXiv:2211.10295, for FPD/KPD/W1 and the truth-versus-truth null;
Lopez-Paz & Oquab, arXiv:1610.06545, for the C2ST; Das et al., arXiv:2305.16774, for
the classifier weights.) The resampled nulls follow the protocol of
:mod:`aalearn.surrogates.null` (compared sizes :math:`m = N_\mathrm{ref} - k`,
:math:`k = \min(N_\mathrm{cand}, \lfloor N_\mathrm{ref}/2\rfloor)`; ``n_null`` random
partitions of the reference into :math:`m` and :math:`k` rows); the analytic tests
use the full samples. FPD and KPD use jetnet's defaults capped at the compared size
(``max_samples = min(50000, k)``, ``min_samples = min(20000, 0.4 max_samples)``,
``batch_size = min(5000, k)``) unless given. All p-values are corrected together
(:func:`aalearn.surrogates.verdict.statistical_checks`) and combined with the closure
and amplification checks into the :class:`~aalearn.surrogates.verdict.Verdict`.

**Weighted candidate.** With ``candidate_weights`` (for example the spectrum weights of
:mod:`aalearn.data.reweight`) the C2ST uses the weights directly
(:func:`aalearn.surrogates.twosample.c2st`), and every other test compares the reference
with an importance resample of the candidate: :math:`n^\mathrm{eff}` rows (Kish's
effective size :math:`(\sum s)^2/\sum s^2`) drawn with replacement in proportion to
the weights, so the tests see the reweighted distribution with the statistical power
the weights leave. When ``n_null`` is too small for the resampled-null tests to fail
after the correction, :attr:`SurrogateValidation.warnings` says so.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(1200, 3))
    >>> same = validate_samples(ref, rng.normal(size=(600, 3)), features="all", n_null=20, seed=1)
    >>> same.verdict.safe
    True
    >>> shifted = validate_samples(ref, rng.normal(size=(600, 3)) + [0.0, 0.5, 0.0], features="all",
    ...                            feature_names=["a", "b", "c"], n_null=20, seed=1)
    >>> shifted.verdict.safe, "ks:b" in shifted.failing_checks
    (False, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.result import ReportBuilder
from aalearn.data.dataset import JetDataset
from aalearn.surrogates.features import JET_FEATURE_UNITS, feature_matrix
from aalearn.surrogates.metrics import (
    DEFAULT_TAIL_QUANTILES,
    MarginalDistances,
    TailCoverage,
    _w1,
    correlation_difference,
    fpd,
    kpd,
    marginal_distances,
    quantile_regions,
    tail_coverage,
)
from aalearn.surrogates.null import NullTest, min_attainable_pvalue, reference_partitions, split_sizes
from aalearn.surrogates.plots import plot_marginals, plot_null_distributions, plot_weight_map
from aalearn.surrogates.twosample import CLASSIFIERS, C2STResult, _thread_limit, c2st
from aalearn.surrogates.verdict import (
    CORRECTIONS,
    Check,
    Verdict,
    _check_alpha,
    first_step_threshold,
    statistical_checks,
)

__all__ = ["HasChecks", "SurrogateValidation", "n_null_warnings", "validate_samples"]

FloatArray = npt.NDArray[np.float64]
_MIN_COMPARED = 20


class HasChecks(Protocol):
    """What a closure or amplification result must offer (``ClosureResult``, ``AmplificationResult``)."""

    def checks(self, *args: Any, **kwargs: Any) -> list[Check]:
        """The result's checks for the verdict."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        ...


@dataclass
class SurrogateValidation:
    """Result of :func:`validate_samples`.

    Attributes:
        feature_names: The compared features.
        feature_kind: ``"jet"``, ``"efp"`` or ``"all"``.
        n_reference: Reference rows.
        n_candidate: Candidate rows.
        n_compared: ``(m, k)`` rows of reference and candidate in the resampled-null comparisons.
        n_null: Null resamples.
        seed: Seed of the resampling and the classifier.
        fpd: FPD with its null.
        kpd: KPD with its null.
        corr: Correlation-matrix difference with its null.
        w1: Per-feature W1 with its null.
        marginals: Per-feature W1 and KS on the full samples.
        tails: Tail coverage.
        regions: Per feature, the reference-quantile bin where the candidate deviates most.
        c2st: The classifier two-sample test (``None`` when switched off).
        verdict: The verdict.
        settings: Estimator settings used.
        closure: The closure result given, if any.
        amplification: The amplification result given, if any.
        reference_features: ``(N, F)`` reference features (for plots; not serialised).
        candidate_features: ``(M, F)`` candidate features (for plots; not serialised).
        warnings: Caveats of the run, for example an ``n_null`` too small for the
            resampled-null tests to fail after the multiple-testing correction.
    """

    feature_names: tuple[str, ...]
    feature_kind: str
    n_reference: int
    n_candidate: int
    n_compared: tuple[int, int]
    n_null: int
    seed: int
    fpd: NullTest
    kpd: NullTest
    corr: NullTest
    w1: tuple[NullTest, ...]
    marginals: MarginalDistances
    tails: TailCoverage
    regions: list[dict[str, float]]
    c2st: C2STResult | None
    verdict: Verdict
    settings: dict[str, Any] = field(default_factory=dict)
    closure: Any = None
    amplification: Any = None
    reference_features: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    candidate_features: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """The verdict: whether the surrogate may replace the reference simulation."""
        return self.verdict.safe

    @property
    def failing_checks(self) -> list[str]:
        """Names of the failing checks."""
        return [c.name for c in self.verdict.failing_checks]

    def feature_table(self) -> list[dict[str, Any]]:
        """One row per feature: W1 (with its null significance), KS, the worst region.

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> v = validate_samples(rng.normal(size=(400, 2)), rng.normal(size=(200, 2)), features="all",
            ...                      n_null=5, c2st_classifier=None)
            >>> sorted(v.feature_table()[0])[:3]
            ['feature', 'ks_pvalue', 'ks_statistic']
        """
        rows = []
        for j, name in enumerate(self.feature_names):
            rows.append(
                {
                    "feature": name,
                    "w1": self.w1[j].observed,
                    "w1_over_std": float(self.marginals.w1_scaled[j]),
                    "w1_null_mean": self.w1[j].null_mean,
                    "w1_significance": self.w1[j].significance,
                    "ks_statistic": float(self.marginals.ks_statistic[j]),
                    "ks_pvalue": float(self.marginals.ks_pvalue[j]),
                    "worst_region": _region_text(name, self.regions[j]),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict.

        Keys include ``fpd``, ``fpd_significance``, ``kpd``, ``c2st_auc``, ``verdict`` and ``failing_checks``.
        """
        out: dict[str, Any] = {
            "verdict": str(self.verdict),
            "safe": self.verdict.safe,
            "failing_checks": self.failing_checks,
            "fpd": self.fpd.observed,
            "fpd_error": self.fpd.error,
            "fpd_significance": self.fpd.significance,
            "fpd_pvalue": self.fpd.pvalue,
            "fpd_null_mean": self.fpd.null_mean,
            "fpd_null_std": self.fpd.null_std,
            "kpd": self.kpd.observed,
            "kpd_error": self.kpd.error,
            "kpd_significance": self.kpd.significance,
            "kpd_pvalue": self.kpd.pvalue,
            "kpd_null_mean": self.kpd.null_mean,
            "kpd_null_std": self.kpd.null_std,
            "corr_diff": self.corr.observed,
            "corr_significance": self.corr.significance,
            "c2st_auc": None if self.c2st is None else self.c2st.auc,
            "c2st_pvalue": None if self.c2st is None else self.c2st.pvalue,
            "c2st_significance": None if self.c2st is None else self.c2st.significance,
            "n_reference": self.n_reference,
            "n_candidate": self.n_candidate,
            "n_compared": list(self.n_compared),
            "n_null": self.n_null,
            "seed": self.seed,
            "feature_kind": self.feature_kind,
            "feature_names": list(self.feature_names),
            "metrics": {t.name: t.to_dict() for t in (self.fpd, self.kpd, self.corr)},
            "features": self.feature_table(),
            "tails": self.tail_table(),
            "c2st": None if self.c2st is None else self.c2st.to_dict(),
            "checks": [c.to_dict() for c in self.verdict.checks],
            "alpha": self.verdict.alpha,
            "correction": self.verdict.correction,
            "settings": self.settings,
            "closure": None if self.closure is None else self.closure.to_dict(),
            "amplification": None if self.amplification is None else self.amplification.to_dict(),
            "warnings": list(self.warnings),
        }
        result: dict[str, Any] = to_jsonable(out)
        return result

    def tail_table(self) -> list[dict[str, Any]]:
        """One row per feature and quantile: threshold, expected and observed candidate share, p-value."""
        t = self.tails
        rows = []
        for j, name in enumerate(self.feature_names):
            for i, q in enumerate(t.quantiles):
                rows.append(
                    {
                        "feature": name,
                        "quantile": float(q),
                        "threshold": float(t.thresholds[j, i]),
                        "expected_fraction": float(t.expected_fraction[i]),
                        "candidate_fraction": float(t.candidate_fraction[j, i]),
                        "pvalue": float(t.pvalue[j, i]),
                    }
                )
        return rows

    def summary(self) -> list[dict[str, Any]]:
        """The terminal-table row of ``aalearn surrogate validate``: verdict, FPD, KPD, C2ST, failing checks.

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> v = validate_samples(rng.normal(size=(400, 2)), rng.normal(size=(200, 2)), features="all",
            ...                      n_null=5, c2st_classifier=None)
            >>> v.summary()[0]["verdict"]
            'safe'
        """
        return [
            {
                "verdict": "safe" if self.safe else "NOT SAFE",
                "fpd": self.fpd.observed,
                "fpd_significance": self.fpd.significance,
                "kpd": self.kpd.observed,
                "kpd_significance": self.kpd.significance,
                "corr_significance": self.corr.significance,
                "c2st_auc": None if self.c2st is None else to_jsonable(self.c2st.auc),
                "c2st_significance": None if self.c2st is None else to_jsonable(self.c2st.significance),
                "failing_checks": ", ".join(self.failing_checks) or "none",
            }
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the verdict, the metrics with their nulls, the per-feature table and the figures to ``report``.

        Needs matplotlib (the ``report`` extra) for the figures.
        """
        if self.warnings:
            report.add_section("Surrogate validation: warnings", text=" ".join(self.warnings))
        self.verdict.add_to(report)
        shown = ", ".join(self.feature_names[:10]) + (", ..." if len(self.feature_names) > 10 else "")
        global_rows = [
            {
                "metric": t.name,
                "value": t.observed,
                "error": t.error,
                "null mean": t.null_mean,
                "null std": t.null_std,
                "p-value": t.pvalue,
                "significance [σ]": t.significance,
            }
            for t in (self.fpd, self.kpd, self.corr)
        ]
        if self.c2st is not None:
            global_rows.append(
                {
                    "metric": "c2st_auc",
                    "value": self.c2st.auc,
                    "error": math.nan,
                    "null mean": 0.5,
                    "null std": self.c2st.auc_null_std,
                    "p-value": self.c2st.pvalue,
                    "significance [σ]": self.c2st.significance,
                }
            )
        report.add_section(
            "Surrogate metrics and their nulls",
            text=(
                f"{self.n_reference} reference and {self.n_candidate} candidate jets; resampled nulls "
                f"compare {self.n_compared[0]} against {self.n_compared[1]} rows over {self.n_null} random "
                f"partitions of the reference. Features: {self.feature_kind} ({shown})."
            ),
            table=global_rows,
            figures=[plot_null_distributions(self)],
        )
        report.add_section(
            "Surrogate: per-feature comparison",
            table=self.feature_table(),
            figures=[plot_marginals(self)],
        )
        if self.c2st is not None and self.c2st.regions:
            report.add_section(
                "Surrogate: where the classifier tells it apart",
                text=(
                    "Mean classifier weight w = D/(1-D) of the held-out candidate jets per "
                    "reference-quantile bin (w > 1: the surrogate under-populates the bin; w < 1: it "
                    "over-populates it)."
                ),
                table=[r.to_dict() for r in self.c2st.regions[:10]],
                figures=[plot_weight_map(self.c2st, self.feature_names)],
            )
        failing_tails = [r for r in self.tail_table() if r["pvalue"] < 0.05]
        report.add_section(
            "Surrogate: tails and edges",
            text="Candidate share beyond the reference's extreme quantiles (beta-binomial test); rows with "
            "raw p < 0.05 first." + ("" if failing_tails else " No tail deviates at raw p < 0.05."),
            table=sorted(self.tail_table(), key=lambda r: r["pvalue"])[: max(10, len(failing_tails))],
        )
        for title, obj in (
            ("Surrogate: closure", self.closure),
            ("Surrogate: amplification", self.amplification),
        ):
            if obj is not None:
                scalars = {k: v for k, v in obj.to_dict().items() if not isinstance(v, dict | list)}
                if scalars:
                    report.add_section(title, table=scalars)


def _unit(name: str) -> str:
    unit = JET_FEATURE_UNITS.get(name, "")
    return "" if unit in ("", "1") else f" {unit}"


def _region_text(name: str, region: Mapping[str, float]) -> str:
    return (
        f"{name} in [{region['lo']:.4g}, {region['hi']:.4g}){_unit(name)}: candidate "
        f"{100 * region['candidate_fraction']:.3g} % vs reference {100 * region['reference_fraction']:.3g} % "
        f"(z = {region['z']:.1f})"
    )


def _as_features(
    data: Any, kind: str, feature_names: Sequence[str] | None, what: str
) -> tuple[FloatArray, tuple[str, ...] | None, tuple[str, ...]]:
    raw_names: tuple[str, ...] | None
    if isinstance(data, JetDataset):
        raw_names = tuple(data.feature_names)
        if feature_names is not None and tuple(feature_names) != raw_names:
            raise ValueError(f"feature_names do not match the {what} dataset's own feature names")
    else:
        raw_names = None if feature_names is None else tuple(str(n) for n in feature_names)
        if not isinstance(data, np.ndarray | list | tuple):
            raise TypeError(f"{what} must be a JetDataset or an (N, F) array, got {type(data).__name__}")
    try:
        x, names = feature_matrix(
            data, kind=kind, feature_names=None if isinstance(data, JetDataset) else raw_names
        )
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return x, raw_names, names


def _compare_names(ref_names: tuple[str, ...] | None, cand_names: tuple[str, ...] | None) -> None:
    if ref_names is None or cand_names is None or ref_names == cand_names:
        return
    missing = [n for n in ref_names if n not in cand_names]
    extra = [n for n in cand_names if n not in ref_names]
    if not missing and not extra:
        raise ValueError(
            "reference and candidate have the same features in a different order; reorder the columns"
        )
    raise ValueError(
        "reference and candidate have different feature sets: "
        + (f"missing in the candidate: {', '.join(missing[:10])}; " if missing else "")
        + (f"only in the candidate: {', '.join(extra[:10])}" if extra else "")
    )


def n_null_warnings(
    n_null: int,
    n_tests: int,
    resampled: Sequence[NullTest],
    *,
    alpha: float = 0.05,
    correction: str = "holm",
) -> list[str]:
    """A warning when ``n_null`` is too small for the resampled-null tests to fail on their own.

    The resampled tests' p-values cannot fall below
    :func:`~aalearn.surrogates.null.min_attainable_pvalue` (``1/(n_null + 1)`` without a
    tail fit); when that floor lies above the corrected threshold of the most significant
    of the ``n_tests`` tests (:func:`~aalearn.surrogates.verdict.first_step_threshold`),
    FPD, KPD, the correlation difference and W1 are reported compatible with the null
    however far the candidate lies from it.

    Args:
        n_null: Null resamples.
        n_tests: Tests in the corrected family.
        resampled: The resampled-null tests (their significances are quoted).
        alpha: Level of the corrected tests.
        correction: ``"holm"`` or ``"by"``.

    Returns:
        An empty list, or one warning sentence.

    Example:
        >>> n_null_warnings(20, 30, [])[0][:42]
        'n_null = 20 is too small: a resampled-null'
        >>> n_null_warnings(100, 30, [])
        []
    """
    floor = min_attainable_pvalue(n_null)
    threshold = first_step_threshold(n_tests, alpha=alpha, correction=correction)
    if floor <= threshold:
        return []
    strongest = max(
        resampled, key=lambda t: t.significance if math.isfinite(t.significance) else -math.inf, default=None
    )
    far = ""
    if strongest is not None and math.isfinite(strongest.observed) and strongest.null_std > 0:
        distance = (strongest.observed - strongest.null_mean) / strongest.null_std
        if distance > 3:
            far = (
                f" (here {strongest.name} lies {distance:.0f} null standard deviations above its "
                "null mean and is still reported compatible)"
            )
    return [
        f"n_null = {n_null} is too small: a resampled-null test (FPD, KPD, correlations, W1) cannot reach a "
        f"p-value below 1/(n_null + 1) = {floor:.3g}, above the {correction}-corrected threshold "
        f"{threshold:.3g} of the most significant of the {n_tests} tests, so these tests can never fail on "
        f"their own, however far the candidate lies from the reference{far}. Use n_null >= 41 (enables the "
        "exponential tail fit) or more."
    ]


def _int_option(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _collect_external(
    closure: HasChecks | None, amplification: HasChecks | None, needed_events: float | None
) -> list[Check]:
    checks: list[Check] = []
    if needed_events is not None:
        if (
            isinstance(needed_events, bool)
            or not isinstance(needed_events, int | float)
            or needed_events <= 0
        ):
            raise ValueError(f"needed_events must be a positive number, got {needed_events!r}")
        if amplification is None:
            raise ValueError(
                "needed_events is compared with the surrogate's equivalent number of events: pass an "
                "amplification result (aalearn.surrogates.amplification) too"
            )
    for what, obj in (("closure", closure), ("amplification", amplification)):
        if obj is None:
            continue
        if not callable(getattr(obj, "checks", None)) or not callable(getattr(obj, "to_dict", None)):
            raise TypeError(f"{what} must offer .checks() and .to_dict(), got {type(obj).__name__}")
        items = obj.checks(needed_events=needed_events) if what == "amplification" else obj.checks()
        checks.extend(items)
    return checks


def validate_samples(
    reference: Any,
    candidate: Any,
    *,
    features: str = "jet",
    feature_names: Sequence[str] | None = None,
    n_null: int = 100,
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "holm",
    closure: HasChecks | None = None,
    amplification: HasChecks | None = None,
    needed_events: float | None = None,
    c2st_classifier: str | None = "hgb",
    tail_quantiles: Sequence[float] = DEFAULT_TAIL_QUANTILES,
    fpd_options: Mapping[str, Any] | None = None,
    kpd_options: Mapping[str, Any] | None = None,
    n_threads: int | None = None,
    candidate_weights: npt.ArrayLike | None = None,
) -> SurrogateValidation:
    """Run the surrogate-validation suite and decide whether the surrogate is safe to use.

    Args:
        reference: Reference jets (full simulation): a :class:`~aalearn.data.JetDataset` or ``(N, F)`` array.
        candidate: The surrogate's jets, same columns.
        features: ``"jet"`` (physics features from the challenge layout), ``"efp"`` or ``"all"``
            (:func:`aalearn.surrogates.features.feature_matrix`).
        feature_names: Column names of array input.
        n_null: Reference-versus-reference resamples per resampled null (at least 2; the
            p-value resolution is ``1/(n_null + 1)``, refined by a tail fit beyond it).
        seed: Seed of the partitions and the classifier.
        alpha: Level of the corrected statistical checks.
        correction: ``"holm"`` or ``"by"``.
        closure: A closure result (``.checks()``, ``.to_dict()``) whose checks join the verdict.
        amplification: An amplification result (``.checks(needed_events=...)``, ``.to_dict()``).
        needed_events: Events the analysis needs (requires ``amplification``).
        c2st_classifier: ``"hgb"``, ``"mlp"`` or ``None`` to skip the classifier test.
        tail_quantiles: Extreme quantiles of :func:`~aalearn.surrogates.metrics.tail_coverage`.
        fpd_options: Keyword arguments of :func:`~aalearn.surrogates.metrics.fpd` (overrides the defaults).
        kpd_options: Keyword arguments of :func:`~aalearn.surrogates.metrics.kpd`.
        n_threads: Limit the BLAS/OpenMP threads of the whole computation (``None``: the
            libraries' defaults; 1 is much faster on a machine shared with other jobs).
        candidate_weights: Optional non-negative per-row weights of the candidate (module
            docstring: weighted C2ST, importance resample for the other tests).

    Returns:
        The :class:`SurrogateValidation` with the :class:`~aalearn.surrogates.verdict.Verdict`.

    Raises:
        ValueError: Different feature sets, NaN/inf, too few rows for the null or for the
            requested FPD/KPD batches, bad options.
        TypeError: Non-numeric input or results without ``.checks()``.
    """
    with _thread_limit(n_threads):
        return _validate(
            reference,
            candidate,
            features=features,
            feature_names=feature_names,
            n_null=n_null,
            seed=seed,
            alpha=alpha,
            correction=correction,
            closure=closure,
            amplification=amplification,
            needed_events=needed_events,
            c2st_classifier=c2st_classifier,
            tail_quantiles=tail_quantiles,
            fpd_options=fpd_options,
            kpd_options=kpd_options,
            n_threads=n_threads,
            candidate_weights=candidate_weights,
        )


def _validate(
    reference: Any,
    candidate: Any,
    *,
    features: str,
    feature_names: Sequence[str] | None,
    n_null: int,
    seed: int,
    alpha: float,
    correction: str,
    closure: HasChecks | None,
    amplification: HasChecks | None,
    needed_events: float | None,
    c2st_classifier: str | None,
    tail_quantiles: Sequence[float],
    fpd_options: Mapping[str, Any] | None,
    kpd_options: Mapping[str, Any] | None,
    n_threads: int | None,
    candidate_weights: npt.ArrayLike | None = None,
) -> SurrogateValidation:
    n_null = _int_option(n_null, "n_null", 2)
    seed = _int_option(seed, "seed", 0)
    # cheap option checks first: nothing expensive runs before bad input is reported
    _check_alpha(alpha)
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(map(repr, CORRECTIONS))}, got {correction!r}")
    if c2st_classifier is not None and c2st_classifier not in CLASSIFIERS:
        raise ValueError(
            f"c2st_classifier must be one of {', '.join(map(repr, CLASSIFIERS))} or None, "
            f"got {c2st_classifier!r}"
        )
    x_ref, ref_raw, names = _as_features(reference, features, feature_names, "reference")
    x_cand, cand_raw, cand_names = _as_features(candidate, features, feature_names, "candidate")
    _compare_names(ref_raw, cand_raw)
    if names != cand_names or x_ref.shape[1] != x_cand.shape[1]:
        raise ValueError(
            "reference and candidate have different feature sets "
            f"({x_ref.shape[1]} and {x_cand.shape[1]} columns)"
        )
    extra_checks = _collect_external(closure, amplification, needed_events)
    x_cand_weighted, s_cand = x_cand, None
    if candidate_weights is not None:
        if c2st_classifier not in (None, "hgb"):
            raise ValueError("candidate_weights need c2st_classifier='hgb' (or None)")
        s_cand = np.asarray(candidate_weights, dtype=np.float64)
        if s_cand.shape != (len(x_cand),):
            raise ValueError(f"candidate_weights must have shape ({len(x_cand)},), got {s_cand.shape}")
        if not np.all(np.isfinite(s_cand)) or np.any(s_cand < 0) or not np.any(s_cand > 0):
            raise ValueError("candidate_weights must be finite, non-negative, with a positive weight")
        n_eff = max(_MIN_COMPARED, round(float(s_cand.sum() ** 2 / np.sum(s_cand**2))))
        pick = np.random.default_rng([seed, 1]).choice(len(x_cand), size=n_eff, p=s_cand / s_cand.sum())
        x_cand = x_cand[pick]
    m, k = split_sizes(len(x_ref), len(x_cand), min_rows=_MIN_COMPARED)
    tail_coverage(x_ref[:2], x_cand[:2], tail_quantiles)  # validates the quantiles

    fpd_max = min(50_000, k)
    fpd_kw: dict[str, Any] = {"max_samples": fpd_max, "min_samples": min(20_000, max(2, int(0.4 * fpd_max)))}
    fpd_kw.update(fpd_options or {})
    kpd_kw: dict[str, Any] = {"batch_size": min(5_000, k)}
    kpd_kw.update(kpd_options or {})

    rng = np.random.default_rng(seed)
    ref_obs = x_ref[rng.permutation(len(x_ref))[:m]]
    cand_obs = x_cand[rng.permutation(len(x_cand))[:k]]

    def resampled(a: FloatArray, b: FloatArray) -> tuple[float, float, float, float, float, FloatArray]:
        f = fpd(a, b, **fpd_kw)
        kp = kpd(a, b, **kpd_kw)
        return f.value, f.error, kp.value, kp.error, correlation_difference(a, b), _w1(a, b)

    observed = resampled(ref_obs, cand_obs)
    null = [
        resampled(x_ref[a], x_ref[b]) for a, b in reference_partitions(len(x_ref), m, k, n_null, seed=rng)
    ]
    null_fpd = np.array([v[0] for v in null])
    null_kpd = np.array([v[2] for v in null])
    null_corr = np.array([v[4] for v in null])
    null_w1 = np.stack([v[5] for v in null])
    t_fpd = NullTest.from_null("fpd", observed[0], null_fpd, error=observed[1])
    t_kpd = NullTest.from_null("kpd", observed[2], null_kpd, error=observed[3])
    t_corr = NullTest.from_null("corr", observed[4], null_corr)
    t_w1 = tuple(NullTest.from_null(f"w1:{n}", observed[5][j], null_w1[:, j]) for j, n in enumerate(names))

    marg = marginal_distances(x_ref, x_cand)
    tails = tail_coverage(x_ref, x_cand, tail_quantiles)
    regions = quantile_regions(x_ref, x_cand)
    c2 = None
    if c2st_classifier is not None:
        c2 = c2st(
            x_ref,
            x_cand_weighted,
            feature_names=names,
            classifier=c2st_classifier,
            seed=seed,
            n_threads=n_threads,
            candidate_weights=s_cand,
        )

    test_names: list[str] = []
    pvalues: list[float] = []
    details: list[str] = []

    def add(name: str, p: float, detail: str) -> None:
        test_names.append(name)
        pvalues.append(p)
        details.append(detail)

    for t, label in ((t_fpd, "FPD"), (t_kpd, "KPD")):
        add(
            t.name,
            t.pvalue,
            f"{label} = {t.observed:.3g} ± {t.error:.2g}, reference-vs-reference {t.null_mean:.3g} ± "
            f"{t.null_std:.2g} ({t.significance:.1f}σ)",
        )
    add(
        "corr",
        t_corr.pvalue,
        f"correlation-matrix difference {t_corr.observed:.3g}, reference-vs-reference "
        f"{t_corr.null_mean:.3g} ± {t_corr.null_std:.2g} ({t_corr.significance:.1f}σ)",
    )
    if c2 is not None:
        top = c2.top_regions(3)
        where = "; surrogate differs most at " + "; ".join(r.describe() for r in top) if top else ""
        add("c2st", c2.pvalue, f"held-out AUC = {c2.auc:.3f} (null 0.5 ± {c2.auc_null_std:.3f}){where}")
    for j, name in enumerate(names):
        region = _region_text(name, regions[j])
        w = t_w1[j]
        add(
            w.name,
            w.pvalue,
            f"W1 = {w.observed:.3g}{_unit(name)} ({marg.w1_scaled[j]:.3g} of the reference std), "
            f"reference-vs-reference {w.null_mean:.3g} ± {w.null_std:.2g} ({w.significance:.1f}σ); "
            f"largest deviation {region}",
        )
        add(
            f"ks:{name}",
            float(marg.ks_pvalue[j]),
            f"KS D = {marg.ks_statistic[j]:.3g}; largest deviation {region}",
        )
    for j, name in enumerate(names):
        for i, q in enumerate(tails.quantiles):
            side = "above" if q > 0.5 else "below"
            add(
                f"tail:{name}:q{q:g}",
                float(tails.pvalue[j, i]),
                f"{100 * tails.candidate_fraction[j, i]:.3g} % of the candidate {side} the reference's {q:g} "
                f"quantile ({tails.thresholds[j, i]:.4g}{_unit(name)}), "
                f"{100 * tails.expected_fraction[i]:.3g} % expected",
            )
    checks = statistical_checks(test_names, pvalues, details, alpha=alpha, correction=correction)
    verdict = Verdict.from_checks([*checks, *extra_checks], alpha=alpha, correction=correction)
    resampled_tests = (t_fpd, t_kpd, t_corr, *t_w1)
    warnings = n_null_warnings(
        n_null, sum(not math.isnan(p) for p in pvalues), resampled_tests, alpha=alpha, correction=correction
    )
    return SurrogateValidation(
        feature_names=names,
        feature_kind=features,
        n_reference=len(x_ref),
        n_candidate=len(x_cand),
        n_compared=(m, k),
        n_null=n_null,
        seed=seed,
        fpd=t_fpd,
        kpd=t_kpd,
        corr=t_corr,
        w1=t_w1,
        marginals=marg,
        tails=tails,
        regions=regions,
        c2st=c2,
        verdict=verdict,
        settings={
            "fpd": fpd_kw,
            "kpd": kpd_kw,
            "tail_quantiles": [float(q) for q in tails.quantiles],
            "c2st_classifier": c2st_classifier,
            "null": "random partitions of the reference into (m, k) rows",
            **(
                {}
                if s_cand is None
                else {"candidate_weights": f"importance resample of {len(x_cand)} rows (Kish n_eff)"}
            ),
        },
        closure=closure,
        amplification=amplification,
        reference_features=x_ref,
        candidate_features=x_cand,
        warnings=warnings,
    )
