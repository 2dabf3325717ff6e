r"""Null distributions from reference-versus-reference resamples, p-values and significances.

A raw distance between a reference sample and a surrogate's sample means nothing
without the value that two samples of the *same* distribution give at the *same*
sample sizes (Kansal et al., arXiv:2211.10295, quote every metric with its
truth-versus-truth value). Protocol (:func:`split_sizes`, :func:`reference_partitions`):

* With :math:`N_\mathrm{ref}` reference and :math:`N_\mathrm{cand}` candidate rows, the
  compared sizes are :math:`k = \min(N_\mathrm{cand}, \lfloor N_\mathrm{ref}/2 \rfloor)`
  candidate rows and :math:`m = N_\mathrm{ref} - k` reference rows (a random subset of
  each when a sample is larger).
* Observed statistic: :math:`T(\text{reference}_m, \text{candidate}_k)`.
* Null: :math:`T(R_a, R_b)` for ``n_null`` random partitions of the *reference* into
  disjoint parts of :math:`m` and :math:`k` rows (resampling without replacement:
  no duplicated rows, which would shrink distances between bootstrap samples).

Each null draw therefore has exactly the sizes of the observed comparison, so the null
is valid for size-dependent statistics (FPD, KPD, W1, correlation differences all
carry a positive bias of order :math:`1/N`). A reference at least twice as large as
the candidate uses the whole candidate; with equal sizes half of each is compared.

p-values (:func:`empirical_pvalue`) are one-sided (large = different):
:math:`p = (1 + \#\{T_\mathrm{null} \ge T\})/(1 + n_\mathrm{null})` (Phipson & Smyth,
Stat. Appl. Genet. Mol. Biol. 9 (2010) 39; never 0). When the observed value lies
beyond the largest null value, that resolution limit :math:`1/(1+n_\mathrm{null})` is
refined (for :math:`n_\mathrm{null} \ge 41`) by an exponential fit to the upper 10 % of
the null (a generalised Pareto tail with shape 0; Knijnenburg et al., Bioinformatics 25
(2009) i161), which is conservative for light-tailed nulls. The significance is the
one-sided Gaussian equivalent :math:`Z = \Phi^{-1}(1-p)`; Kansal et al.'s Gaussian z-score
:math:`(T - \bar T_\mathrm{null})/\sigma_\mathrm{null}` is reported alongside.

Example:
    >>> import numpy as np
    >>> null = np.random.default_rng(0).normal(size=200)
    >>> 0.4 < empirical_pvalue(0.0, null) < 0.6
    True
    >>> empirical_pvalue(10.0, null) < 1 / 201
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from aalearn.core.jsonutil import to_jsonable

__all__ = [
    "MIN_SIGNIFICANCE_P",
    "NullTest",
    "empirical_pvalue",
    "min_attainable_pvalue",
    "null_distribution",
    "pvalue_to_sigma",
    "reference_partitions",
    "split_sizes",
]

FloatArray = npt.NDArray[np.float64]
IntpArray = npt.NDArray[np.intp]

#: Smallest p-value carried (about 37.5σ): keeps significances finite.
MIN_SIGNIFICANCE_P: float = 1e-300
_TAIL_FRACTION = 0.1  # upper share of the null used for the exponential tail
_MIN_TAIL = 5  # fewest null values in that share (n_null >= 41) for a tail fit


def pvalue_to_sigma(p: float) -> float:
    r"""One-sided Gaussian significance :math:`Z = \Phi^{-1}(1 - p)` (negative for :math:`p > 0.5`).

    Args:
        p: p-value in (0, 1]; values below :data:`MIN_SIGNIFICANCE_P` are clipped.

    Returns:
        The significance in units of σ (NaN for a NaN p-value).

    Example:
        >>> round(pvalue_to_sigma(0.0013499), 2)
        3.0
    """
    if math.isnan(p):
        return math.nan
    return float(stats.norm.isf(min(1.0, max(p, MIN_SIGNIFICANCE_P))))


def min_attainable_pvalue(n_null: int, *, tail: str = "exponential") -> float:
    """Smallest p-value :func:`empirical_pvalue` can return with ``n_null`` null values.

    Without a tail refinement (``tail="none"``, or fewer than 41 null values for the
    exponential tail fit, which needs 5 values in the upper 10 %) an observation beyond
    every null value gets :math:`p = 1/(n_\\mathrm{null} + 1)`: however far it lies, no
    smaller p-value is possible. With a tail fit the floor is :data:`MIN_SIGNIFICANCE_P`.

    Example:
        >>> round(min_attainable_pvalue(20), 4), min_attainable_pvalue(100) < 1e-100
        (0.0476, True)
    """
    n = int(n_null)
    if tail == "none" or (tail == "exponential" and math.ceil(_TAIL_FRACTION * n) < _MIN_TAIL):
        return 1.0 / (n + 1.0)
    return MIN_SIGNIFICANCE_P


def empirical_pvalue(observed: float, null: npt.ArrayLike, *, tail: str = "exponential") -> float:
    """One-sided p-value of ``observed`` (large = different) against resampled null values.

    Args:
        observed: The observed statistic.
        null: Null values (at least 2 finite values).
        tail: How to refine p beyond the largest null value: ``"exponential"`` (fit to the
            upper 10 % of the null), ``"gauss"`` (normal tail with the null's mean and
            standard deviation) or ``"none"`` (keep the resolution limit ``1/(1+n)``).

    Returns:
        The p-value in (0, 1].

    Raises:
        ValueError: For fewer than 2 finite null values, a NaN observation or an unknown ``tail``.

    Example:
        >>> empirical_pvalue(3.0, [1.0, 2.0, 3.0, 4.0])
        0.6
    """
    if tail not in ("exponential", "gauss", "none"):
        raise ValueError(f"tail must be 'exponential', 'gauss' or 'none', got {tail!r}")
    t = np.asarray(null, dtype=np.float64).ravel()
    t = t[np.isfinite(t)]
    if t.size < 2:
        raise ValueError(f"the null distribution needs at least 2 finite values, got {t.size}")
    if math.isnan(observed):
        raise ValueError("the observed statistic is NaN")
    n = t.size
    exceed = int(np.count_nonzero(t >= observed))
    p = (1.0 + exceed) / (1.0 + n)
    if exceed > 0 or tail == "none":
        return p
    if tail == "gauss":
        sd = float(t.std(ddof=1))
        if sd == 0:
            return MIN_SIGNIFICANCE_P
        return max(MIN_SIGNIFICANCE_P, min(p, float(stats.norm.sf((observed - t.mean()) / sd))))
    n_tail = math.ceil(_TAIL_FRACTION * n)
    if n_tail < _MIN_TAIL:  # too few null values for a tail fit: keep the resolution limit
        return p
    top = np.sort(t)[-n_tail - 1 :]
    threshold = top[0]
    scale = float(np.mean(top[1:] - threshold))
    if scale <= 0:
        return MIN_SIGNIFICANCE_P
    p_tail = (n_tail / (1.0 + n)) * math.exp(-(observed - threshold) / scale)
    return max(MIN_SIGNIFICANCE_P, min(p, p_tail))


@dataclass(frozen=True)
class NullTest:
    """An observed statistic compared with its reference-versus-reference null.

    Attributes:
        name: Statistic name (``"fpd"``, ``"w1:jet_mass"``, ...).
        observed: The observed value.
        null: The null values.
        pvalue: One-sided p-value (:func:`empirical_pvalue`).
        significance: :math:`\\Phi^{-1}(1-p)` in σ.
        z: Gaussian z-score :math:`(T - \\bar T_\\mathrm{null})/\\sigma_\\mathrm{null}` (Kansal et al.).
        error: The statistic's own error estimate where it has one (FPD, KPD), else NaN.
    """

    name: str
    observed: float
    null: FloatArray
    pvalue: float
    significance: float
    z: float
    error: float = math.nan

    @classmethod
    def from_null(
        cls,
        name: str,
        observed: float,
        null: npt.ArrayLike,
        *,
        error: float = math.nan,
        tail: str = "exponential",
    ) -> NullTest:
        """Compute the p-value, significance and z-score of ``observed``.

        Example:
            >>> t = NullTest.from_null("w1", 5.0, np.arange(10.0))
            >>> round(t.pvalue, 3), round(t.z, 2)
            (0.545, 0.17)
        """
        values = np.asarray(null, dtype=np.float64).ravel()
        p = empirical_pvalue(observed, values, tail=tail)
        finite = values[np.isfinite(values)]
        sd = float(finite.std(ddof=1))
        z = (
            (observed - float(finite.mean())) / sd
            if sd > 0
            else math.copysign(math.inf, observed - finite.mean())
        )
        return cls(name, float(observed), values, p, pvalue_to_sigma(p), float(z), float(error))

    @property
    def null_mean(self) -> float:
        """Mean of the null values."""
        return float(np.nanmean(self.null))

    @property
    def null_std(self) -> float:
        """Standard deviation of the null values (ddof 1)."""
        return float(np.nanstd(self.null, ddof=1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the null values are summarised, not listed).

        Example:
            >>> sorted(NullTest.from_null("x", 1.0, [0.0, 0.5, 2.0]).to_dict())[:3]
            ['error', 'n_null', 'name']
        """
        out: dict[str, Any] = to_jsonable(
            {
                "name": self.name,
                "observed": self.observed,
                "error": self.error,
                "null_mean": self.null_mean,
                "null_std": self.null_std,
                "n_null": int(self.null.size),
                "pvalue": self.pvalue,
                "significance": self.significance,
                "z": self.z,
            }
        )
        return out


def split_sizes(n_reference: int, n_candidate: int, *, min_rows: int = 2) -> tuple[int, int]:
    """Sizes ``(m, k)`` of the compared reference and candidate samples (see the module docstring).

    Args:
        n_reference: Rows of the reference.
        n_candidate: Rows of the candidate.
        min_rows: Smallest accepted ``k``.

    Returns:
        ``m = n_reference - k`` reference rows and ``k = min(n_candidate, n_reference // 2)`` candidate rows.

    Raises:
        ValueError: When ``k < min_rows``.

    Example:
        >>> split_sizes(6000, 6000), split_sizes(10_000, 2000)
        ((3000, 3000), (8000, 2000))
    """
    k = min(int(n_candidate), int(n_reference) // 2)
    if k < min_rows:
        raise ValueError(
            f"too few rows for a reference-versus-reference null: {n_reference} reference and {n_candidate} "
            f"candidate rows give {k} compared rows, at least {min_rows} are needed "
            f"(the reference needs at least {2 * min_rows} rows and the candidate {min_rows})"
        )
    return int(n_reference) - k, k


def reference_partitions(
    n_reference: int, m: int, k: int, n_null: int, *, seed: int | np.random.Generator = 0
) -> Iterator[tuple[IntpArray, IntpArray]]:
    """Yield ``n_null`` random partitions of ``range(n_reference)`` into disjoint parts of ``m`` and ``k``.

    Example:
        >>> a, b = next(reference_partitions(10, 6, 4, 1))
        >>> len(a), len(b), len(set(a) | set(b))
        (6, 4, 10)
    """
    if m + k > n_reference:
        raise ValueError(f"cannot draw disjoint parts of {m} and {k} rows from {n_reference} rows")
    rng = np.random.default_rng(seed)
    for _ in range(int(n_null)):
        perm = rng.permutation(n_reference)
        yield perm[:m], perm[m : m + k]


def null_distribution(
    reference: npt.ArrayLike,
    statistic: Callable[[FloatArray, FloatArray], Any],
    *,
    m: int,
    k: int,
    n_null: int,
    seed: int = 0,
) -> FloatArray:
    """Values of ``statistic(reference_a, reference_b)`` over random partitions of the reference.

    Args:
        reference: ``(N, F)`` reference sample.
        statistic: Function of two samples returning a float or a 1-D array.
        m: Rows of the first part (the compared reference size).
        k: Rows of the second part (the compared candidate size).
        n_null: Number of partitions (at least 2).
        seed: Seed of the partitions.

    Returns:
        ``(n_null,)`` or ``(n_null, ...)`` null values.

    Raises:
        ValueError: For ``n_null < 2`` or parts larger than the reference.

    Example:
        >>> ref = np.random.default_rng(0).normal(size=(400, 2))
        >>> null_distribution(ref, lambda a, b: abs(a.mean() - b.mean()), m=200, k=200, n_null=5).shape
        (5,)
    """
    x = np.asarray(reference, dtype=np.float64)
    if isinstance(n_null, bool) or not isinstance(n_null, int | np.integer) or n_null < 2:
        raise ValueError(f"n_null must be an integer >= 2, got {n_null!r}")
    values = [
        np.asarray(statistic(x[a], x[b]), dtype=np.float64)
        for a, b in reference_partitions(len(x), m, k, int(n_null), seed=seed)
    ]
    out: FloatArray = np.stack(values)
    return out
