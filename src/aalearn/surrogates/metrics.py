r"""Distances between a reference sample and a surrogate's sample (Kansal et al., arXiv:2211.10295).

* :func:`fpd` -- **Fréchet physics distance**: the Fréchet (FID) distance of Gaussians
  fitted to the two feature samples,
  :math:`\lVert\mu_r-\mu_g\rVert^2 + \operatorname{Tr}(\Sigma_r+\Sigma_g-2(\Sigma_r\Sigma_g)^{1/2})`,
  measured at ``num_points`` batch sizes regular in :math:`1/N` between ``min_samples``
  and ``max_samples`` (``num_batches`` resamples with replacement each), averaged per
  batch size and extrapolated linearly in :math:`1/N` to :math:`N\to\infty`
  (Chong & Forsyth, arXiv:1911.07023): the value is the intercept, the error its
  standard error from the fit (:func:`scipy.optimize.curve_fit`, non-negative intercept and slope).
* :func:`kpd` -- **kernel physics distance**: the unbiased estimator of the squared
  maximum mean discrepancy (Gretton et al., JMLR 13 (2012) 723) with the polynomial
  kernel :math:`k(x, y) = (x^\top y / d + 1)^4`, on ``num_batches`` batches of
  ``batch_size`` drawn with replacement; the value is the median over batches and the
  error half the 16.275-83.725 % inter-quantile range.

Both reproduce jetnet 0.2.5's ``jetnet.evaluation.fpd`` and ``kpd`` (MIT licence; same
defaults, same random streams: one :func:`numpy.random.default_rng` seeded with ``seed``
for FPD, ``seed + 1000 i`` for KPD batch ``i``; same per-feature normalisation by the
largest :math:`|x|` of the *real* sample) to 1e-6 relative; ``aalearn reproduce
jetnet-metrics`` checks it. They are re-implemented (not imported) because jetnet pulls
in torch, numba, coffea and energyflow, and because the computation can be batched:

* FPD: every bootstrap sample is a vector of counts :math:`c_i` over the rows, so its
  mean and covariance follow from :math:`\sum_i c_i x_i` and :math:`\sum_i c_i x_i x_i^\top`
  -- one matrix product of all count vectors with the rows (and the rows' outer
  products) instead of a gather and a covariance per batch; the trace of the matrix
  square root is the sum of the square roots of the eigenvalues of
  :math:`\Sigma_r\Sigma_g` (batched :func:`numpy.linalg.eigvals`), which is what
  ``np.trace(scipy.linalg.sqrtm(...).real)`` evaluates.
* KPD: the kernel sums are accumulated block by block (no :math:`5000^2` matrices held),
  using the symmetry of the two within-sample sums.

Per feature (1-D): Wasserstein-1 distance (:func:`scipy.stats.wasserstein_distance`) and
the two-sample KS test (:func:`scipy.stats.ks_2samp`) in :func:`marginal_distances`;
across features: the Frobenius norm of the difference of the Pearson correlation
matrices (:func:`correlation_difference`); tails and edges: :func:`tail_coverage`.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))
    >>> value, error = fpd(x, y + 0.5, min_samples=1000, max_samples=4000)
    >>> bool(value > 0.05)
    True
    >>> value, error = kpd(x, y, batch_size=1000)
    >>> bool(abs(value) < 0.01)
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.optimize import curve_fit

from aalearn.core.validation import check_array
from aalearn.validation.checks import correlation_matrix

__all__ = [
    "DEFAULT_TAIL_QUANTILES",
    "MarginalDistances",
    "MetricValue",
    "TailCoverage",
    "check_feature_pair",
    "correlation_difference",
    "fpd",
    "frechet_distance",
    "kpd",
    "marginal_distances",
    "mmd_poly_unbiased",
    "normalise_features",
    "quantile_regions",
    "tail_coverage",
]

FloatArray = npt.NDArray[np.float64]

#: Quantiles of the reference whose exceedance by the candidate is tested by :func:`tail_coverage`.
DEFAULT_TAIL_QUANTILES: tuple[float, ...] = (0.001, 0.01, 0.99, 0.999)

_OUTER_CHUNK_BYTES = 32 * 2**20  # row chunk of the outer products in fpd (memory bound)
_KERNEL_BLOCK = 1024  # rows per kernel block in mmd_poly_unbiased


class MetricValue(NamedTuple):
    """A metric and its error; unpacks like jetnet's ``(value, error)`` tuples.

    Example:
        >>> value, error = MetricValue(0.5, 0.1)
        >>> value
        0.5
    """

    value: float
    error: float


# --------------------------------------------------------------------------- input checks
def check_feature_pair(
    reference: Any, candidate: Any, *, names: tuple[str, str] = ("reference", "candidate"), min_rows: int = 2
) -> tuple[FloatArray, FloatArray]:
    """Validate two ``(N, F)`` feature samples with the same number of finite columns.

    Args:
        reference: First sample.
        candidate: Second sample.
        names: Names used in the error messages.
        min_rows: Smallest accepted number of rows in each sample.

    Returns:
        Both samples as float64 arrays.

    Raises:
        TypeError: For non-numeric input.
        ValueError: For a wrong shape, NaN/inf, different column counts or too few rows.

    Example:
        >>> a, b = check_feature_pair([[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [2.0, 2.0]])
        >>> a.dtype.name, b.shape
        ('float64', (2, 2))
    """
    x = check_array(reference, name=names[0], ndim=2, dtype=np.float64)
    y = check_array(candidate, name=names[1], ndim=2, dtype=np.float64)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} has {x.shape[1]} feature columns but {names[1]} has {y.shape[1]}: "
            "both samples must hold the same features in the same order"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{names[0]} and {names[1]} have no feature columns")
    for arr, name in ((x, names[0]), (y, names[1])):
        if arr.shape[0] < min_rows:
            raise ValueError(f"{name} has {arr.shape[0]} rows; at least {min_rows} are needed")
    return x, y


def _positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def normalise_features(real: FloatArray, gen: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Divide every feature of both samples by its largest :math:`|x|` in the real sample.

    jetnet's normalisation (features that are zero throughout are left unscaled).

    Example:
        >>> a, b = normalise_features(np.array([[2.0, 0.0], [-4.0, 0.0]]), np.array([[1.0, 3.0]]))
        >>> a.tolist(), b.tolist()
        ([[0.5, 0.0], [-1.0, 0.0]], [[0.25, 3.0]])
    """
    maxes = np.max(np.abs(real), axis=0)
    maxes[maxes == 0] = 1.0
    return real / maxes, gen / maxes


# --------------------------------------------------------------------------- FPD
def _trace_sqrt_product(sigma1: FloatArray, sigma2: FloatArray) -> FloatArray:
    r""":math:`\operatorname{Tr}\,(\Sigma_1\Sigma_2)^{1/2}` for stacks ``(..., d, d)``.

    The principal square root's trace is the sum of the principal square roots of the
    eigenvalues (real parts, as jetnet drops the imaginary part of ``sqrtm``).
    """
    eig = np.linalg.eigvals(sigma1 @ sigma2)
    out: FloatArray = np.sqrt(eig.astype(np.complex128)).real.sum(axis=-1)
    return out


def frechet_distance(
    mu1: npt.ArrayLike, sigma1: npt.ArrayLike, mu2: npt.ArrayLike, sigma2: npt.ArrayLike
) -> FloatArray:
    r"""Fréchet distance of Gaussians :math:`N(\mu_1,\Sigma_1)` and :math:`N(\mu_2,\Sigma_2)`.

    :math:`d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{Tr}(\Sigma_1+\Sigma_2-2(\Sigma_1\Sigma_2)^{1/2})`
    (Heusel et al., arXiv:1706.08500; FPD of Kansal et al., arXiv:2211.10295). Broadcasts
    over leading axes: ``mu`` ``(..., d)``, ``sigma`` ``(..., d, d)``.

    Returns:
        The distance (a 0-d array for single inputs).

    Example:
        >>> float(frechet_distance([0.0, 0.0], np.eye(2), [1.0, 0.0], 4 * np.eye(2)))
        3.0
    """
    m1, m2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    diff = m1 - m2
    tr1 = np.trace(s1, axis1=-2, axis2=-1)
    tr2 = np.trace(s2, axis1=-2, axis2=-1)
    out: FloatArray = np.einsum("...i,...i->...", diff, diff) + tr1 + tr2 - 2.0 * _trace_sqrt_product(s1, s2)
    return out


def _upper_outer(x: FloatArray, iu: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]) -> FloatArray:
    out: FloatArray = x[:, iu[0]] * x[:, iu[1]]
    return out


def _bootstrap_moments(x: FloatArray, counts: FloatArray, sizes: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Means ``(B, d)`` and covariances ``(B, d, d)`` (ddof 1) of ``B`` resamples given as row counts.

    The rows are centred on their overall mean first (covariances are shift invariant),
    so that subtracting the resample mean's outer product loses no precision.
    """
    n, d = x.shape
    centre = x.mean(axis=0)
    xc = x - centre
    iu = np.triu_indices(d)
    first = counts @ xc  # (B, d)
    second = np.zeros((counts.shape[0], iu[0].size))
    chunk = max(1, _OUTER_CHUNK_BYTES // (8 * iu[0].size))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        second += counts[:, start:stop] @ _upper_outer(xc[start:stop], iu)
    mean_c = first / sizes[:, None]
    packed = (second - sizes[:, None] * _upper_outer(mean_c, iu)) / (sizes - 1.0)[:, None]
    cov = np.empty((counts.shape[0], d, d))
    cov[:, iu[0], iu[1]] = packed
    cov[:, iu[1], iu[0]] = packed
    return mean_c + centre, cov


def _linear(x: FloatArray, intercept: float, slope: float) -> FloatArray:
    return intercept + slope * x


def fpd(
    real_features: npt.ArrayLike,
    gen_features: npt.ArrayLike,
    *,
    min_samples: int = 20_000,
    max_samples: int = 50_000,
    num_batches: int = 20,
    num_points: int = 10,
    normalise: bool = True,
    seed: int = 42,
) -> MetricValue:
    r"""Fréchet physics distance extrapolated to infinite sample size (Kansal et al., arXiv:2211.10295).

    Same estimator, defaults and random stream as ``jetnet.evaluation.fpd`` (v0.2.5).

    Args:
        real_features: ``(N, d)`` reference features.
        gen_features: ``(M, d)`` generated features.
        min_samples: Smallest batch size.
        max_samples: Largest batch size; both samples need at least this many rows.
        num_batches: Resamples (with replacement) per batch size.
        num_points: Batch sizes, regular in :math:`1/N` from ``min_samples`` to ``max_samples``.
        normalise: Divide each feature by its largest :math:`|x|` in the real sample.
        seed: Seed of the resampling.

    Returns:
        ``(value, error)``: the intercept of the linear fit in :math:`1/N` and its standard error.

    Raises:
        ValueError: For NaN/inf, different feature counts, inconsistent batch settings or
            samples smaller than ``max_samples`` (lower ``min_samples``/``max_samples``).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> x = rng.normal(size=(3000, 2))
        >>> y = 2.0 * rng.normal(size=(3000, 2))
        >>> value, error = fpd(x, y, min_samples=1000, max_samples=3000, normalise=False)
        >>> abs(value - 2.0) < 0.2  # 2 (1 + 4 - 2 * 2) = 2 for unit versus doubled widths
        True
    """
    min_samples = _positive_int(min_samples, name="min_samples", minimum=2)
    max_samples = _positive_int(max_samples, name="max_samples", minimum=2)
    num_batches = _positive_int(num_batches, name="num_batches")
    num_points = _positive_int(num_points, name="num_points", minimum=2)
    if min_samples > max_samples:
        raise ValueError(f"min_samples ({min_samples}) must not exceed max_samples ({max_samples})")
    x, y = check_feature_pair(real_features, gen_features, names=("real_features", "gen_features"))
    if min(len(x), len(y)) < max_samples:
        suggest = min(len(x), len(y))
        raise ValueError(
            f"FPD draws batches of up to max_samples={max_samples} rows but the samples have {len(x)} and "
            f"{len(y)} rows: pass max_samples <= {suggest} (for example max_samples={suggest}, "
            f"min_samples={max(2, int(0.4 * suggest))}) or use larger samples (jetnet recommends 50,000)"
        )
    if normalise:
        x, y = normalise_features(x, y)

    # regular intervals in 1/N, exactly as jetnet (including the int32 truncation)
    batches = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    n_total = num_points * num_batches
    counts_x = np.empty((n_total, len(x)))
    counts_y = np.empty((n_total, len(y)))
    sizes = np.repeat(batches.astype(np.float64), num_batches)
    b = 0
    for batch_size in batches:  # the index draws must interleave as in jetnet: x, y, x, y, ...
        for _ in range(num_batches):
            counts_x[b] = np.bincount(rng.choice(len(x), size=batch_size), minlength=len(x))
            counts_y[b] = np.bincount(rng.choice(len(y), size=batch_size), minlength=len(y))
            b += 1
    mu1, sigma1 = _bootstrap_moments(x, counts_x, sizes)
    mu2, sigma2 = _bootstrap_moments(y, counts_y, sizes)
    values = frechet_distance(mu1, sigma1, mu2, sigma2)
    if not np.all(np.isfinite(values)):
        raise ValueError("FPD: the Fréchet distance is not finite; check the features for extreme values")
    vals = values.reshape(num_points, num_batches).mean(axis=1)
    params, covs = curve_fit(_linear, 1 / batches, vals, bounds=([0, 0], [np.inf, np.inf]))
    return MetricValue(float(params[0]), float(np.sqrt(np.diag(covs)[0])))


# --------------------------------------------------------------------------- KPD
_MAX_MONOMIALS = 6000  # use the monomial expansion of the kernel up to this many monomials


@functools.lru_cache(maxsize=16)
def _monomial_plan(
    d: int, degree: int
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]]:
    """For degrees ``1..degree``: (parent column, new feature, multinomial coefficient) per monomial.

    Monomials of degree ``k`` are the sorted index tuples ``i_1 <= ... <= i_k``; each is its
    parent of degree ``k - 1`` (the tuple without its last index) times ``x[:, i_k]``.
    """
    plan: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]] = []
    prev: list[tuple[int, ...]] = [()]
    for _ in range(degree):
        parents, news, combos = [], [], []
        for p_idx, combo in enumerate(prev):
            start = combo[-1] if combo else 0
            for j in range(start, d):
                parents.append(p_idx)
                news.append(j)
                combos.append((*combo, j))
        coeffs = np.array(
            [math.factorial(len(c)) / math.prod(math.factorial(c.count(v)) for v in set(c)) for c in combos]
        )
        plan.append((np.array(parents, dtype=np.intp), np.array(news, dtype=np.intp), coeffs))
        prev = combos
    return plan


def _monomial_sums(
    x: FloatArray, plan: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]]
) -> list[FloatArray]:
    """Column sums of all monomials of degree ``1..len(plan)`` of the rows of ``x``."""
    sums = [np.zeros(len(p[0])) for p in plan]
    chunk = max(1, _OUTER_CHUNK_BYTES // (8 * max(len(p[0]) for p in plan)))
    for start in range(0, len(x), chunk):
        rows = x[start : start + chunk]
        current = np.ones((len(rows), 1))
        for k, (parents, news, _) in enumerate(plan):
            current = current[:, parents] * rows[:, news]
            sums[k] += current.sum(axis=0)
    return sums


def _poly_kernel_sums_monomial(
    x: FloatArray, y: FloatArray | None, gamma: float, coef: float, degree: int
) -> float:
    r"""Kernel sums through :math:`(x\cdot y)^k = \sum_{|\alpha|=k} \frac{k!}{\alpha!} x^\alpha y^\alpha`.

    :math:`\sum_{ij}(\gamma x_i\cdot y_j + c)^D = \sum_k \binom{D}{k}\gamma^k c^{D-k}
    \sum_{|\alpha|=k}\frac{k!}{\alpha!} M_\alpha(X) M_\alpha(Y)` with the monomial sums
    :math:`M_\alpha(X) = \sum_i x_i^\alpha`: linear instead of quadratic in the sample size.
    """
    plan = _monomial_plan(x.shape[1], degree)
    mx = _monomial_sums(x, plan)
    my = mx if y is None else _monomial_sums(y, plan)
    n_y = len(x) if y is None else len(y)
    total = math.comb(degree, 0) * coef**degree * len(x) * n_y
    for k in range(1, degree + 1):
        inner = float(np.sum(plan[k - 1][2] * mx[k - 1] * my[k - 1]))
        total += math.comb(degree, k) * gamma**k * coef ** (degree - k) * inner
    if y is None:  # remove the diagonal i == j
        total -= float(np.sum((gamma * np.einsum("ij,ij->i", x, x) + coef) ** degree))
    return total


def _n_monomials(d: int, degree: int) -> int:
    return sum(math.comb(d + k - 1, k) for k in range(1, degree + 1))


def _poly_kernel_sums(
    x: FloatArray, y: FloatArray | None, gamma: float, coef: float, degree: int, block: int
) -> float:
    """Sum of the kernel over all pairs (``y`` given) or over the pairs ``i != j`` of ``x``."""
    if _n_monomials(x.shape[1], degree) <= _MAX_MONOMIALS and len(x) > 64:
        return _poly_kernel_sums_monomial(x, y, gamma, coef, degree)

    def kernel(a: FloatArray, b: FloatArray) -> FloatArray:
        g = a @ b.T
        g *= gamma
        g += coef
        if degree == 4:  # the default: two in-place squarings
            np.square(g, out=g)
            np.square(g, out=g)
        else:
            np.power(g, degree, out=g)
        return g

    total = 0.0
    if y is not None:
        for start in range(0, len(x), block):
            total += float(kernel(x[start : start + block], y).sum())
        return total
    n = len(x)
    for start in range(0, n, block):
        stop = min(n, start + block)
        k = kernel(x[start:stop], x[start:])  # the rows' block and everything to its right
        diag_block = k[:, : stop - start]
        total += 2.0 * float(k[:, stop - start :].sum())
        total += float(diag_block.sum()) - float(np.trace(diag_block))
    return total


def mmd_poly_unbiased(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    degree: int = 4,
    gamma: float | None = None,
    coef: float = 1.0,
    block: int = _KERNEL_BLOCK,
) -> float:
    r"""Unbiased :math:`\mathrm{MMD}^2` with the kernel :math:`(\gamma x^\top y + c)^{\mathrm{degree}}`.

    :math:`\frac{1}{m(m-1)}\sum_{i\ne j}k(x_i,x_j) + \frac{1}{n(n-1)}\sum_{i\ne j}k(y_i,y_j)
    - \frac{2}{mn}\sum_{i,j}k(x_i,y_j)` (Gretton et al., JMLR 13 (2012) 723); the KPD
    kernel of Kansal et al. (arXiv:2211.10295) has degree 4, :math:`\gamma = 1/d`, :math:`c = 1`.
    Can be negative.

    Args:
        x: ``(m, d)`` sample, ``m >= 2``.
        y: ``(n, d)`` sample, ``n >= 2``.
        degree: Kernel degree.
        gamma: Scale of the dot product (default ``1 / d``).
        coef: Constant added to the scaled dot product.
        block: Rows per kernel block (memory ``block * max(m, n)`` floats).

    Returns:
        The estimate.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
        >>> mmd_poly_unbiased(a, b + 1.0) > 10 * abs(mmd_poly_unbiased(a, b))
        True
    """
    a, b = check_feature_pair(x, y, names=("x", "y"))
    degree = _positive_int(degree, name="degree")
    block = _positive_int(block, name="block")
    g = 1.0 / a.shape[1] if gamma is None else float(gamma)
    m, n = len(a), len(b)
    xx = _poly_kernel_sums(a, None, g, coef, degree, block)
    yy = _poly_kernel_sums(b, None, g, coef, degree, block)
    xy = _poly_kernel_sums(a, b, g, coef, degree, block)
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n)


def kpd(
    real_features: npt.ArrayLike,
    gen_features: npt.ArrayLike,
    *,
    num_batches: int = 10,
    batch_size: int = 5_000,
    normalise: bool = True,
    seed: int = 42,
) -> MetricValue:
    r"""Kernel physics distance: median unbiased MMD² over batches (Kansal et al., arXiv:2211.10295).

    Same estimator, defaults and random streams as ``jetnet.evaluation.kpd`` (v0.2.5):
    polynomial kernel of degree 4 with :math:`\gamma = 1/d` and :math:`c = 1`; batch ``i``
    draws ``batch_size`` rows with replacement from each sample with
    ``numpy.random.default_rng(seed + 1000 * i)``.

    Args:
        real_features: ``(N, d)`` reference features.
        gen_features: ``(M, d)`` generated features.
        num_batches: Number of batches.
        batch_size: Rows per batch (at least 2; both samples need at least this many rows).
        normalise: Divide each feature by its largest :math:`|x|` in the real sample.
        seed: Seed of the first batch.

    Returns:
        ``(median, error)`` with the error half the 16.275-83.725 % inter-quantile range.

    Raises:
        ValueError: For NaN/inf, different feature counts, or samples smaller than ``batch_size``.

    Example:
        >>> rng = np.random.default_rng(2)
        >>> value, error = kpd(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)), batch_size=1000)
        >>> bool(abs(value) < 3 * error + 1e-3)
        True
    """
    num_batches = _positive_int(num_batches, name="num_batches")
    batch_size = _positive_int(batch_size, name="batch_size", minimum=2)
    x, y = check_feature_pair(real_features, gen_features, names=("real_features", "gen_features"))
    if min(len(x), len(y)) < batch_size:
        raise ValueError(
            f"KPD draws batches of batch_size={batch_size} rows but the samples have {len(x)} and {len(y)} "
            f"rows: pass batch_size <= {min(len(x), len(y))} or use larger samples"
        )
    if normalise:
        x, y = normalise_features(x, y)
    vals = np.empty(num_batches)
    for i in range(num_batches):  # one 2 x batch_size^2 kernel evaluation per batch: numpy-bound
        rng = np.random.default_rng(seed + i * 1000)
        rand1 = rng.choice(len(x), size=batch_size)
        rand2 = rng.choice(len(y), size=batch_size)
        vals[i] = mmd_poly_unbiased(x[rand1], y[rand2])
    # scipy.stats.iqr(vals, rng=(16.275, 83.725)) is exactly this percentile difference; its
    # argument-checking wrapper costs ~10 ms per call, which adds up over a null's resamples
    lo, hi = np.percentile(vals, [16.275, 83.725])
    return MetricValue(float(np.median(vals)), float(np.subtract(hi, lo)) / 2)


# --------------------------------------------------------------------------- 1-D and correlations
@dataclass(frozen=True)
class MarginalDistances:
    """Per-feature 1-D comparisons of two samples.

    Attributes:
        w1: Wasserstein-1 distance per feature (feature units).
        w1_scaled: ``w1`` divided by the reference's standard deviation (NaN for constant features).
        ks_statistic: KS statistic per feature.
        ks_pvalue: Two-sided KS p-value per feature (NaN when both samples are one
            identical constant: no test).
    """

    w1: FloatArray
    w1_scaled: FloatArray
    ks_statistic: FloatArray
    ks_pvalue: FloatArray


def _w1(reference: FloatArray, candidate: FloatArray) -> FloatArray:
    return np.array(
        [stats.wasserstein_distance(reference[:, j], candidate[:, j]) for j in range(reference.shape[1])]
    )


def marginal_distances(reference: npt.ArrayLike, candidate: npt.ArrayLike) -> MarginalDistances:
    """1-D Wasserstein-1 distance and KS test of every feature (scipy).

    Args:
        reference: ``(N, F)`` reference sample.
        candidate: ``(M, F)`` candidate sample.

    Returns:
        The per-feature distances and KS p-values (not corrected for multiplicity).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> r = marginal_distances(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + [0.0, 0.3])
        >>> bool(r.ks_pvalue[0] > 0.01), bool(r.ks_pvalue[1] < 1e-6)
        (True, True)
    """
    x, y = check_feature_pair(reference, candidate)
    w1 = _w1(x, y)
    std = x.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w1_scaled = np.where(std > 0, w1 / np.where(std > 0, std, 1.0), np.nan)
    ks = stats.ks_2samp(x, y, axis=0)
    p = np.asarray(ks.pvalue, dtype=np.float64).copy()
    constant = (np.ptp(x, axis=0) == 0) & (np.ptp(y, axis=0) == 0) & (x[0] == y[0])
    p[constant] = np.nan
    return MarginalDistances(w1, w1_scaled, np.asarray(ks.statistic, dtype=np.float64), p)


def correlation_difference(reference: npt.ArrayLike, candidate: npt.ArrayLike) -> float:
    r"""Frobenius norm of the difference of the Pearson correlation matrices.

    :math:`\lVert C_\mathrm{cand} - C_\mathrm{ref} \rVert_F`; pairs involving a feature
    that is constant in either sample are left out.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(5000, 2))
        >>> b = a @ np.array([[1.0, 0.8], [0.0, 0.6]])  # correlation 0.8 instead of 0
        >>> bool(abs(correlation_difference(a, b) - np.sqrt(2) * 0.8) < 0.05)
        True
    """
    x, y = check_feature_pair(reference, candidate)
    if x.shape[1] < 2:
        return 0.0
    delta = correlation_matrix(y) - correlation_matrix(x)
    return float(np.sqrt(np.nansum(delta**2)))


# --------------------------------------------------------------------------- tails and regions
@dataclass(frozen=True)
class TailCoverage:
    r"""Coverage of the reference's extreme quantiles by the candidate, per feature.

    For quantile :math:`q` the threshold :math:`t` is the :math:`r`-th smallest (lower
    tail, :math:`q < 0.5`) or :math:`r`-th largest (upper tail) reference value with
    :math:`r = \max(1, \mathrm{round}(q' N_\mathrm{ref}))`, :math:`q' = \min(q, 1-q)`.
    Under the null (both samples from one continuous distribution) the probability mass
    beyond an order statistic is :math:`\mathrm{Beta}(r, N_\mathrm{ref}-r+1)`-distributed,
    so the number of candidate values beyond :math:`t` is exactly beta-binomial,
    :math:`\mathrm{BetaBinom}(N_\mathrm{cand}, r, N_\mathrm{ref}-r+1)`: the binomial test
    with the reference quantile's own uncertainty. The p-value is two-sided
    (:math:`\min(1, 2\min(P(K\le k), P(K\ge k)))`). Ties at :math:`t` (discrete features)
    are shared so that the reference count beyond :math:`t` is exactly :math:`r`; the test
    is then approximate.

    Attributes:
        quantiles: The quantiles ``(Q,)``.
        thresholds: ``(F, Q)`` thresholds in feature units.
        expected_fraction: ``(Q,)`` expected candidate fraction beyond the threshold,
            :math:`r/(N_\mathrm{ref}+1)`.
        candidate_fraction: ``(F, Q)`` observed candidate fraction beyond the threshold.
        pvalue: ``(F, Q)`` two-sided beta-binomial p-values (NaN for features constant in the reference).
        outside_range: ``(F,)`` candidate fraction outside the reference's [min, max].
    """

    quantiles: FloatArray
    thresholds: FloatArray
    expected_fraction: FloatArray
    candidate_fraction: FloatArray
    pvalue: FloatArray
    outside_range: FloatArray


def _beyond(values: FloatArray, t: float, upper: bool) -> tuple[int, int]:
    if upper:
        return int(np.count_nonzero(values > t)), int(np.count_nonzero(values == t))
    return int(np.count_nonzero(values < t)), int(np.count_nonzero(values == t))


def tail_coverage(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    quantiles: Sequence[float] = DEFAULT_TAIL_QUANTILES,
) -> TailCoverage:
    """Fraction of the candidate beyond the reference's extreme quantiles, with beta-binomial p-values.

    See :class:`TailCoverage` for the test. A surrogate that does not populate the tails
    (a "removed tail", Kansal et al., arXiv:2211.10295) or overshoots the edges fails it.

    Args:
        reference: ``(N, F)`` reference sample.
        candidate: ``(M, F)`` candidate sample.
        quantiles: Quantiles in (0, 1), away from 0.5.

    Returns:
        The coverage per feature and quantile.

    Raises:
        ValueError: For quantiles outside (0, 1).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=(20_000, 1))
        >>> cut = rng.normal(size=(20_000, 1)).clip(-2.0, 2.0)  # no tails beyond 2 sigma
        >>> t = tail_coverage(ref, cut, quantiles=(0.01, 0.99))
        >>> bool(t.pvalue.max() < 1e-6), float(t.candidate_fraction.max())
        (True, 0.0)
    """
    x, y = check_feature_pair(reference, candidate)
    q = np.asarray(quantiles, dtype=np.float64)
    if q.ndim != 1 or q.size == 0 or np.any((q <= 0) | (q >= 1)) or np.any(q == 0.5):
        raise ValueError(
            f"quantiles must be a non-empty list of numbers in (0, 1) other than 0.5, got {quantiles}"
        )
    n_ref, n_cand = len(x), len(y)
    n_feat = x.shape[1]
    thresholds = np.empty((n_feat, q.size))
    cand_frac = np.empty((n_feat, q.size))
    pvalue = np.empty((n_feat, q.size))
    ranks = np.maximum(1, np.rint(np.minimum(q, 1 - q) * n_ref)).astype(int)
    xs = np.sort(x, axis=0)
    for j in range(n_feat):
        constant = xs[0, j] == xs[-1, j]
        for i, (qi, r) in enumerate(zip(q, ranks, strict=True)):
            upper = qi > 0.5
            t = xs[n_ref - r, j] if upper else xs[r - 1, j]
            thresholds[j, i] = t
            ref_beyond, ref_ties = _beyond(xs[:, j], t, upper)
            cand_beyond, cand_ties = _beyond(y[:, j], t, upper)
            share = (r - ref_beyond) / ref_ties if ref_ties else 0.0
            k = cand_beyond + share * cand_ties
            cand_frac[j, i] = k / n_cand
            if constant:
                pvalue[j, i] = np.nan
                continue
            dist = stats.betabinom(n_cand, r, n_ref - r + 1)
            k_int = round(k)
            pvalue[j, i] = min(1.0, 2.0 * min(float(dist.cdf(k_int)), float(dist.sf(k_int - 1))))
    outside = ((y < xs[0]) | (y > xs[-1])).mean(axis=0)
    return TailCoverage(q, thresholds, ranks / (n_ref + 1.0), cand_frac, pvalue, outside)


def quantile_regions(
    reference: npt.ArrayLike, candidate: npt.ArrayLike, *, bins: int = 10
) -> list[dict[str, float]]:
    r"""The reference-quantile bin of each feature where the candidate deviates most.

    Bins hold equal shares of the reference (:math:`1/\mathrm{bins}` each, the outer ones
    open); the candidate's share :math:`f` in each bin is compared with the reference's
    :math:`f_0` through :math:`z = (f - f_0)/\sqrt{f_0(1-f_0)(1/N_\mathrm{cand} + 1/N_\mathrm{ref})}`.

    Args:
        reference: ``(N, F)`` reference sample.
        candidate: ``(M, F)`` candidate sample.
        bins: Number of quantile bins.

    Returns:
        Per feature a dict with ``lo``, ``hi`` (bin edges, ±inf at the ends), ``reference_fraction``,
        ``candidate_fraction`` and ``z`` of the bin with the largest :math:`|z|`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref, cand = rng.normal(size=(5000, 1)), rng.normal(size=(5000, 1))
        >>> cand[cand > 1.5] = 0.0  # the surrogate misses the upper tail
        >>> region = quantile_regions(ref, cand)[0]
        >>> region["hi"], region["z"] < -5
        (inf, True)
    """
    x, y = check_feature_pair(reference, candidate)
    bins = _positive_int(bins, name="bins", minimum=2)
    out: list[dict[str, float]] = []
    for j in range(x.shape[1]):
        inner = np.unique(np.quantile(x[:, j], np.linspace(0, 1, bins + 1)[1:-1]))
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
        ref_frac = np.histogram(x[:, j], edges)[0] / len(x)
        cand_frac = np.histogram(y[:, j], edges)[0] / len(y)
        sigma = np.sqrt(np.maximum(ref_frac * (1 - ref_frac), 1e-12) * (1 / len(y) + 1 / len(x)))
        z = (cand_frac - ref_frac) / sigma
        i = int(np.argmax(np.abs(z)))
        out.append(
            {
                "lo": float(edges[i]),
                "hi": float(edges[i + 1]),
                "reference_fraction": float(ref_frac[i]),
                "candidate_fraction": float(cand_frac[i]),
                "z": float(z[i]),
            }
        )
    return out
