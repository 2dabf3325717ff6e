r"""Downstream closure: does a measurement built on surrogate templates recover the truth?

The surrogate replaces the full simulation where it matters: in the templates of a
measurement. Here the measurement is aalearn's binned profile-likelihood fit of a signal
strength :math:`\mu` (:class:`aalearn.inference.Measurement`, pyhf; one channel, signal and
background templates of any observable: a classifier score as in the uncertainty issue, or
the jet mass). The closure test (``shared/notes/surrogates.md`` §5, step 9):

1. Templates from the surrogate: per class, the histogram of the observable in generated
   events, normalised to the expected yields. With an ensemble of :math:`K` surrogates the
   nominal template is the pooled sample and the between-member variance of the yields,
   :math:`\sigma^2_{\text{model},i}`, is the surrogate's model uncertainty.
2. Pseudo-data from the *real* generator at a known :math:`\mu_0`: toys with
   :math:`n_s \sim \mathrm{Pois}(\mu_0 E_s)` signal and :math:`n_b \sim \mathrm{Pois}(E_b)`
   background events resampled (with replacement) from held-out real events.
3. Fit every toy, twice: with the templates as they are (``"plain"``) and with the model
   variance as a per-bin Gaussian nuisance (pyhf ``staterror`` with
   :math:`\sum w^2 \to \sum w^2 + \sigma^2_{\text{model},i}`; ``"model_nuisance"``).
   Optionally a third time with templates from *real* events of the same size as the
   surrogate's training set (``"real_templates"``): the closure's null, what the full
   simulation itself would give with finite samples.
4. Report the bias :math:`(\overline{\hat\mu} - \mu_0)/\bar\sigma_\text{stat}` in units of
   the statistical error, the pull :math:`(\hat\mu-\mu_0)/\sigma_{\hat\mu}` mean and width,
   and the coverage of :math:`\hat\mu \pm \sigma_{\hat\mu}` (nominal 68.27 %) and of
   :math:`\pm 1.96\sigma` (95 %).

The real held-out pool is finite: resampled toys share its fluctuation, which moves every
toy's :math:`\hat\mu` together. Its size is measured by refitting the expected (Asimov)
histograms of bootstrap copies of the pool and added to the error of the bias; keep the
expected yields well below the pool size (:math:`E_s + E_b \ll N_\text{pool}`). The
templates are finite samples as well (the surrogate's generated events, the baseline's
real events): every toy is fitted with the same templates, so their fluctuation shifts
the mean :math:`\hat\mu` too; it is measured by fitting the pool's expected histogram
with templates from bootstrap copies of those events, and added in quadrature. The
error of the bias is therefore the expected spread of the closure statistic under the
null (perfect templates); ``bias_significance`` is bias / error. The real-template
baseline carries its Monte-Carlo ``staterror``.

A perfect surrogate closes (bias ≈ 0, pulls :math:`N(0,1)`, coverage 68 %); a biased one
does not, and the model-variance nuisance shows whether the ensemble spread covers the
bias (Scheurer et al., arXiv:2505.08683: surrogate errors make posteriors overconfident
unless propagated). Amplification and metrics: Butter et al. arXiv:2008.06545; Kansal et
al. arXiv:2211.10295.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = closure_test(rng.beta(5, 2, 50_000), rng.beta(2, 5, 50_000),
    ...                    rng.beta(5, 2, 50_000), rng.beta(2, 5, 50_000),
    ...                    n_toys=20, model_nuisance=False, pool_bootstraps=0)
    >>> abs(res.variants[0].bias) < 1.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.optional import require
from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.core.result import ReportBuilder
from aalearn.core.validation import check_array
from aalearn.inference import Measurement, Templates
from aalearn.surrogates.verdict import Check

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ClosureResult", "ClosureVariant", "closure_test", "plot_closure"]

FloatArray = npt.NDArray[np.float64]
NOMINAL_COVERAGE = 0.6826894921370859
"""Probability of a standard normal within ±1."""
VARIANTS = ("plain", "model_nuisance")
BASELINE = "real_templates"
_CLOSURE_TEXT = "Fit of the signal strength: surrogate templates, resampled held-out real events as data."
"""Name of the baseline variant: templates from real events (the closure's null)."""


@dataclass(frozen=True)
class ClosureVariant:
    r"""Toy fits of one template variant at one injected :math:`\mu_0`.

    Attributes:
        name: ``"plain"``, ``"model_nuisance"`` or ``"real_templates"`` (baseline).
        mu_true: Injected :math:`\mu_0`.
        mu_hat: ``(n,)`` best fits of the converged toys.
        mu_err: ``(n,)`` total (HESSE) uncertainties.
        mu_err_stat: ``(n,)`` statistical uncertainties (refit with nuisances fixed).
        n_toys: Toys generated.
        n_failed: Toys whose fit failed or gave a non-positive error.
        mu_hat_asimov: Fit of the pool's expected histogram (no Poisson noise).
        pool_sigma: Spread of the Asimov :math:`\hat\mu` over bootstrap copies of the real
            pool (0 when not measured): the pool's share of the error of the bias.
        template_sigma: Spread of :math:`\hat\mu` (fit of the pool's expected histogram)
            over bootstrap copies of the events behind the *templates* (0 when not
            measured): the templates' finite statistics, the same for every toy, hence
            a shift of the mean that toy statistics do not average away.
    """

    name: str
    mu_true: float
    mu_hat: FloatArray
    mu_err: FloatArray
    mu_err_stat: FloatArray
    n_toys: int
    n_failed: int
    mu_hat_asimov: float
    pool_sigma: float
    template_sigma: float = 0.0

    @property
    def n_ok(self) -> int:
        """Converged toys."""
        return int(self.mu_hat.shape[0])

    @property
    def pulls(self) -> FloatArray:
        r""":math:`(\hat\mu - \mu_0)/\sigma_{\hat\mu}` per converged toy."""
        return np.asarray((self.mu_hat - self.mu_true) / self.mu_err, dtype=np.float64)

    @property
    def sigma_stat(self) -> float:
        """Mean statistical error of the toys."""
        return float(np.mean(self.mu_err_stat)) if self.n_ok else math.nan

    @property
    def bias(self) -> float:
        r"""Bias in units of the statistical error, :math:`(\bar{\hat\mu}-\mu_0)/\bar\sigma_\text{stat}`."""
        return (float(np.mean(self.mu_hat)) - self.mu_true) / self.sigma_stat if self.n_ok else math.nan

    @property
    def bias_error(self) -> float:
        """Error of :attr:`bias`: toy statistics, the finite real pool and the finite template samples.

        The three are independent and added in quadrature; this is also the expected spread
        (standard deviation) of :attr:`bias` under the null of perfect templates.
        """
        if self.n_ok < 2:
            return math.nan
        toy = float(np.std(self.mu_hat, ddof=1)) / math.sqrt(self.n_ok)
        return math.sqrt(toy**2 + self.pool_sigma**2 + self.template_sigma**2) / self.sigma_stat

    @property
    def bias_significance(self) -> float:
        """:attr:`bias` / :attr:`bias_error`: standard normal under the null of perfect templates."""
        err = self.bias_error
        return self.bias / err if math.isfinite(err) and err > 0 else math.nan

    @property
    def pull_mean(self) -> float:
        """Mean pull."""
        return float(np.mean(self.pulls)) if self.n_ok else math.nan

    @property
    def pull_std(self) -> float:
        """Pull width (standard deviation, ``ddof = 1``)."""
        return float(np.std(self.pulls, ddof=1)) if self.n_ok > 1 else math.nan

    @property
    def coverage(self) -> float:
        r"""Fraction of toys with :math:`|\hat\mu - \mu_0| \le \sigma_{\hat\mu}` (nominal 68.27 %)."""
        return float(np.mean(np.abs(self.pulls) <= 1.0)) if self.n_ok else math.nan

    @property
    def coverage_error(self) -> float:
        """Binomial error of the coverage at the nominal 68.27 %."""
        return math.sqrt(NOMINAL_COVERAGE * (1 - NOMINAL_COVERAGE) / self.n_ok) if self.n_ok else math.nan

    @property
    def coverage95(self) -> float:
        r"""Fraction of toys with :math:`|\text{pull}| \le 1.96` (nominal 95 %)."""
        return float(np.mean(np.abs(self.pulls) <= 1.959964)) if self.n_ok else math.nan

    @property
    def asimov_bias(self) -> float:
        """Bias of the Asimov fit of the pool histogram in units of the mean statistical error."""
        return (self.mu_hat_asimov - self.mu_true) / self.sigma_stat if self.n_ok else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the per-toy arrays)."""
        out: dict[str, Any] = to_jsonable(
            {
                "name": self.name,
                "mu_true": self.mu_true,
                "n_toys": self.n_toys,
                "n_failed": self.n_failed,
                "mu_hat_mean": float(np.mean(self.mu_hat)) if self.n_ok else math.nan,
                "sigma_stat": self.sigma_stat,
                "sigma_total": float(np.mean(self.mu_err)) if self.n_ok else math.nan,
                "bias": self.bias,
                "bias_error": self.bias_error,
                "asimov_bias": self.asimov_bias,
                "bias_significance": self.bias_significance,
                "pool_sigma": self.pool_sigma,
                "template_sigma": self.template_sigma,
                "pull_mean": self.pull_mean,
                "pull_std": self.pull_std,
                "coverage": self.coverage,
                "coverage_error": self.coverage_error,
                "coverage95": self.coverage95,
            }
        )
        return out


@dataclass(frozen=True)
class ClosureResult:
    """Closure of a measurement on surrogate templates against real pseudo-data.

    Attributes:
        observable: Name of the fitted observable.
        edges: ``(B+1,)`` bin edges.
        template_signal: ``(B,)`` nominal surrogate signal yields.
        template_background: ``(B,)`` nominal surrogate background yields.
        model_var_signal: ``(B,)`` between-member variance of the signal yields (``None``
            for a single surrogate).
        model_var_background: Same for the background.
        real_signal: ``(B,)`` yields of the real pool's signal events (expected yields).
        real_background: Same for the background.
        expected_signal: :math:`E_s` (at :math:`\\mu = 1`).
        expected_background: :math:`E_b`.
        n_members: Number of surrogate samples (ensemble members).
        variants: One :class:`ClosureVariant` per (variant, :math:`\\mu_0`).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> res = closure_test(rng.beta(5, 2, 9000), rng.beta(2, 5, 9000), rng.beta(5, 2, 9000),
        ...                    rng.beta(2, 5, 9000), n_toys=4, model_nuisance=False, pool_bootstraps=0)
        >>> sorted(res.to_dict())[:3]
        ['edges', 'expected_background', 'expected_signal']
    """

    observable: str
    edges: FloatArray
    template_signal: FloatArray
    template_background: FloatArray
    model_var_signal: FloatArray | None
    model_var_background: FloatArray | None
    real_signal: FloatArray
    real_background: FloatArray
    expected_signal: float
    expected_background: float
    n_members: int
    variants: tuple[ClosureVariant, ...]

    def variant(self, name: str, mu_true: float | None = None) -> ClosureVariant:
        """The toys of variant ``name`` (at ``mu_true``, default the first).

        Raises:
            KeyError: If no such variant was run.
        """
        for v in self.variants:
            if v.name == name and (mu_true is None or math.isclose(v.mu_true, mu_true)):
                return v
        raise KeyError(
            f"no closure variant {name!r} at mu_true={mu_true}; have {[v.name for v in self.variants]}"
        )

    def checks(
        self,
        bias_tolerance: float = 0.2,
        *,
        coverage_tolerance: float | None = None,
        pull_width_tolerance: float | None = None,
    ) -> list[Check]:
        r"""Closure checks of the verdict, per variant (worst case over the injected :math:`\mu_0`).

        * ``closure:bias``: :math:`|\text{bias}| \le` ``bias_tolerance`` (in units of the
          statistical error).
        * ``closure:coverage``: coverage :math:`\ge 68.27\,\% -` tolerance (over-coverage is
          conservative and passes); default tolerance 3 binomial σ (at least 0.03).
        * ``closure:pull_width``: pull width :math:`\le 1 +` tolerance (narrow pulls are
          conservative); default 3 σ of a sample standard deviation, at least 0.1.

        Checks of the ``"model_nuisance"`` variant carry the suffix ``:model_nuisance``. The
        ``"real_templates"`` baseline gives no check; its bias is quoted in the details.

        Args:
            bias_tolerance: Largest acceptable absolute bias in units of σ_stat.
            coverage_tolerance: Allowed under-coverage.
            pull_width_tolerance: Allowed excess pull width.

        Returns:
            Three :class:`~aalearn.surrogates.verdict.Check` per variant run.

        Raises:
            ValueError: For non-positive tolerances.
        """
        for name, tol in (
            ("bias_tolerance", bias_tolerance),
            ("coverage_tolerance", coverage_tolerance),
            ("pull_width_tolerance", pull_width_tolerance),
        ):
            if tol is not None and (not math.isfinite(tol) or tol <= 0):
                raise ValueError(f"{name} must be a finite positive number, got {tol}")
        out: list[Check] = []
        baseline = [v for v in self.variants if v.name == BASELINE]
        for vname in VARIANTS:
            runs = [v for v in self.variants if v.name == vname]
            if not runs:
                continue
            suffix = "" if vname == "plain" else ":model_nuisance"
            what = (
                "surrogate templates" if vname == "plain" else "surrogate templates + model-variance nuisance"
            )
            worst = max(runs, key=lambda v: abs(v.bias) if math.isfinite(v.bias) else math.inf)
            detail = (
                f"{what}, fit of {self.observable}: bias {worst.bias:+.3f} ± {worst.bias_error:.3f} σ_stat "
                f"at μ0 = {worst.mu_true:g} ({worst.n_ok} toys, {worst.n_failed} failed)"
            )
            if math.isfinite(worst.bias_error) and worst.bias_error > bias_tolerance / 2:
                detail += (
                    "; the error of the bias is large against the tolerance: more toys or a larger real pool"
                )
            for b in baseline:
                if math.isclose(b.mu_true, worst.mu_true):
                    detail += f"; with real templates instead: {b.bias:+.3f} ± {b.bias_error:.3f} σ_stat"
            out.append(
                Check(
                    name=f"closure:bias{suffix}",
                    passed=bool(abs(worst.bias) <= bias_tolerance),
                    value=worst.bias,
                    threshold=bias_tolerance,
                    detail=detail,
                )
            )
            worst_cov = min(runs, key=lambda v: v.coverage if math.isfinite(v.coverage) else -math.inf)
            tol_c = (
                coverage_tolerance
                if coverage_tolerance is not None
                else max(
                    0.03, 3 * worst_cov.coverage_error if math.isfinite(worst_cov.coverage_error) else 0.03
                )
            )
            out.append(
                Check(
                    name=f"closure:coverage{suffix}",
                    passed=bool(worst_cov.coverage >= NOMINAL_COVERAGE - tol_c),
                    value=worst_cov.coverage,
                    threshold=NOMINAL_COVERAGE - tol_c,
                    detail=(
                        f"{what}: μ̂ ± σ covers μ0 = {worst_cov.mu_true:g} in "
                        f"{100 * worst_cov.coverage:.1f} % of toys (nominal 68.3 %, "
                        f"± {100 * worst_cov.coverage_error:.1f} %); 95 % interval: "
                        f"{100 * worst_cov.coverage95:.1f} %"
                    ),
                )
            )
            worst_w = max(runs, key=lambda v: v.pull_std if math.isfinite(v.pull_std) else math.inf)
            n = max(worst_w.n_ok, 2)
            tol_w = (
                pull_width_tolerance
                if pull_width_tolerance is not None
                else max(0.1, 3 / math.sqrt(2 * (n - 1)))
            )
            out.append(
                Check(
                    name=f"closure:pull_width{suffix}",
                    passed=bool(worst_w.pull_std <= 1 + tol_w),
                    value=worst_w.pull_std,
                    threshold=1 + tol_w,
                    detail=(
                        f"{what}: pulls mean {worst_w.pull_mean:+.3f}, width {worst_w.pull_std:.3f} at "
                        f"μ0 = {worst_w.mu_true:g} (nominal 0 and 1)"
                    ),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly result: templates, real yields and one summary per variant."""
        out: dict[str, Any] = to_jsonable(
            {
                "observable": self.observable,
                "edges": self.edges,
                "expected_signal": self.expected_signal,
                "expected_background": self.expected_background,
                "n_members": self.n_members,
                "template_signal": self.template_signal,
                "template_background": self.template_background,
                "model_var_signal": self.model_var_signal,
                "model_var_background": self.model_var_background,
                "real_signal": self.real_signal,
                "real_background": self.real_background,
                "variants": [v.to_dict() for v in self.variants],
            }
        )
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One terminal-table row per variant (and injected signal strength)."""
        return [v.to_dict() for v in self.variants]

    def add_to(
        self,
        report: ReportBuilder,
        *,
        text: str = _CLOSURE_TEXT,
    ) -> None:
        """Add the closure section (one row per variant and :func:`plot_closure`) to ``report``.

        Args:
            report: The report (see :class:`aalearn.core.result.ReportBuilder`).
            text: The section's introduction.
        """
        report.add_section("Closure", text=text, table=self.summary(), figures=[plot_closure(self)])


# --------------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------------
def _members(values: Any, *, name: str) -> list[FloatArray]:
    """One 1-D array or a sequence of K 1-D arrays (ensemble members)."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        parts = [values]
    elif isinstance(values, Sequence) and len(values) > 0 and all(np.ndim(v) == 1 for v in values):
        parts = list(values)
    else:
        parts = [values]
    out = [
        check_array(v, name=name if len(parts) == 1 else f"{name}[{k}]", ndim=1, dtype=np.float64)
        for k, v in enumerate(parts)
    ]
    for k, arr in enumerate(out):
        if arr.shape[0] < 2:
            raise ValueError(
                f"{name}{'' if len(out) == 1 else f'[{k}]'} has {arr.shape[0]} values; pass a sample"
            )
    return out


def _edges(
    bins: int | npt.ArrayLike,
    binning: str,
    sig: FloatArray,
    bkg: FloatArray,
    lo: float,
    hi: float,
    expected_signal: float,
    expected_background: float,
) -> FloatArray:
    if not isinstance(bins, int | np.integer) or isinstance(bins, bool):
        edges = check_array(bins, name="bins (edges)", ndim=1, dtype=np.float64)
        if edges.shape[0] < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be at least two strictly increasing values")
        return edges
    if bins < 1:
        raise ValueError(f"bins must be a positive number of bins, got {bins}")
    if binning == "uniform":
        return np.linspace(lo, hi, int(bins) + 1)
    if binning != "quantile":
        raise ValueError(f"binning must be 'quantile' or 'uniform', got {binning!r}")
    # equal expected (template) yield per bin; coinciding edges are merged
    values = np.concatenate([sig, bkg])
    weights = np.concatenate(
        [
            np.full(sig.shape[0], expected_signal / sig.shape[0]),
            np.full(bkg.shape[0], expected_background / bkg.shape[0]),
        ]
    )
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / weights.sum()
    inner = np.interp(np.arange(1, int(bins)) / int(bins), cum, values[order])
    return np.unique(np.concatenate([[lo], inner[(inner > lo) & (inner < hi)], [hi]]))


def _yields(values: FloatArray, edges: FloatArray, total: float) -> tuple[FloatArray, FloatArray]:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    w = total / values.shape[0]
    return counts * w, counts * w * w


def _fit_toys(
    templates: Templates,
    toys: FloatArray,
    asimov: FloatArray,
    pool_asimov: FloatArray,
    *,
    name: str,
    mu_true: float,
    template_boots: Sequence[tuple[Templates, FloatArray]] = (),
) -> ClosureVariant:
    pyhf = require("pyhf", purpose="the closure fits (aalearn.surrogates.closure)")
    failures = (pyhf.exceptions.FailedMinimization, ValueError, FloatingPointError, RuntimeError)
    m = Measurement(templates)
    mu_hat: list[float] = []
    mu_err: list[float] = []
    mu_stat: list[float] = []
    n_failed = 0
    for toy in toys:
        try:
            r = m.fit(toy)
        except failures:
            n_failed += 1
            continue
        if not (
            math.isfinite(r.mu_err) and r.mu_err > 0 and math.isfinite(r.mu_err_stat) and r.mu_err_stat > 0
        ):
            n_failed += 1
            continue
        mu_hat.append(r.mu_hat)
        mu_err.append(r.mu_err)
        mu_stat.append(r.mu_err_stat)
    try:
        mu_asimov = m.fit(asimov).mu_hat
    except failures:  # pragma: no cover - the Asimov fit of a valid histogram converges
        mu_asimov = math.nan
    boot = []
    for data in pool_asimov:
        try:
            boot.append(m.fit(data).mu_hat)
        except failures:  # pragma: no cover - as above
            continue
    pool_sigma = float(np.std(boot, ddof=1)) if len(boot) > 1 else 0.0
    tboot = []
    for t, boot_asimov in template_boots:
        try:
            tboot.append(Measurement(t).fit(boot_asimov).mu_hat)
        except failures:  # pragma: no cover - as above
            continue
    template_sigma = float(np.std(tboot, ddof=1)) if len(tboot) > 1 else 0.0
    return ClosureVariant(
        name=name,
        mu_true=float(mu_true),
        mu_hat=np.asarray(mu_hat, dtype=np.float64),
        mu_err=np.asarray(mu_err, dtype=np.float64),
        mu_err_stat=np.asarray(mu_stat, dtype=np.float64),
        n_toys=int(toys.shape[0]),
        n_failed=n_failed,
        mu_hat_asimov=float(mu_asimov),
        pool_sigma=pool_sigma,
        template_sigma=template_sigma,
    )


def closure_test(
    surrogate_signal: npt.ArrayLike | Sequence[npt.ArrayLike],
    surrogate_background: npt.ArrayLike | Sequence[npt.ArrayLike],
    real_signal: npt.ArrayLike,
    real_background: npt.ArrayLike,
    *,
    bins: int | npt.ArrayLike = 10,
    binning: Literal["quantile", "uniform"] = "quantile",
    mu_true: float | Sequence[float] = 1.0,
    expected_signal: float = 100.0,
    expected_background: float = 1000.0,
    n_toys: int = 200,
    model_nuisance: bool = True,
    staterror: bool = False,
    pool_bootstraps: int = 20,
    seed: int = 0,
    observable: str = "score",
    baseline_signal: npt.ArrayLike | None = None,
    baseline_background: npt.ArrayLike | None = None,
) -> ClosureResult:
    r"""Fit pseudo-data from the real generator with templates from the surrogate (see the module doc).

    Args:
        surrogate_signal: Observable values (classifier score, jet mass, …) of generated
            signal events: one array, or one array per ensemble member.
        surrogate_background: Same for generated background events.
        real_signal: Observable values of held-out real signal events (the pool the
            pseudo-data are drawn from).
        real_background: Same for real background events.
        bins: Number of bins or explicit edges. The outer edges of automatic bins span
            all values; values outside explicit edges are moved into the outer bins.
        binning: ``"quantile"`` (equal expected template yield per bin, no empty bins) or
            ``"uniform"``.
        mu_true: Injected signal strength(s) :math:`\mu_0`.
        expected_signal: :math:`E_s`, expected signal events at :math:`\mu = 1`.
        expected_background: :math:`E_b`, expected background events.
        n_toys: Pseudo-experiments per variant and :math:`\mu_0` (the same toys for both
            variants).
        model_nuisance: Also fit with the between-member variance as a per-bin nuisance
            (needs at least two members per class).
        staterror: Give the plain templates the Monte-Carlo statistical uncertainty of
            the generated samples (negligible for large samples; off by default, as it
            doubles the fit time).
        pool_bootstraps: Bootstrap copies of the real pool, and of the events behind each
            variant's templates, to measure their shares of the error of the bias (0:
            skip both; the error then holds only the toy statistics).
        seed: Seed of the toys and the pool bootstraps.
        observable: Name of the observable (for labels).
        baseline_signal: Observable values of real signal events independent of the pool
            (for example the surrogate's own training jets): templates for the
            ``"real_templates"`` baseline fit. Needs ``baseline_background``.
        baseline_background: Same for background events.

    Returns:
        The :class:`ClosureResult`.

    Raises:
        ValueError: For empty or non-finite inputs, ``model_nuisance`` with one member,
            bins without template yield, non-positive yields or ``n_toys < 2``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> members_s = [rng.beta(5, 2, 20_000) for _ in range(2)]
        >>> members_b = [rng.beta(2.5, 5, 20_000) for _ in range(2)]  # a biased background model
        >>> res = closure_test(members_s, members_b, rng.beta(5, 2, 100_000), rng.beta(2, 5, 100_000),
        ...                    n_toys=10, pool_bootstraps=0)
        >>> [c.name for c in res.checks()][:2], res.variant("plain").bias < -1
        (['closure:bias', 'closure:coverage'], True)
    """
    sig_members = _members(surrogate_signal, name="surrogate_signal")
    bkg_members = _members(surrogate_background, name="surrogate_background")
    real_s = check_array(real_signal, name="real_signal", ndim=1, dtype=np.float64)
    real_b = check_array(real_background, name="real_background", ndim=1, dtype=np.float64)
    if real_s.shape[0] < 2 or real_b.shape[0] < 2:
        raise ValueError("real_signal and real_background must each hold a pool of held-out real events")
    for label, value in (("expected_signal", expected_signal), ("expected_background", expected_background)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label} must be a finite positive number of events, got {value}")
    if isinstance(n_toys, bool) or not isinstance(n_toys, int | np.integer) or n_toys < 2:
        raise ValueError(f"n_toys must be an integer >= 2, got {n_toys!r}")
    if (
        isinstance(pool_bootstraps, bool)
        or not isinstance(pool_bootstraps, int | np.integer)
        or pool_bootstraps < 0
    ):
        raise ValueError(f"pool_bootstraps must be a non-negative integer, got {pool_bootstraps!r}")
    mus = [float(mu_true)] if isinstance(mu_true, int | float | np.number) else [float(v) for v in mu_true]
    if not mus or not all(math.isfinite(v) and v >= 0 for v in mus):
        raise ValueError(f"mu_true must be one or more finite non-negative signal strengths, got {mu_true!r}")
    n_members = min(len(sig_members), len(bkg_members))
    if model_nuisance and n_members < 2:
        raise ValueError(
            "model_nuisance needs the observable from at least two ensemble members per class "
            "(a list of arrays); pass model_nuisance=False for a single surrogate"
        )
    pooled_s = np.concatenate(sig_members)
    pooled_b = np.concatenate(bkg_members)
    everything = np.concatenate([pooled_s, pooled_b, real_s, real_b])
    lo, hi = float(everything.min()), float(everything.max())
    if not hi > lo:
        raise ValueError(f"all observable values are equal ({lo}); the fit needs a varying observable")
    edges = _edges(bins, binning, pooled_s, pooled_b, lo, hi, expected_signal, expected_background)
    sig, sig_w2 = _yields(pooled_s, edges, expected_signal)
    bkg, bkg_w2 = _yields(pooled_b, edges, expected_background)
    empty = np.flatnonzero(sig + bkg <= 0)
    if empty.size:
        raise ValueError(
            f"bins {empty[:10].tolist()} hold no generated events; use fewer bins or binning='quantile'"
        )
    var_s = var_b = None
    if n_members >= 2:
        var_s = np.var(np.stack([_yields(v, edges, expected_signal)[0] for v in sig_members]), axis=0, ddof=1)
        var_b = np.var(
            np.stack([_yields(v, edges, expected_background)[0] for v in bkg_members]), axis=0, ddof=1
        )
    real_sig_y = _yields(real_s, edges, expected_signal)[0]
    real_bkg_y = _yields(real_b, edges, expected_background)[0]

    variants: list[tuple[str, Templates]] = [
        (
            "plain",
            Templates(
                edges=edges,
                signal=sig,
                background=bkg,
                signal_sumw2=sig_w2 if staterror else None,
                background_sumw2=bkg_w2 if staterror else None,
            ),
        )
    ]
    if (baseline_signal is None) != (baseline_background is None):
        raise ValueError("pass both baseline_signal and baseline_background, or neither")
    if baseline_signal is not None and baseline_background is not None:
        base_s = check_array(baseline_signal, name="baseline_signal", ndim=1, dtype=np.float64)
        base_b = check_array(baseline_background, name="baseline_background", ndim=1, dtype=np.float64)
        if base_s.shape[0] < 2 or base_b.shape[0] < 2:
            raise ValueError("baseline_signal and baseline_background must each hold real events")
        (ys, ys_w2), (yb, yb_w2) = (
            _yields(base_s, edges, expected_signal),
            _yields(base_b, edges, expected_background),
        )
        if np.any(ys + yb <= 0):
            raise ValueError("the baseline (real-event) templates leave bins empty; use fewer bins")
        # the real templates are a finite sample too: they get their staterror
        baseline = Templates(
            edges=edges, signal=ys, background=yb, signal_sumw2=ys_w2, background_sumw2=yb_w2
        )
    else:
        baseline = None
    if model_nuisance and var_s is not None and var_b is not None:
        variants.append(
            (
                "model_nuisance",
                Templates(
                    edges=edges,
                    signal=sig,
                    background=bkg,
                    signal_sumw2=sig_w2 + var_s,
                    background_sumw2=bkg_w2 + var_b,
                ),
            )
        )
    if baseline is not None:
        variants.append((BASELINE, baseline))
    # Bootstrap copies of the events behind each variant's templates (own random stream).
    # The whole template pipeline is repeated: automatic bin edges are recomputed from the
    # resampled surrogate events and the real pool's expected histogram is rebinned with
    # them. Quantile edges follow the sample, but an edge shift moves the templates and the
    # pool's histogram alike (at mu0), so to first order it leaves mu-hat unchanged: holding
    # the edges fixed gives the same template_sigma, and it matches the spread of mu-hat over
    # independent template samples for both binnings (issue 17, 100 draws).
    boot_rng = np.random.default_rng([int(seed), 1])
    template_boots: dict[str, list[tuple[Templates, FloatArray, FloatArray]]] = {n: [] for n, _ in variants}
    auto_edges = isinstance(bins, int | np.integer) and not isinstance(bins, bool)
    for _ in range(int(pool_bootstraps)):
        res_s = pooled_s[boot_rng.integers(0, pooled_s.shape[0], pooled_s.shape[0])]
        res_b = pooled_b[boot_rng.integers(0, pooled_b.shape[0], pooled_b.shape[0])]
        edges_b = (
            _edges(bins, binning, res_s, res_b, lo, hi, expected_signal, expected_background)
            if auto_edges
            else edges
        )
        real_b_y = (
            _yields(real_s, edges_b, expected_signal)[0],
            _yields(real_b, edges_b, expected_background)[0],
        )
        for name, tmpl in variants:
            if name == BASELINE:
                src_s = base_s[boot_rng.integers(0, base_s.shape[0], base_s.shape[0])]
                src_b = base_b[boot_rng.integers(0, base_b.shape[0], base_b.shape[0])]
            else:
                src_s, src_b = res_s, res_b
            (bs, bs_w2), (bb, bb_w2) = (
                _yields(src_s, edges_b, expected_signal),
                _yields(src_b, edges_b, expected_background),
            )
            if np.any(bs + bb <= 0):
                continue
            extra_s: FloatArray | float = 0.0
            extra_b: FloatArray | float = 0.0
            if name == "model_nuisance":
                extra_s = np.var(
                    np.stack([_yields(v, edges_b, expected_signal)[0] for v in sig_members]), axis=0, ddof=1
                )
                extra_b = np.var(
                    np.stack([_yields(v, edges_b, expected_background)[0] for v in bkg_members]),
                    axis=0,
                    ddof=1,
                )
            boot = Templates(
                edges=edges_b,
                signal=bs,
                background=bb,
                signal_sumw2=None if tmpl.signal_sumw2 is None else bs_w2 + extra_s,
                background_sumw2=None if tmpl.background_sumw2 is None else bb_w2 + extra_b,
            )
            template_boots[name].append((boot, *real_b_y))
    rng = np.random.default_rng(seed)
    results: list[ClosureVariant] = []
    clipped_s = np.clip(real_s, edges[0], edges[-1])
    clipped_b = np.clip(real_b, edges[0], edges[-1])
    for mu in mus:
        toys = np.empty((int(n_toys), edges.shape[0] - 1))
        for t in range(int(n_toys)):
            n_s = rng.poisson(mu * expected_signal)
            n_b = rng.poisson(expected_background)
            h_s, _ = np.histogram(clipped_s[rng.integers(0, clipped_s.shape[0], n_s)], bins=edges)
            h_b, _ = np.histogram(clipped_b[rng.integers(0, clipped_b.shape[0], n_b)], bins=edges)
            toys[t] = h_s + h_b
        asimov = mu * real_sig_y + real_bkg_y
        pool = np.empty((int(pool_bootstraps), edges.shape[0] - 1))
        for b in range(int(pool_bootstraps)):
            bs = _yields(
                clipped_s[rng.integers(0, clipped_s.shape[0], clipped_s.shape[0])], edges, expected_signal
            )[0]
            bb = _yields(
                clipped_b[rng.integers(0, clipped_b.shape[0], clipped_b.shape[0])], edges, expected_background
            )[0]
            pool[b] = mu * bs + bb
        for name, templates in variants:
            results.append(
                _fit_toys(
                    templates,
                    toys,
                    asimov,
                    pool,
                    name=name,
                    mu_true=mu,
                    template_boots=[(t, mu * ys_b + yb_b) for t, ys_b, yb_b in template_boots[name]],
                )
            )
    return ClosureResult(
        observable=str(observable),
        edges=edges,
        template_signal=sig,
        template_background=bkg,
        model_var_signal=var_s,
        model_var_background=var_b,
        real_signal=real_sig_y,
        real_background=real_bkg_y,
        expected_signal=float(expected_signal),
        expected_background=float(expected_background),
        n_members=n_members,
        variants=tuple(results),
    )


def plot_closure(result: ClosureResult) -> Figure:
    """Templates versus the real pool, and the pull distribution of each variant with N(0, 1).

    Returns:
        A matplotlib figure (needs ``aalearn[report]``).
    """
    mu0 = result.variants[0].mu_true
    shown = [v for v in result.variants if math.isclose(v.mu_true, mu0)]
    with _style():
        fig = _new_figure((4.0 * (1 + len(shown)), 3.8), f"Closure ({result.observable})")
        axes = fig.subplots(1, 1 + len(shown), squeeze=False)[0]
        ax = axes[0]
        idx = np.arange(result.edges.shape[0] - 1)
        for vals, real, var, label, color in (
            (result.template_signal, result.real_signal, result.model_var_signal, "signal", "C0"),
            (
                result.template_background,
                result.real_background,
                result.model_var_background,
                "background",
                "C1",
            ),
        ):
            err = np.sqrt(var) if var is not None else None
            ax.errorbar(idx, vals, yerr=err, fmt="o", color=color, ms=4, label=f"surrogate {label}")
            ax.step(idx, real, where="mid", color=color, alpha=0.7, label=f"real {label}")
        ax.set_yscale("log")
        ax.set_xlabel(f"bin of {result.observable}")
        ax.set_ylabel("expected events")
        ax.legend(fontsize=7)
        grid = np.linspace(-4, 4, 200)
        for ax, v in zip(axes[1:], shown, strict=True):
            pulls = np.clip(v.pulls, -4.5, 4.5)
            ax.hist(pulls, bins=np.linspace(-4.5, 4.5, 31), density=True, color="C2", alpha=0.6, label="toys")
            ax.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), "k--", label="N(0, 1)")
            ax.set_xlabel(r"pull $(\hat\mu - \mu_0)/\sigma_{\hat\mu}$")
            ax.set_title(
                f"{v.name}: bias {v.bias:+.2f}σ, width {v.pull_std:.2f}, cov. {100 * v.coverage:.0f} %",
                fontsize=9,
            )
            ax.legend(fontsize=7)
    return fig
