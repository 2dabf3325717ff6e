r"""Sanity checks of explanations: can the attributions be trusted?

Three checks, each a number with a stated meaning:

* **Completeness** of Integrated Gradients (Sundararajan et al., arXiv:1703.01365): the
  attributions of a jet must add up to :math:`z(x) - z(b)`. :func:`completeness_error`
  reports :math:`\langle|\sum_i A_i - (z(x) - z(b))|\rangle / \langle|z(x) - z(b)|\rangle`
  over jets (the mean absolute error relative to the mean logit change). The ratio of
  means is used instead of the mean of per-jet ratios because jets whose logit barely
  changes along the path (:math:`z(x) \approx z(b)`) make the per-jet ratio unbounded
  without saying anything about the quadrature; the per-jet median is reported as well.
* **Model randomisation** (Adebayo et al., "Sanity Checks for Saliency Maps",
  arXiv:1810.03292): the Spearman rank correlation of the per-feature mean
  :math:`|A_i|` between the trained model and a copy with re-initialised weights. An
  explanation that hardly changes when the weights are destroyed explains the input, not
  the model: a high correlation is a failure.
* **Stability**: the mean relative change :math:`\|A(x + \delta) - A(x)\| / \|A(x)\|` under a
  Gaussian perturbation :math:`\delta \sim \mathcal N(0, (0.1\sigma)^2)` at the scale of
  the detector resolution: explanations that change a lot under perturbations the
  detector cannot resolve are not physics.

Example:
    >>> import numpy as np
    >>> completeness_error([[1.0, 1.0]], [3.0], [1.0])
    0.0
    >>> interpret_randomization(0.95).startswith("fails")
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from aalearn.core.seeding import numpy_rng
from aalearn.explain.attributions import attribute, randomized_copy

__all__ = [
    "SanityReport",
    "completeness_error",
    "interpret_randomization",
    "randomization_test",
    "rank_correlation",
    "stability",
]

FloatArray = npt.NDArray[np.float64]

#: Rank correlation above which the randomisation test fails (explanation ignores the weights).
FAIL_ABOVE = 0.5
#: Rank correlation below which the randomisation test passes.
PASS_BELOW = 0.3


@dataclass
class SanityReport:
    """The three checks.

    Attributes:
        completeness_error: Relative completeness error of Integrated Gradients (ratio of means).
        completeness_error_median: Median over jets of the per-jet relative error.
        completeness_method: Which attributions the completeness was measured on.
        randomization_rank_correlation: Spearman ρ between trained and randomised model.
        randomization_interpretation: What ρ means.
        stability: Mean relative change of the attributions under a 0.1σ perturbation.
        n_jets: Jets used by the randomisation and stability checks.
    """

    completeness_error: float | None
    completeness_error_median: float | None
    completeness_method: str
    randomization_rank_correlation: float | None
    randomization_interpretation: str
    stability: float | None
    n_jets: int

    def to_dict(self) -> dict[str, Any]:
        """JSON object (``sanity`` of the explanation result)."""
        return {
            "completeness_error": self.completeness_error,
            "completeness_error_median": self.completeness_error_median,
            "completeness_method": self.completeness_method,
            "randomization_rank_correlation": self.randomization_rank_correlation,
            "randomization_interpretation": self.randomization_interpretation,
            "stability": self.stability,
            "n_jets": self.n_jets,
        }


def completeness_error(values: npt.ArrayLike, logits: npt.ArrayLike, baseline_logits: npt.ArrayLike) -> float:
    r"""Relative completeness error :math:`\langle|\sum_i A_i - \Delta z|\rangle / \langle|\Delta z|\rangle`.

    Args:
        values: Attributions ``(N, F)``.
        logits: :math:`z(x)`, ``(N,)``.
        baseline_logits: :math:`z(b)`, ``(N,)``.

    Returns:
        The error (0 = exact completeness); ``nan`` when no jet's logit changes.

    Example:
        >>> completeness_error([[1.0, 0.5]], [2.0], [0.0])
        0.25
    """
    v = np.asarray(values, dtype=np.float64)
    delta = np.asarray(logits, dtype=np.float64) - np.asarray(baseline_logits, dtype=np.float64)
    den = float(np.abs(delta).mean()) if delta.size else 0.0
    if den == 0.0 or not np.isfinite(den):
        return float("nan")
    return float(np.abs(v.sum(axis=1) - delta).mean() / den)


def completeness_error_median(
    values: npt.ArrayLike, logits: npt.ArrayLike, baseline_logits: npt.ArrayLike
) -> float:
    """Median over jets of :math:`|\\sum_i A_i - \\Delta z| / |\\Delta z|` (jets with no change skipped)."""
    v = np.asarray(values, dtype=np.float64)
    delta = np.asarray(logits, dtype=np.float64) - np.asarray(baseline_logits, dtype=np.float64)
    ok = np.abs(delta) > 0
    if not np.any(ok):
        return float("nan")
    return float(np.median(np.abs(v[ok].sum(axis=1) - delta[ok]) / np.abs(delta[ok])))


def rank_correlation(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman rank correlation of two vectors (``nan`` when one is constant).

    Example:
        >>> rank_correlation([1, 2, 3], [10, 20, 40])
        1.0
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx = _ranks(x)
    ry = _ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(x: FloatArray) -> FloatArray:
    """Average ranks (ties share their mean rank), as in Spearman's ρ."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty_like(x)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    out: FloatArray = (sums / counts)[inverse]
    return out


def interpret_randomization(rho: float | None) -> str:
    """One sentence on the randomisation test's rank correlation ``rho``.

    Example:
        >>> interpret_randomization(0.1).startswith("passes")
        True
    """
    if rho is None or not np.isfinite(rho):
        return "not measured (constant attributions)"
    if rho >= FAIL_ABOVE:
        return (
            f"fails: ρ = {rho:.2f} ≥ {FAIL_ABOVE}, the feature ranking survives re-initialising the weights, "
            "so it reflects the input scales more than what the model learned (Adebayo et al. 2018)"
        )
    if rho <= PASS_BELOW:
        return (
            f"passes: ρ = {rho:.2f} ≤ {PASS_BELOW}, the feature ranking changes when the weights are "
            "re-initialised, so it reflects what the model learned"
        )
    return (
        f"inconclusive: ρ = {rho:.2f} between {PASS_BELOW} and {FAIL_ABOVE}, the ranking depends on the "
        "learned weights only in part"
    )


def randomization_test(
    model: nn.Module,
    x: npt.ArrayLike,
    *,
    method: str,
    baseline: str | npt.ArrayLike = "zeros",
    steps: int = 64,
    seed: int = 0,
    reference: npt.ArrayLike | None = None,
) -> tuple[float, str]:
    """Model-randomisation test (Adebayo et al., arXiv:1810.03292).

    Args:
        model: The trained model.
        x: Jets ``(N, F)``.
        method: Attribution method (see :data:`aalearn.explain.attributions.METHODS`).
        baseline: Baseline of the path methods.
        steps: Path points / samples.
        seed: Seed of the re-initialisation and of the sampling.
        reference: Per-feature mean :math:`|A|` of the trained model on ``x`` when
            already computed (saves one attribution pass).

    Returns:
        ``(rho, interpretation)``: Spearman ρ of the per-feature mean :math:`|A|`.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> rho, text = randomization_test(m, x, method="saliency")
        >>> -1.0 <= rho <= 1.0
        True
    """
    if reference is None:
        reference = attribute(model, x, method=method, baseline=baseline, steps=steps, seed=seed).mean_abs()
    random_model = randomized_copy(model, seed=seed + 1)
    rand = attribute(random_model, x, method=method, baseline=baseline, steps=steps, seed=seed).mean_abs()
    rho = rank_correlation(reference, rand)
    return rho, interpret_randomization(rho)


def stability(
    model: nn.Module,
    x: npt.ArrayLike,
    sigma: npt.ArrayLike,
    *,
    method: str,
    baseline: str | npt.ArrayLike = "zeros",
    steps: int = 64,
    seed: int = 0,
    scale: float = 0.1,
    reference: npt.ArrayLike | None = None,
) -> float:
    """Mean relative change of the attributions under a ``scale``·σ Gaussian perturbation.

    Args:
        model: The model.
        x: Jets ``(N, F)``.
        sigma: Per-entry resolution σ, broadcastable to ``x``.
        method: Attribution method.
        baseline: Baseline of the path methods (a ``"mean"`` baseline is fixed from the
            clean jets, so only the jets move).
        steps: Path points / samples.
        seed: Seed of the perturbation.
        scale: Perturbation width in σ (0.1).
        reference: Attributions ``(N, F)`` at ``x`` when already computed.

    Returns:
        Mean over jets of :math:`\\|A(x+\\delta) - A(x)\\|_2 / \\|A(x)\\|_2` (jets with zero
        attribution skipped).

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(3, 1)
        >>> round(stability(lin, np.ones((5, 3)), 0.1, method="saliency"), 6)
        0.0
    """
    arr = np.asarray(x, dtype=np.float64)
    base: str | npt.ArrayLike = (
        arr.mean(axis=0) if isinstance(baseline, str) and baseline == "mean" else baseline
    )
    if reference is None:
        reference = attribute(model, arr, method=method, baseline=base, steps=steps, seed=seed).values
    ref = np.asarray(reference, dtype=np.float64)
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), arr.shape)
    noisy = arr + scale * s * numpy_rng(seed).standard_normal(arr.shape)
    moved = attribute(model, noisy, method=method, baseline=base, steps=steps, seed=seed).values
    norm = np.linalg.norm(ref, axis=1)
    ok = norm > 0
    if not np.any(ok):
        return float("nan")
    return float(np.mean(np.linalg.norm(moved[ok] - ref[ok], axis=1) / norm[ok]))
