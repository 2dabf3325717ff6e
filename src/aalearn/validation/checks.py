r"""Compare an alternative sample with the nominal one, feature by feature.

This is the check an analysis reviewer runs before accepting an alternative sample
(for example adversarially perturbed jets, or a new generator tune) as "compatible
with the nominal one within uncertainties": the marginal distribution of every
feature and the linear correlations between features must agree.

Per feature (vectorised over all features):

* **KS** -- two-sample Kolmogorov-Smirnov test (:func:`scipy.stats.ks_2samp`);
* **χ²** -- χ² test of two histograms with unequal totals :math:`N_1, N_2`, as ROOT's
  ``TH1::Chi2Test("UU")``:
  :math:`\chi^2 = \sum_i (n_{1i} N_2 - n_{2i} N_1)^2 / (N_1 N_2 (n_{1i} + n_{2i}))`
  over the non-empty bins, ``ndf`` = non-empty bins − 1;
* **JSD** -- Jensen-Shannon *distance* (base 2, in [0, 1]) of the two histograms
  (:func:`scipy.spatial.distance.jensenshannon`).

Histograms have ``bins`` equal-width bins over the reference's [min, max] plus an
underflow and an overflow bin, so candidate values outside the reference range count.

Across features:

* **correlation** -- relative Frobenius change of the Pearson correlation matrices,
  :math:`\lVert C_\mathrm{cand} - C_\mathrm{ref} \rVert_F / \lVert C_\mathrm{ref} \rVert_F`,
  and a Fisher-z test of every coefficient,
  :math:`z = |\operatorname{atanh} r_1 - \operatorname{atanh} r_2| / \sqrt{1/(N_1-3) + 1/(N_2-3)}`.

The KS, χ² and Fisher-z p-values are corrected for the number of tests (features, or
feature pairs) with Holm's method (family-wise error rate, the default),
Benjamini-Yekutieli (false-discovery rate under any dependence) or not at all.

This JSD/correlation-type validation of adversarial jets against the nominal ones
follows CONSERVAttack (arXiv:2603.13970).

Assumptions and caveats:

* All tests assume two **independent** samples. Adversarial jets are perturbations of
  the clean jets they came from (paired samples, strongly positively dependent); the
  tests then overestimate the statistical spread of the difference, so their
  p-values are too large: the checks are conservative (less sensitive) and only
  approximate for paired samples.
* **Finite statistics.** JSD and the Frobenius change are distances, not tests: even two
  samples from the same distribution give a positive value. Each report carries the
  value expected from statistical noise alone (``jsd_noise``, ``rel_frobenius_noise``;
  large-sample approximations). With 50 bins, two samples of 4000 rows from one
  distribution give a JSD of about 0.068. By default (``noise_aware=True``) the
  tolerances ``max_jsd`` and ``max_rel_corr_change`` therefore apply to the excess
  over that noise value; ``noise_aware=False`` compares the raw values.
* **Constant features.** A feature with zero variance and the same value in both
  samples (for example the η and φ of the leading constituent after preprocessing)
  gets KS p = 1, χ² p = 1, JSD = 0 and is left out of the multiple-testing family.
  Features that are constant in either sample are left out of the correlation check
  (their correlation coefficients are undefined); a constant feature whose value or
  spread differs between the samples still fails the marginal checks.

Example:
    >>> import numpy as np
    >>> from aalearn.validation import ValidationConfig, validate_samples
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(3000, 3))
    >>> candidate = rng.normal(size=(3000, 3))
    >>> candidate[:, 1] += 0.5  # shift feature "b" by half a standard deviation
    >>> report = validate_samples(reference, candidate, feature_names=["a", "b", "c"],
    ...                           config=ValidationConfig(bins=20))
    >>> report.passed
    False
    >>> [f.name for f in report.features if not f.passed]
    ['b']
    >>> report.features[1].failed_checks
    ['ks', 'chi2', 'jsd']
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.spatial.distance import jensenshannon

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.validation import check_array

__all__ = [
    "CORRECTIONS",
    "KNOWN_CHECKS",
    "CorrelationCheck",
    "FeatureCheck",
    "ValidationConfig",
    "ValidationReport",
    "adjust_pvalues",
    "chi2_unequal_totals",
    "correlation_matrix",
    "histogram_jsd",
    "validate_samples",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Names accepted in :attr:`ValidationConfig.checks`.
KNOWN_CHECKS: tuple[str, ...] = ("ks", "chi2", "jsd", "corr")
#: Names accepted in :attr:`ValidationConfig.correction`.
CORRECTIONS: tuple[str, ...] = ("holm", "by", "none")

_FISHER_CLIP = 1.0 - 1e-12


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds and options of :func:`validate_samples`.

    Attributes:
        bins: Equal-width bins over the reference's [min, max] per feature (plus an
            underflow and an overflow bin) for the χ² test and the JSD.
        ks_alpha: Significance level of the per-feature KS test (corrected p-values).
        chi2_alpha: Significance level of the per-feature χ² test (corrected p-values).
        correction: Multiple-testing correction across features and across feature
            pairs: ``"holm"``, ``"by"`` (Benjamini-Yekutieli) or ``"none"``.
        max_jsd: Largest accepted Jensen-Shannon distance (base 2) per feature, in
            excess of the value expected from statistics alone when ``noise_aware``.
        max_rel_corr_change: Largest accepted relative Frobenius change of the Pearson
            correlation matrix, in excess of its statistical noise when ``noise_aware``.
        noise_aware: Compare the JSD and the Frobenius change with their tolerance
            *plus* the value expected from finite statistics alone (two samples of a few
            thousand jets from one distribution already give JSD ≈ 0.06 with 50 bins and
            a relative Frobenius change ≈ 0.19 over 87 weakly correlated features).
        corr_alpha: Significance level of the per-pair Fisher-z test (corrected).
        checks: The checks that decide pass/fail, a subset of :data:`KNOWN_CHECKS`;
            the others are still computed and reported. An empty tuple computes
            everything and never fails.
        per_class: Also validate each class separately (needs labels for both samples);
            the overall result then requires every class to pass.

    Raises:
        ValueError: For values out of range, an unknown correction or check name.
    """

    bins: int = 50
    ks_alpha: float = 0.01
    chi2_alpha: float = 0.01
    correction: str = "holm"
    max_jsd: float = 0.02
    max_rel_corr_change: float = 0.05
    corr_alpha: float = 0.01
    checks: tuple[str, ...] = ("ks", "chi2", "jsd", "corr")
    per_class: bool = False
    noise_aware: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, (int, np.integer)) or self.bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {self.bins!r}")
        object.__setattr__(self, "bins", int(self.bins))
        for name in ("ks_alpha", "chi2_alpha", "corr_alpha"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < float(value) < 1.0:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("max_jsd", "max_rel_corr_change"):
            value = getattr(self, name)
            if not _is_real(value) or math.isnan(float(value)) or float(value) < 0.0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"correction must be one of {', '.join(map(repr, CORRECTIONS))}, got {self.correction!r}"
            )
        if isinstance(self.checks, str):
            raise ValueError(
                f"checks must be a tuple of check names such as ('ks', 'jsd'), got the string {self.checks!r}"
            )
        checks = tuple(dict.fromkeys(self.checks))  # keeps order, drops duplicates
        unknown = [c for c in checks if c not in KNOWN_CHECKS]
        if unknown:
            raise ValueError(
                f"unknown check name(s) {', '.join(map(repr, unknown))}; "
                f"known checks: {', '.join(map(repr, KNOWN_CHECKS))}"
            )
        object.__setattr__(self, "checks", checks)
        object.__setattr__(self, "per_class", bool(self.per_class))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- results
@dataclass
class FeatureCheck:
    """The marginal checks of one feature.

    Attributes:
        name: Feature name.
        ks_statistic: KS statistic D (largest distance of the two empirical CDFs).
        ks_pvalue: KS p-value.
        ks_pvalue_corrected: KS p-value after the multiple-testing correction.
        chi2: χ² of the two histograms (unequal totals).
        ndf: Degrees of freedom (non-empty bins − 1).
        chi2_pvalue: χ² p-value.
        chi2_pvalue_corrected: χ² p-value after the multiple-testing correction.
        jsd: Jensen-Shannon distance (base 2) of the two histograms.
        passed: Whether every marginal check named in the configuration passed.
        failed_checks: The configured checks that failed (``"ks"``, ``"chi2"``, ``"jsd"``).
        jsd_noise: JSD expected from finite statistics alone if both samples came from
            the same distribution (large-sample approximation).
    """

    name: str
    ks_statistic: float
    ks_pvalue: float
    ks_pvalue_corrected: float
    chi2: float
    ndf: int
    chi2_pvalue: float
    chi2_pvalue_corrected: float
    jsd: float
    passed: bool
    failed_checks: list[str]
    jsd_noise: float = math.nan


@dataclass
class CorrelationCheck:
    """The check of the Pearson correlation matrix.

    Attributes:
        rel_frobenius: ``||C_cand - C_ref||_F / ||C_ref||_F`` over the non-constant features.
        max_abs_change: Largest ``|r_cand - r_ref|`` over the feature pairs.
        n_significant: Pairs whose corrected Fisher-z p-value is below ``corr_alpha``.
        n_pairs: Number of feature pairs tested.
        passed: ``rel_frobenius <= max_rel_corr_change`` and no significant pair.
        rel_frobenius_noise: Relative Frobenius change expected from finite statistics
            alone (Gaussian large-sample approximation).
        excluded: Features left out because they are constant in either sample.
    """

    rel_frobenius: float
    max_abs_change: float
    n_significant: int
    n_pairs: int
    passed: bool
    rel_frobenius_noise: float = math.nan
    excluded: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Result of :func:`validate_samples`.

    Attributes:
        features: One :class:`FeatureCheck` per feature, in input order.
        correlation: The correlation check.
        passed: Every configured check passed (for every class too, when per class).
        failures: Human-readable reasons for each failed check; per-class failures are
            included with a ``"class k: "`` prefix.
        n_reference: Rows of the reference sample.
        n_candidate: Rows of the candidate sample.
        config: The configuration used.
        per_class: Class label → report of that class (empty unless ``config.per_class``).
    """

    features: list[FeatureCheck]
    correlation: CorrelationCheck
    passed: bool
    failures: list[str]
    n_reference: int
    n_candidate: int
    config: ValidationConfig
    per_class: dict[int, ValidationReport] = field(default_factory=dict)

    @property
    def max_jsd(self) -> float:
        """Largest per-feature Jensen-Shannon distance."""
        return max((f.jsd for f in self.features), default=0.0)

    @property
    def feature_names(self) -> list[str]:
        """Feature names in input order."""
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureCheck:
        """The check of the feature called ``name``.

        Raises:
            KeyError: For an unknown name (with suggestions).
        """
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in the report{_did_you_mean(name, self.feature_names)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain floats, ints, strings, bools and lists).

        Non-finite floats become ``None``; per-class keys are strings.
        """
        out = {
            "passed": bool(self.passed),
            "n_reference": int(self.n_reference),
            "n_candidate": int(self.n_candidate),
            "max_jsd": float(self.max_jsd),
            "failures": list(self.failures),
            "config": dataclasses.asdict(self.config),
            "features": [dataclasses.asdict(f) for f in self.features],
            "correlation": dataclasses.asdict(self.correlation),
            "per_class": {str(k): v.to_dict() for k, v in self.per_class.items()},
        }
        result: dict[str, Any] = to_jsonable(out)
        return result

    def table(self, top: int | None = None) -> list[dict[str, Any]]:
        """Rows for a terminal or HTML table, worst features (largest JSD) first.

        Args:
            top: Keep only this many rows (``None``: all).

        Returns:
            One dict per feature with the keys ``feature``, ``jsd``, ``ks_statistic``,
            ``ks_p_corrected``, ``chi2/ndf``, ``chi2_p_corrected`` and ``status``
            (``"ok"`` or ``"FAIL: ks, jsd"``).

        Raises:
            ValueError: For a negative ``top``.
        """
        if top is not None and top < 0:
            raise ValueError(f"top must be non-negative or None, got {top}")
        order = sorted(range(len(self.features)), key=lambda i: -self.features[i].jsd)
        if top is not None:
            order = order[:top]
        rows = []
        for i in order:
            f = self.features[i]
            rows.append(
                {
                    "feature": f.name,
                    "jsd": f.jsd,
                    "ks_statistic": f.ks_statistic,
                    "ks_p_corrected": f.ks_pvalue_corrected,
                    "chi2/ndf": f"{f.chi2:.1f}/{f.ndf}",
                    "chi2_p_corrected": f.chi2_pvalue_corrected,
                    "status": "ok" if f.passed else "FAIL: " + ", ".join(f.failed_checks),
                }
            )
        return rows


# --------------------------------------------------------------------------- statistics
def adjust_pvalues(pvalues: npt.ArrayLike, method: str = "holm") -> FloatArray:
    """Correct p-values for multiple testing.

    NaN entries (tests that could not be run) stay NaN and do not count as tests.

    Args:
        pvalues: 1-D p-values in [0, 1].
        method: ``"holm"`` (Holm-Bonferroni step-down, controls the family-wise error
            rate), ``"by"`` (Benjamini-Yekutieli, controls the false-discovery rate under
            arbitrary dependence) or ``"none"``.

    Returns:
        Adjusted p-values, same shape, each at least the raw value and at most 1.

    Raises:
        ValueError: For an unknown method, non-1-D input or values outside [0, 1].

    Example:
        >>> adjust_pvalues([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
        [0.03, 0.06, 0.06, 0.02]
    """
    if method not in CORRECTIONS:
        raise ValueError(f"method must be one of {', '.join(map(repr, CORRECTIONS))}, got {method!r}")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("pvalues must lie in [0, 1]")
    out = p.copy()
    m = int(ok.sum())
    if method == "none" or m == 0:
        return out
    q = p[ok]
    if method == "by":
        adjusted = np.asarray(stats.false_discovery_control(q, method="by"), dtype=np.float64)
    else:
        # scipy has no Holm correction (false_discovery_control only does BH/BY), and
        # statsmodels is not a dependency, so: step-down Holm-Bonferroni, written out.
        order = np.argsort(q, kind="stable")
        scaled = (m - np.arange(m)) * q[order]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out[ok] = np.clip(adjusted, q, 1.0)
    return out


def chi2_unequal_totals(
    counts_reference: npt.ArrayLike, counts_candidate: npt.ArrayLike
) -> tuple[FloatArray, IntArray, FloatArray]:
    r"""χ² test of two histograms with unequal totals (ROOT ``Chi2Test("UU")``).

    :math:`\chi^2 = \sum_i (n_{1i} N_2 - n_{2i} N_1)^2 / (N_1 N_2 (n_{1i} + n_{2i}))` over
    the bins that are non-empty in at least one histogram, with ``ndf`` = non-empty
    bins − 1 and ``p = chi2.sf(chi2, ndf)``. With a single non-empty bin (``ndf = 0``)
    the histograms agree: χ² = 0 and p = 1.

    Args:
        counts_reference: Bin counts, shape ``(B,)`` or ``(..., B)`` (bins last).
        counts_candidate: Bin counts of the same shape.

    Returns:
        ``(chi2, ndf, pvalue)``, each of the leading shape (scalars as 0-d arrays).

    Raises:
        ValueError: For mismatched shapes, negative counts or an empty histogram.

    Example:
        >>> chi2, ndf, p = chi2_unequal_totals([10, 20, 30], [5, 15, 10])
        >>> round(float(chi2), 3), int(ndf), round(float(p), 3)
        (2.679, 2, 0.262)
    """
    n1 = np.asarray(counts_reference, dtype=np.float64)
    n2 = np.asarray(counts_candidate, dtype=np.float64)
    if n1.shape != n2.shape or n1.ndim == 0:
        raise ValueError(f"histograms must have the same non-scalar shape, got {n1.shape} and {n2.shape}")
    if np.any(n1 < 0) or np.any(n2 < 0):
        raise ValueError("bin counts must be non-negative")
    big_n1 = n1.sum(axis=-1, keepdims=True)
    big_n2 = n2.sum(axis=-1, keepdims=True)
    if np.any(big_n1 <= 0) or np.any(big_n2 <= 0):
        raise ValueError("both histograms need at least one entry")
    total = n1 + n2
    nonempty = total > 0
    terms = np.divide(
        (n1 * big_n2 - n2 * big_n1) ** 2,
        big_n1 * big_n2 * total,
        out=np.zeros_like(total),
        where=nonempty,
    )
    chi2 = terms.sum(axis=-1)
    ndf = nonempty.sum(axis=-1).astype(np.int64) - 1
    pvalue = np.where(ndf > 0, stats.chi2.sf(chi2, np.maximum(ndf, 1)), 1.0)
    chi2 = np.where(ndf > 0, chi2, 0.0)
    return chi2, ndf, np.asarray(pvalue, dtype=np.float64)


def histogram_jsd(counts_reference: npt.ArrayLike, counts_candidate: npt.ArrayLike) -> FloatArray:
    """Jensen-Shannon distance (base 2, in [0, 1]) of histograms, bins on the last axis.

    Each histogram is normalised to unit sum first. Identical shapes give 0, histograms
    without a common non-empty bin give 1.

    Args:
        counts_reference: Bin counts, shape ``(B,)`` or ``(..., B)``.
        counts_candidate: Bin counts of the same shape.

    Returns:
        The distance per histogram pair (0-d array for 1-D input).

    Raises:
        ValueError: For mismatched shapes, negative counts or an empty histogram.

    Example:
        >>> float(histogram_jsd([1, 0], [0, 3]))
        1.0
    """
    n1 = np.asarray(counts_reference, dtype=np.float64)
    n2 = np.asarray(counts_candidate, dtype=np.float64)
    if n1.shape != n2.shape or n1.ndim == 0:
        raise ValueError(f"histograms must have the same non-scalar shape, got {n1.shape} and {n2.shape}")
    if np.any(n1 < 0) or np.any(n2 < 0):
        raise ValueError("bin counts must be non-negative")
    if np.any(n1.sum(axis=-1) <= 0) or np.any(n2.sum(axis=-1) <= 0):
        raise ValueError("both histograms need at least one entry")
    d = np.asarray(jensenshannon(n1, n2, base=2, axis=-1), dtype=np.float64)
    # Round-off can leave tiny negatives under the square root (NaN) or values just above 1.
    return np.clip(np.nan_to_num(d, nan=0.0), 0.0, 1.0)


def correlation_matrix(x: npt.ArrayLike) -> FloatArray:
    """Pearson correlation matrix of the columns; NaN rows/columns for constant features.

    Args:
        x: ``(N, F)`` samples, ``N >= 2``.

    Returns:
        ``(F, F)`` matrix with 1 on the diagonal of the non-constant features.

    Example:
        >>> correlation_matrix([[0.0, 1.0, 5.0], [1.0, 3.0, 5.0]]).round(6).tolist()
        [[1.0, 1.0, nan], [1.0, 1.0, nan], [nan, nan, nan]]
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"x must have shape (N, F) with N >= 2, got {arr.shape}")
    centred = arr - arr.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    variable = norms > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = centred / np.where(variable, norms, 1.0)
    c = np.clip(z.T @ z, -1.0, 1.0)
    c[~variable, :] = np.nan
    c[:, ~variable] = np.nan
    idx = np.flatnonzero(variable)
    c[idx, idx] = 1.0
    result: FloatArray = c
    return result


# --------------------------------------------------------------------------- internals
def _histograms(reference: FloatArray, candidate: FloatArray, bins: int) -> tuple[IntArray, IntArray]:
    """``(F, bins + 2)`` counts per feature: underflow, ``bins`` regular bins, overflow.

    The regular bins span the reference's [min, max] per feature; a constant reference
    feature gets the range value ± 0.5 · max(1, |value|).
    """
    lo = reference.min(axis=0)
    hi = reference.max(axis=0)
    flat = hi <= lo
    half = 0.5 * np.maximum(1.0, np.abs(lo))
    lo = np.where(flat, lo - half, lo)
    hi = np.where(flat, hi + half, hi)
    width = (hi - lo) / bins
    n_features = reference.shape[1]
    offsets = np.arange(n_features, dtype=np.int64) * (bins + 2)

    def count(x: FloatArray) -> IntArray:
        k = np.floor((x - lo) / width).astype(np.int64)
        idx = np.clip(k, 0, bins - 1) + 1  # the maximum itself goes into the last regular bin
        idx = np.where(x < lo, 0, np.where(x > hi, bins + 1, idx))
        flat_counts = np.bincount((idx + offsets).ravel(), minlength=n_features * (bins + 2))
        return flat_counts.reshape(n_features, bins + 2).astype(np.int64)

    return count(reference), count(candidate)


def _jsd_noise(nonempty_bins: IntArray, n1: int, n2: int) -> FloatArray:
    """JSD expected from statistical noise alone (small-deviation expansion).

    For two multinomial samples of one distribution the JS divergence is about
    ``(K - 1) (1/N1 + 1/N2) / 8`` nats for K populated bins.
    """
    k = np.maximum(nonempty_bins - 1, 0).astype(np.float64)
    out: FloatArray = np.sqrt(k * (1.0 / n1 + 1.0 / n2) / (8.0 * math.log(2.0)))
    return out


def _label(config: ValidationConfig) -> str:
    return "uncorrected" if config.correction == "none" else config.correction


def _correlation_check(
    reference: FloatArray,
    candidate: FloatArray,
    names: Sequence[str],
    config: ValidationConfig,
) -> tuple[CorrelationCheck, list[str]]:
    c_ref = correlation_matrix(reference)
    c_cand = correlation_matrix(candidate)
    keep = np.isfinite(np.diag(c_ref)) & np.isfinite(np.diag(c_cand))
    excluded = [n for n, k in zip(names, keep, strict=True) if not k]
    idx = np.flatnonzero(keep)
    k = idx.size
    n1, n2 = reference.shape[0], candidate.shape[0]
    if k < 2:
        check = CorrelationCheck(0.0, 0.0, 0, 0, True, 0.0, excluded)
        return check, []
    a = c_ref[np.ix_(idx, idx)]
    b = c_cand[np.ix_(idx, idx)]
    diff = b - a
    norm_ref = float(np.linalg.norm(a))
    rel = float(np.linalg.norm(diff)) / norm_ref
    iu = np.triu_indices(k, 1)
    r1, r2 = a[iu], b[iu]
    abs_change = np.abs(r2 - r1)
    worst = int(np.argmax(abs_change))
    max_abs = float(abs_change[worst])
    # Var(r) ≈ (1 - ρ²)² / N for Gaussian data; ρ estimated from both samples.
    rho = 0.5 * (r1 + r2)
    noise = math.sqrt(2.0 * float(np.sum((1.0 - rho**2) ** 2)) * (1.0 / n1 + 1.0 / n2)) / norm_ref
    if n1 > 3 and n2 > 3:
        z1 = np.arctanh(np.clip(r1, -_FISHER_CLIP, _FISHER_CLIP))
        z2 = np.arctanh(np.clip(r2, -_FISHER_CLIP, _FISHER_CLIP))
        z = np.abs(z1 - z2) / math.sqrt(1.0 / (n1 - 3) + 1.0 / (n2 - 3))
        p_corr = adjust_pvalues(2.0 * stats.norm.sf(z), config.correction)
        n_sig = int(np.sum(p_corr < config.corr_alpha))
    else:  # the Fisher-z test needs at least 4 rows per sample
        n_sig = 0
    rel_limit = config.max_rel_corr_change + (noise if config.noise_aware else 0.0)
    passed = rel <= rel_limit and n_sig == 0
    check = CorrelationCheck(rel, max_abs, n_sig, int(iu[0].size), passed, noise, excluded)
    reasons: list[str] = []
    if rel > rel_limit:
        reasons.append(
            f"correlation: ||C_cand - C_ref||_F / ||C_ref||_F = {rel:.3g} > {rel_limit:.3g} "
            f"(statistical noise alone ≈ {noise:.2g})"
        )
    if n_sig:
        pair = (names[idx[iu[0][worst]]], names[idx[iu[1][worst]]])
        reasons.append(
            f"correlation: {n_sig} of {check.n_pairs} pair(s) differ (Fisher z, p < {config.corr_alpha:g} "
            f"({_label(config)})); largest |Δr| = {max_abs:.3g} for ({pair[0]}, {pair[1]})"
        )
    return check, reasons


def _validate(
    reference: FloatArray,
    candidate: FloatArray,
    names: Sequence[str],
    config: ValidationConfig,
) -> ValidationReport:
    n1, n2 = reference.shape[0], candidate.shape[0]
    trivial = (
        (reference.min(axis=0) == reference.max(axis=0))
        & (candidate.min(axis=0) == candidate.max(axis=0))
        & (reference[0] == candidate[0])
    )
    active = ~trivial

    ks_stat = np.zeros(len(names))
    ks_p = np.ones(len(names))
    if active.any():
        with warnings.catch_warnings():
            # scipy falls back to the asymptotic p-value for large samples and says so; expected here
            warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
            ks = stats.ks_2samp(reference[:, active], candidate[:, active], axis=0)
        ks_stat[active] = ks.statistic
        ks_p[active] = ks.pvalue

    h1, h2 = _histograms(reference, candidate, config.bins)
    chi2, ndf, chi2_p = chi2_unequal_totals(h1, h2)
    jsd = histogram_jsd(h1, h2)
    jsd_noise = _jsd_noise(((h1 + h2) > 0).sum(axis=1), n1, n2)
    chi2[trivial], chi2_p[trivial], jsd[trivial], ndf[trivial] = 0.0, 1.0, 0.0, 0

    def corrected(p: FloatArray) -> FloatArray:
        out = np.ones_like(p)
        out[active] = adjust_pvalues(p[active], config.correction)
        return out

    ks_pc = corrected(ks_p)
    chi2_pc = corrected(chi2_p)
    label = _label(config)

    features: list[FeatureCheck] = []
    failures: list[str] = []
    for i, name in enumerate(names):
        failed: list[str] = []
        if "ks" in config.checks and ks_pc[i] < config.ks_alpha:
            failed.append("ks")
            failures.append(
                f"{name}: KS p={ks_pc[i]:.2g} < {config.ks_alpha:g} ({label}), D={ks_stat[i]:.3g}"
            )
        if "chi2" in config.checks and chi2_pc[i] < config.chi2_alpha:
            failed.append("chi2")
            failures.append(
                f"{name}: chi2/ndf={chi2[i]:.1f}/{ndf[i]}, "
                f"p={chi2_pc[i]:.2g} < {config.chi2_alpha:g} ({label})"
            )
        jsd_limit = config.max_jsd + (float(jsd_noise[i]) if config.noise_aware else 0.0)
        if "jsd" in config.checks and jsd[i] > jsd_limit:
            failed.append("jsd")
            failures.append(
                f"{name}: JSD={jsd[i]:.3g} > {jsd_limit:.3g} (statistical noise alone ≈ {jsd_noise[i]:.2g})"
            )
        features.append(
            FeatureCheck(
                name=str(name),
                ks_statistic=float(ks_stat[i]),
                ks_pvalue=float(ks_p[i]),
                ks_pvalue_corrected=float(ks_pc[i]),
                chi2=float(chi2[i]),
                ndf=int(ndf[i]),
                chi2_pvalue=float(chi2_p[i]),
                chi2_pvalue_corrected=float(chi2_pc[i]),
                jsd=float(jsd[i]),
                passed=not failed,
                failed_checks=failed,
                jsd_noise=float(jsd_noise[i]),
            )
        )

    correlation, corr_reasons = _correlation_check(reference, candidate, names, config)
    if "corr" in config.checks:
        failures.extend(corr_reasons)
    passed = all(f.passed for f in features) and ("corr" not in config.checks or correlation.passed)
    return ValidationReport(
        features=features,
        correlation=correlation,
        passed=passed,
        failures=failures,
        n_reference=int(n1),
        n_candidate=int(n2),
        config=config,
    )


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    by_lower = {c.lower(): c for c in reversed(list(choices))}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3)]
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def _check_sample(x: Any, *, name: str) -> FloatArray:
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    out: FloatArray = check_array(arr, name=name, ndim=2, dtype=np.float64)
    if out.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows, got shape {out.shape}")
    if out.shape[1] < 1:
        raise ValueError(f"{name} needs at least one feature column, got shape {out.shape}")
    return out


def _check_inputs(
    reference: Any, candidate: Any, feature_names: Sequence[str] | None
) -> tuple[FloatArray, FloatArray, list[str]]:
    """Validated ``(reference, candidate, names)`` shared by the checks and the plots."""
    ref = _check_sample(reference, name="reference")
    cand = _check_sample(candidate, name="candidate")
    n_features = ref.shape[1]
    if cand.shape[1] != n_features:
        raise ValueError(
            f"reference has {n_features} features but candidate has {cand.shape[1]}; "
            "both samples need the same columns in the same order"
        )
    if feature_names is None:
        return ref, cand, [f"feature_{i}" for i in range(n_features)]
    if isinstance(feature_names, str):
        raise ValueError("feature_names must be a sequence of names, not a single string")
    names = [str(n) for n in feature_names]
    if len(names) != n_features:
        raise ValueError(f"feature_names has {len(names)} names but the samples have {n_features} features")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"feature_names must be unique; repeated: {', '.join(dupes[:10])}")
    return ref, cand, names


def _check_class_labels(y: Any, *, name: str, n: int) -> IntArray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but the sample has {n} rows")
    if np.issubdtype(arr.dtype, np.bool_):
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN/inf value(s)")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels, found non-integer values")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------- public entry
def validate_samples(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    feature_names: Sequence[str] | None = None,
    labels_reference: npt.ArrayLike | None = None,
    labels_candidate: npt.ArrayLike | None = None,
    config: ValidationConfig | None = None,
) -> ValidationReport:
    """Check that ``candidate`` agrees with ``reference``, feature by feature.

    Runs the KS, χ² and JSD checks on every feature's marginal distribution and the
    correlation check on the Pearson correlation matrix (see the module documentation
    for the definitions, the corrections and the caveats).

    Args:
        reference: ``(N, F)`` nominal sample, ``N >= 2``.
        candidate: ``(M, F)`` alternative sample, ``M >= 2``.
        feature_names: ``F`` names (default ``feature_0`` ... ``feature_{F-1}``).
        labels_reference: ``(N,)`` integer class labels of the reference; used when
            ``config.per_class`` is set.
        labels_candidate: ``(M,)`` integer class labels of the candidate.
        config: Thresholds and options (default :class:`ValidationConfig()`).

    Returns:
        The report; ``report.passed`` is the overall verdict and ``report.failures``
        says why it failed.

    Raises:
        TypeError: For non-numeric samples or labels.
        ValueError: For wrong dimensions, mismatched feature counts, fewer than two
            rows, NaN/inf values, feature names of the wrong length, missing labels
            with ``per_class`` or a class with fewer than two rows in either sample.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> x = rng.normal(size=(1000, 2))
        >>> validate_samples(x, x.copy()).passed
        True
    """
    if config is None:
        config = ValidationConfig()
    elif not isinstance(config, ValidationConfig):
        raise TypeError(f"config must be a ValidationConfig, got {type(config).__name__}")
    ref, cand, names = _check_inputs(reference, candidate, feature_names)

    y_ref = (
        None
        if labels_reference is None
        else _check_class_labels(labels_reference, name="labels_reference", n=ref.shape[0])
    )
    y_cand = (
        None
        if labels_candidate is None
        else _check_class_labels(labels_candidate, name="labels_candidate", n=cand.shape[0])
    )

    report = _validate(ref, cand, names, config)
    if not config.per_class:
        return report
    if y_ref is None or y_cand is None:
        missing = [n for n, y in (("labels_reference", y_ref), ("labels_candidate", y_cand)) if y is None]
        raise ValueError(f"config.per_class needs labels for both samples; missing {', '.join(missing)}")
    inner = dataclasses.replace(config, per_class=False)
    for cls in np.union1d(np.unique(y_ref), np.unique(y_cand)).tolist():
        m_ref, m_cand = y_ref == cls, y_cand == cls
        if m_ref.sum() < 2 or m_cand.sum() < 2:
            raise ValueError(
                f"class {cls} has {int(m_ref.sum())} reference and {int(m_cand.sum())} candidate rows; "
                "per-class validation needs at least 2 in each"
            )
        sub = _validate(ref[m_ref], cand[m_cand], names, inner)
        report.per_class[int(cls)] = sub
        report.failures.extend(f"class {cls}: {reason}" for reason in sub.failures)
    report.passed = report.passed and all(r.passed for r in report.per_class.values())
    return report
