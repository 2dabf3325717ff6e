r"""How many real events is a generative surrogate worth? Statistical amplification from an ensemble.

Butter, Diefenbacher, Kasieczka, Nachman, Plehn ("GANplifying event samples",
arXiv:2008.06545) compare, per bin of an observable, the mean squared error of bin
fractions estimated from generated events with that of a truth sample of size :math:`n`,
:math:`p(1-p)/n`; the truth size with the same error is the number of *equivalent events*
and its ratio to the training size the *amplification factor*.

Here an ensemble of :math:`K` surrogates (retrained on bootstrap resamples of the
training set, so that the spread includes the effect of the finite training data) each
generates :math:`n_\text{gen}` events. Per bin :math:`i` with truth probability
:math:`p_i`, member fractions :math:`\hat q_{ki}`, their mean :math:`\bar q_i` and
between-member variance :math:`s_i^2`:

* model variance :math:`\sigma^2_{\text{model},i} = s_i^2 - \bar q_i(1-\bar q_i)/n_\text{gen}`
  (the member spread without its sampling noise);
* squared bias :math:`b_i^2 = (\bar q_i - \hat p_i)^2 - s_i^2/K - \mathrm{Var}(\hat p_i)`
  (unbiased; :math:`\mathrm{Var}(\hat p_i) = \hat p_i(1-\hat p_i)/N_\text{truth}` for a
  held-out truth sample, 0 for known probabilities);
* the error of one surrogate used with :math:`n` generated events,
  :math:`\mathrm{MSE}_i(n) = b_i^2 + \sigma^2_{\text{model},i} + q_i(1-q_i)/n`, and
  :math:`n_{\text{equiv},i}(n) = p_i(1-p_i)/\mathrm{MSE}_i(n)`, which saturates at
  :math:`p_i(1-p_i)/(b_i^2 + \sigma^2_{\text{model},i})` however many events are generated;
* the generated-sample size beyond which more sampling buys nothing,
  :math:`n_{\text{sat},i} = q_i(1-q_i)/(b_i^2 + \sigma^2_{\text{model},i})`, where the
  sampling variance falls below the model's own error (at :math:`n_\text{sat}` the
  sampling still doubles the MSE; at :math:`10\,n_\text{sat}` it adds 10 %).

Summaries average over bins as Butter et al. do (the MSE summed over equal-probability
bins): :math:`n_\text{equiv} = \sum_i p_i(1-p_i)/\sum_i \mathrm{MSE}_i` and the
amplification :math:`G = n_\text{equiv}/n_\text{train}`. An empirical curve checks the
decomposition: with the first :math:`n` events of every member,
:math:`\widehat{\mathrm{MSE}}_i(n) = \frac1K\sum_k(\hat q_{ki} - \hat p_i)^2 - \mathrm{Var}(\hat p_i)`.
A perfect model has :math:`n_\text{equiv}(n) = n`; a biased one saturates.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> members = [rng.normal(size=20_000) for _ in range(4)]
    >>> res = amplification_from_samples(members, truth=rng.normal(size=200_000), n_train=1000, bins=10)
    >>> bool(0.5 < res.n_equiv_direct[-1] / res.n_gen_grid[-1] < 1.5)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aalearn.core.config import TrainConfig
from aalearn.core.jsonutil import to_jsonable
from aalearn.core.plotting import new_figure as _new_figure
from aalearn.core.plotting import style as _style
from aalearn.core.result import ReportBuilder
from aalearn.core.validation import check_array
from aalearn.surrogates.verdict import Check

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from aalearn.surrogates.models import Surrogate

__all__ = [
    "AmplificationResult",
    "amplification_from_samples",
    "amplification_study",
    "bootstrap_indices",
    "plot_amplification",
    "train_ensemble",
]

FloatArray = npt.NDArray[np.float64]


def _fractions(values: FloatArray, edges: FloatArray) -> FloatArray:
    counts, _ = np.histogram(values, bins=edges)
    return counts / values.shape[0]


@dataclass(frozen=True)
class AmplificationResult:
    r"""Per-bin bias, model variance, equivalent events and amplification (see the module doc).

    Attributes:
        observable: Name of the binned observable.
        edges: ``(B+1,)`` bin edges (outer edges may be infinite).
        p_true: ``(B,)`` truth probabilities :math:`p_i`.
        p_true_var: ``(B,)`` variance of :math:`\hat p_i` (0 for known probabilities).
        q_mean: ``(B,)`` mean member fraction :math:`\bar q_i`.
        bias: ``(B,)`` raw :math:`\bar q_i - \hat p_i`.
        bias2: ``(B,)`` unbiased :math:`b_i^2` (clipped at 0 per bin).
        model_var: ``(B,)`` :math:`\sigma^2_{\text{model},i}` (clipped at 0 per bin).
        n_members: Ensemble size :math:`K`.
        n_gen: Events generated per member.
        n_train: Training events (the reference of the amplification factor).
        n_truth: Size of the truth sample (``None`` for known probabilities).
        n_gen_grid: ``(G,)`` generated-sample sizes of the curves.
        n_equiv_direct: ``(G,)`` empirical :math:`n_\text{equiv}(n)` from member prefixes.
        n_equiv_model: ``(G,)`` :math:`n_\text{equiv}(n)` from the decomposition.
        bias2_total: :math:`\sum_i b_i^2` (unclipped per bin, clipped at 0 in total).
        model_var_total: :math:`\sum_i \sigma^2_{\text{model},i}` (same clipping).
        fit_seconds: Training time of each member, when known.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> res = amplification_from_samples([rng.normal(size=5000) for _ in range(2)],
        ...                                  truth=rng.normal(size=50_000), n_train=100, bins=5)
        >>> res.n_members, res.p_true.shape
        (2, (5,))
    """

    observable: str
    edges: FloatArray
    p_true: FloatArray
    p_true_var: FloatArray
    q_mean: FloatArray
    bias: FloatArray
    bias2: FloatArray
    model_var: FloatArray
    n_members: int
    n_gen: int
    n_train: int
    n_truth: int | None
    n_gen_grid: FloatArray
    n_equiv_direct: FloatArray
    n_equiv_model: FloatArray
    bias2_total: float
    model_var_total: float
    fit_seconds: tuple[float, ...] = field(default=())

    # ------------------------------------------------------------------ derived
    @property
    def model_mse(self) -> FloatArray:
        r"""Per-bin :math:`b_i^2 + \sigma^2_{\text{model},i}` (the saturation level)."""
        return np.asarray(self.bias2 + self.model_var, dtype=np.float64)

    @property
    def n_equiv_limit_per_bin(self) -> FloatArray:
        r"""Per-bin :math:`p_i(1-p_i)/(b_i^2 + \sigma^2_{\text{model},i})` (∞ where both vanish)."""
        num = self.p_true * (1.0 - self.p_true)
        mse = self.model_mse
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(mse > 0, num / np.where(mse > 0, mse, 1.0), np.inf)
        return np.asarray(out, dtype=np.float64)

    @property
    def amplification_per_bin(self) -> FloatArray:
        """Per-bin saturated amplification factor :math:`n_{\\text{equiv},i}/n_\\text{train}`."""
        return self.n_equiv_limit_per_bin / self.n_train

    @property
    def n_equiv_limit(self) -> float:
        r"""Bin-averaged saturated :math:`n_\text{equiv} = \sum p(1-p)/\sum(b^2+\sigma^2)` (∞ if 0)."""
        den = self.bias2_total + self.model_var_total
        num = float(np.sum(self.p_true * (1.0 - self.p_true)))
        return num / den if den > 0 else math.inf

    def n_equiv_at(self, n_gen: float) -> float:
        r""":math:`n_\text{equiv}` of one surrogate used with ``n_gen`` generated events."""
        samp = float(np.sum(self.q_mean * (1.0 - self.q_mean))) / float(n_gen)
        return float(np.sum(self.p_true * (1.0 - self.p_true))) / (
            self.bias2_total + self.model_var_total + samp
        )

    @property
    def n_equiv(self) -> float:
        """:math:`n_\\text{equiv}` at the members' own sample size ``n_gen``."""
        return self.n_equiv_at(self.n_gen)

    @property
    def amplification(self) -> float:
        """Saturated amplification factor :math:`G = n_\\text{equiv}/n_\\text{train}`."""
        return self.n_equiv_limit / self.n_train

    @property
    def n_gen_saturation(self) -> float:
        r"""Generated events beyond which more sampling buys nothing.

        :math:`n_\text{sat} = \sum_i q_i(1-q_i)/\sum_i(b_i^2+\sigma^2_{\text{model},i})` (∞ if 0).
        """
        den = self.bias2_total + self.model_var_total
        return float(np.sum(self.q_mean * (1.0 - self.q_mean))) / den if den > 0 else math.inf

    @property
    def truth_limited(self) -> bool:
        r"""Whether the model MSE is below the resolution of the truth sample.

        With a truth sample of :math:`N` events the bias is only measured to about
        :math:`\sum_i \mathrm{Var}(\hat p_i)`; an :math:`n_\text{equiv}` beyond about
        :math:`N` is then a lower-bound-free extrapolation.
        """
        return bool(self.n_truth is not None and self.n_equiv_limit > self.n_truth)

    # ------------------------------------------------------------------ verdict
    def _bin_label(self, i: int) -> str:
        lo, hi = float(self.edges[i]), float(self.edges[i + 1])
        return f"{self.observable} in [{lo:.4g}, {hi:.4g})"

    def checks(self, needed_events: float | None = None) -> list[Check]:
        r"""The amplification check of the verdict.

        Passes when the saturated :math:`n_\text{equiv}` reaches ``needed_events`` (the
        statistics the analysis needs); without it, when the surrogate is worth at least
        its training set (:math:`G \ge 1`; otherwise the training events themselves are
        the better sample). The detail names the bins (phase-space regions) whose own
        :math:`n_{\text{equiv},i}` falls short.

        Args:
            needed_events: Equivalent events the analysis needs; default ``n_train``.

        Returns:
            One :class:`~aalearn.surrogates.verdict.Check` named ``"amplification:n_equiv"``.

        Raises:
            ValueError: For a non-positive ``needed_events``.
        """
        if needed_events is None:
            needed = float(self.n_train)
            what = f"n_train = {self.n_train}"
        else:
            if not math.isfinite(needed_events) or needed_events <= 0:
                raise ValueError(f"needed_events must be a finite positive number, got {needed_events}")
            needed = float(needed_events)
            what = f"the {needed:.4g} events the analysis needs"
        value = self.n_equiv_limit
        per_bin = self.n_equiv_limit_per_bin
        short = [i for i in range(per_bin.shape[0]) if per_bin[i] < needed]
        regions = "; ".join(
            f"{self._bin_label(i)} (n_equiv {per_bin[i]:.3g})"
            for i in sorted(short, key=lambda i: per_bin[i])[:5]
        )
        detail = (
            f"n_equiv = {value:.4g} (saturated, {self.n_members} members, bins of {self.observable}) "
            f"vs {what}; amplification G = {self.amplification:.3g}; extra sampling buys nothing beyond "
            f"~{self.n_gen_saturation:.3g} generated events"
        )
        if short:
            detail += f"; {len(short)}/{per_bin.shape[0]} bins fall short: {regions}"
        if self.truth_limited:
            detail += f" (beyond the {self.n_truth}-event truth sample: the bias is barely resolved)"
        return [
            Check(
                name="amplification:n_equiv",
                passed=bool(value >= needed),
                value=value,
                threshold=needed,
                detail=detail,
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary and per-bin arrays (non-finite numbers become ``None``)."""
        out: dict[str, Any] = to_jsonable(
            {
                "observable": self.observable,
                "n_members": self.n_members,
                "n_gen": self.n_gen,
                "n_train": self.n_train,
                "n_truth": self.n_truth,
                "n_equiv": self.n_equiv,
                "n_equiv_limit": self.n_equiv_limit,
                "amplification": self.amplification,
                "amplification_at_n_gen": self.n_equiv / self.n_train,
                "n_gen_saturation": self.n_gen_saturation,
                "bias2_total": self.bias2_total,
                "model_var_total": self.model_var_total,
                "truth_limited": self.truth_limited,
                "fit_seconds": list(self.fit_seconds),
                "bins": {
                    "edges": self.edges,
                    "p_true": self.p_true,
                    "q_mean": self.q_mean,
                    "bias": self.bias,
                    "bias2": self.bias2,
                    "model_var": self.model_var,
                    "n_equiv_limit": self.n_equiv_limit_per_bin,
                    "amplification": self.amplification_per_bin,
                },
                "curve": {
                    "n_gen": self.n_gen_grid,
                    "n_equiv_direct": self.n_equiv_direct,
                    "n_equiv_model": self.n_equiv_model,
                },
            }
        )
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One terminal-table row: the equivalent events, the amplification and the saturation.

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> res = amplification_from_samples([rng.normal(size=2000) for _ in range(2)],
            ...                                  truth=rng.normal(size=20_000), n_train=100, bins=4)
            >>> sorted(res.summary()[0])[:2]
            ['amplification', 'n_equiv']
        """
        d = self.to_dict()
        return [
            {k: d[k] for k in ("n_equiv", "n_equiv_limit", "amplification", "n_gen_saturation", "n_train")}
        ]

    def add_to(self, report: ReportBuilder, *, title: str | None = None) -> None:
        """Add the amplification section (summary table and :func:`plot_amplification`) to ``report``.

        Args:
            report: The report (see :class:`aalearn.core.result.ReportBuilder`).
            title: Section title (default ``"Amplification (<observable>)"``).
        """
        report.add_section(
            title or f"Amplification ({self.observable})",
            text=(
                "Equivalent events n_equiv = p(1-p)/MSE per equal-probability bin of the held-out jets "
                "(Butter et al., arXiv:2008.06545)."
            ),
            table=self.summary()[0],
            figures=[plot_amplification(self)],
        )


def _grid(n_gen: int, n_points: int = 8) -> FloatArray:
    lo = max(10, n_gen // 1000)
    return np.unique(np.round(np.geomspace(lo, n_gen, n_points)).astype(np.int64)).astype(np.float64)


def amplification_from_samples(
    members: Sequence[npt.ArrayLike],
    *,
    n_train: int,
    truth: npt.ArrayLike | None = None,
    truth_probabilities: npt.ArrayLike | None = None,
    bins: int | npt.ArrayLike = 20,
    observable: str = "x",
    n_gen_grid: Sequence[int] | None = None,
    fit_seconds: Sequence[float] = (),
) -> AmplificationResult:
    """Amplification of an ensemble from its generated values of one observable.

    Args:
        members: ``K ≥ 2`` arrays (one per ensemble member) of the observable in events
            generated by that member; all of the same length ``n_gen``.
        n_train: Training events per member (reference of the amplification factor).
        truth: A large held-out truth sample of the observable (its bin fractions estimate
            :math:`p_i`; their variance is corrected for).
        truth_probabilities: Known bin probabilities instead of ``truth`` (needs explicit
            edges in ``bins``).
        bins: Number of equal-probability bins from the truth sample's quantiles (outer
            edges ±∞, so that every event falls in a bin, as in Butter et al.), or
            explicit edges (events outside are in no bin).
        observable: Name of the observable (for labels).
        n_gen_grid: Generated-sample sizes of the curves (default 8 log-spaced sizes up to
            ``n_gen``).
        fit_seconds: Training time of each member (recorded only).

    Returns:
        The :class:`AmplificationResult`.

    Raises:
        ValueError: For fewer than 2 members, members of different lengths, non-finite
            values, neither or both of ``truth``/``truth_probabilities``, quantile bins
            without a truth sample, probabilities that do not match the bins or lie
            outside [0, 1], or grid sizes above ``n_gen``.

    Example:
        >>> import numpy as np
        >>> from scipy import stats
        >>> edges = np.array([-np.inf, -1.0, 0.0, 1.0, np.inf])
        >>> rng = np.random.default_rng(0)
        >>> shifted = [rng.normal(0.1, 1.0, 100_000) for _ in range(3)]  # a biased model
        >>> res = amplification_from_samples(shifted, truth_probabilities=np.diff(stats.norm.cdf(edges)),
        ...                                  bins=edges, n_train=1000)
        >>> bool(res.n_equiv_limit < 2000), res.checks()[0].name
        (True, 'amplification:n_equiv')
    """
    if isinstance(members, np.ndarray) and members.ndim == 1:
        raise ValueError(
            "members must be a sequence of K >= 2 arrays (one per ensemble member), not one array"
        )
    samples = [check_array(m, name=f"members[{k}]", ndim=1, dtype=np.float64) for k, m in enumerate(members)]
    if len(samples) < 2:
        raise ValueError(
            f"amplification needs at least 2 ensemble members for the model variance, got {len(samples)}"
        )
    n_gen = samples[0].shape[0]
    if n_gen < 10 or any(s.shape[0] != n_gen for s in samples):
        raise ValueError(
            "every member must provide the same number (>= 10) of generated values; "
            f"got {[s.shape[0] for s in samples]}"
        )
    if isinstance(n_train, bool) or not isinstance(n_train, int | np.integer) or n_train < 1:
        raise ValueError(f"n_train must be a positive integer, got {n_train!r}")
    if (truth is None) == (truth_probabilities is None):
        raise ValueError(
            "pass exactly one of truth (a held-out sample) and truth_probabilities (known p per bin)"
        )
    t_arr = None if truth is None else check_array(truth, name="truth", ndim=1, dtype=np.float64)
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}")
        if t_arr is None:
            raise ValueError(
                "quantile bins need a truth sample; with truth_probabilities pass explicit edges"
            )
        inner = np.quantile(t_arr, np.arange(1, int(bins)) / int(bins))
        edges = np.unique(np.concatenate([[-np.inf], inner, [np.inf]]))
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.shape[0] < 2 or np.any(np.isnan(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError("bins must be a number of bins or at least two strictly increasing edges")
    n_bins = edges.shape[0] - 1
    if t_arr is not None:
        if t_arr.shape[0] < 10:
            raise ValueError(f"the truth sample has {t_arr.shape[0]} values; pass a large held-out sample")
        p = _fractions(t_arr, edges)
        p_var = p * (1.0 - p) / t_arr.shape[0]
        n_truth: int | None = int(t_arr.shape[0])
    else:
        p = check_array(truth_probabilities, name="truth_probabilities", ndim=1, dtype=np.float64)
        if p.shape[0] != n_bins:
            raise ValueError(f"truth_probabilities has {p.shape[0]} entries for {n_bins} bins")
        if np.any(p < 0) or np.any(p > 1) or p.sum() > 1 + 1e-9:
            raise ValueError("truth_probabilities must lie in [0, 1] and sum to at most 1")
        p_var = np.zeros(n_bins)
        n_truth = None
    k = len(samples)
    q = np.stack([_fractions(s, edges) for s in samples])  # (K, B)
    q_mean = q.mean(axis=0)
    s2 = q.var(axis=0, ddof=1)
    model_var_raw = s2 - q_mean * (1.0 - q_mean) / n_gen
    bias = q_mean - p
    bias2_raw = bias**2 - s2 / k - p_var
    grid = (
        _grid(n_gen)
        if n_gen_grid is None
        else np.asarray(sorted({int(g) for g in n_gen_grid}), dtype=np.float64)
    )
    if grid.size == 0 or grid.min() < 1 or grid.max() > n_gen:
        raise ValueError(f"n_gen_grid values must lie in [1, {n_gen}], got {list(grid)}")
    num = float(np.sum(p * (1.0 - p)))
    bias2_total = max(float(bias2_raw.sum()), 0.0)
    model_var_total = max(float(model_var_raw.sum()), 0.0)
    direct = []
    model = []
    for g in grid:
        n = int(g)
        qg = np.stack([_fractions(s[:n], edges) for s in samples])
        mse = float(np.mean(np.sum((qg - p) ** 2, axis=1)) - p_var.sum())
        direct.append(num / mse if mse > 0 else math.inf)
        model.append(num / (bias2_total + model_var_total + float(np.sum(q_mean * (1.0 - q_mean))) / n))
    return AmplificationResult(
        observable=str(observable),
        edges=edges,
        p_true=p,
        p_true_var=p_var,
        q_mean=q_mean,
        bias=bias,
        bias2=np.clip(bias2_raw, 0.0, None),
        model_var=np.clip(model_var_raw, 0.0, None),
        n_members=k,
        n_gen=int(n_gen),
        n_train=int(n_train),
        n_truth=n_truth,
        n_gen_grid=grid,
        n_equiv_direct=np.asarray(direct, dtype=np.float64),
        n_equiv_model=np.asarray(model, dtype=np.float64),
        bias2_total=bias2_total,
        model_var_total=model_var_total,
        fit_seconds=tuple(float(v) for v in fit_seconds),
    )


# --------------------------------------------------------------------------------------
# ensembles of surrogates
# --------------------------------------------------------------------------------------
def bootstrap_indices(n: int, *, labels: npt.ArrayLike | None = None, seed: int = 0) -> npt.NDArray[np.int64]:
    """Row indices of a bootstrap resample, stratified by class when ``labels`` are given.

    Example:
        >>> bootstrap_indices(5, seed=0).shape
        (5,)
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        return rng.integers(0, n, size=n).astype(np.int64)
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    parts = [rng.choice(np.flatnonzero(y == c), size=int(np.sum(y == c)), replace=True) for c in np.unique(y)]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def train_ensemble(
    make: Callable[[], Surrogate],
    x: npt.ArrayLike,
    y: npt.ArrayLike | None = None,
    *,
    n_members: int = 5,
    bootstrap: bool = True,
    seed: int = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    config: TrainConfig | None = None,
) -> list[Surrogate]:
    """Train ``n_members`` surrogates, each on its own bootstrap resample (Butter et al., arXiv:2008.06545).

    Member ``k`` uses the bootstrap seed and fit seed ``seed + k``; the resample is
    stratified by class when labels are given. Without ``bootstrap`` only the
    initialisation and batching differ.

    Args:
        make: Factory of an unfitted surrogate (for example ``lambda: FlowSurrogate()``).
        x: ``(N, D)`` training rows.
        y: ``(N,)`` labels or ``None``.
        n_members: Ensemble size (≥ 2).
        bootstrap: Resample the training rows with replacement per member.
        seed: Base seed.
        fit_kwargs: Keyword arguments of ``fit`` (``epochs``, ``batch_size``, …; not ``seed``).
        config: Training settings of every member (member ``k`` fits with
            ``config.replace(seed=seed + k)``; the config's own seed is not used).

    Returns:
        The fitted members.

    Raises:
        ValueError: For ``n_members < 2``, a ``seed`` in ``fit_kwargs`` or bad data.

    Example:
        >>> import numpy as np
        >>> from aalearn.surrogates.models import FlowMatchingSurrogate
        >>> x = np.random.default_rng(0).normal(size=(200, 1))
        >>> ens = train_ensemble(lambda: FlowMatchingSurrogate(hidden=(8,)), x, n_members=2,
        ...                      fit_kwargs={"epochs": 1})
        >>> len(ens)
        2
    """
    if isinstance(n_members, bool) or not isinstance(n_members, int | np.integer) or n_members < 2:
        raise ValueError(
            f"n_members must be an integer >= 2 (the model variance needs two), got {n_members!r}"
        )
    kwargs = dict(fit_kwargs or {})
    if "seed" in kwargs:
        raise ValueError("fit_kwargs must not contain 'seed'; pass seed= to train_ensemble")
    if "config" in kwargs:
        raise ValueError("fit_kwargs must not contain 'config'; pass config= to train_ensemble")
    xa = check_array(x, name="x", ndim=2, dtype=np.float64)
    ya = None if y is None else np.asarray(y)
    out: list[Surrogate] = []
    for k in range(int(n_members)):
        idx = (
            bootstrap_indices(xa.shape[0], labels=ya, seed=seed + k) if bootstrap else np.arange(xa.shape[0])
        )
        model = make()
        if config is None:
            model.fit(xa[idx], None if ya is None else ya[idx], seed=seed + k, **kwargs)
        else:
            model.fit(
                xa[idx], None if ya is None else ya[idx], config=config.replace(seed=seed + k), **kwargs
            )
        out.append(model)
    return out


def amplification_study(
    members: Sequence[Surrogate],
    truth: npt.ArrayLike,
    *,
    n_train: int,
    observable: Callable[[FloatArray], npt.ArrayLike] | int = 0,
    observable_name: str | None = None,
    label: int | None = None,
    n_gen: int = 50_000,
    bins: int | npt.ArrayLike = 20,
    seed: int = 0,
) -> AmplificationResult:
    """Amplification of fitted ensemble members against held-out truth rows.

    Args:
        members: Fitted surrogates (for example from :func:`train_ensemble`).
        truth: ``(N, D)`` held-out truth rows (of class ``label`` for a conditional model).
        n_train: Training rows (of the studied class) per member.
        observable: Column index of the binned observable, or a function of the
            ``(n, D)`` rows returning ``(n,)`` values (for example the jet mass).
        observable_name: Name for labels (default ``"column <i>"`` or the function name).
        label: Class to generate for a conditional model.
        n_gen: Events generated per member (member ``k`` uses seed ``seed + k``).
        bins: As for :func:`amplification_from_samples`.
        seed: Base sampling seed.

    Returns:
        The :class:`AmplificationResult`.

    Raises:
        ValueError: For bad rows, an out-of-range column or an observable of the wrong length.
    """
    t = check_array(truth, name="truth", ndim=2, dtype=np.float64)

    def obs(rows: FloatArray) -> FloatArray:
        if callable(observable):
            v = check_array(observable(rows), name="observable values", ndim=1, dtype=np.float64)
            if v.shape[0] != rows.shape[0]:
                raise ValueError(f"the observable returned {v.shape[0]} values for {rows.shape[0]} rows")
            return v
        if not 0 <= int(observable) < rows.shape[1]:
            raise ValueError(f"observable column {observable} out of range for {rows.shape[1]} columns")
        return rows[:, int(observable)]

    name = observable_name or (
        str(getattr(observable, "__name__", "observable")) if callable(observable) else f"column {observable}"
    )
    samples = [obs(m.sample(n_gen, label, seed=seed + k)) for k, m in enumerate(members)]
    return amplification_from_samples(
        samples,
        truth=obs(t),
        n_train=n_train,
        bins=bins,
        observable=name,
        fit_seconds=[float(m.fit_seconds_) for m in members],
    )


def plot_amplification(result: AmplificationResult) -> Figure:
    """Two panels: :math:`n_\\text{equiv}` versus generated events, and the per-bin amplification.

    Left: the empirical and the decomposed :math:`n_\\text{equiv}(n)`, the line
    :math:`n_\\text{equiv} = n` of a perfect model, the training size and the saturation
    level. Right: the per-bin saturated amplification factor with :math:`G = 1`.

    Returns:
        A matplotlib figure (needs ``aalearn[report]``).
    """
    with _style():
        fig = _new_figure((10.0, 4.0), f"Amplification ({result.observable})")
        ax1, ax2 = fig.subplots(1, 2)
        g = result.n_gen_grid
        ax1.plot(g, g, color="0.6", ls=":", label="perfect model ($n_{equiv} = n$)")
        finite = np.isfinite(result.n_equiv_direct)
        ax1.plot(g[finite], result.n_equiv_direct[finite], "o", label="ensemble (direct)")
        ax1.plot(g, result.n_equiv_model, "-", label="bias² + model var + sampling")
        ax1.axhline(result.n_train, color="C3", ls="--", label=f"$n_{{train}}$ = {result.n_train}")
        if math.isfinite(result.n_equiv_limit):
            ax1.axhline(result.n_equiv_limit, color="C2", ls="-.", label="saturation")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("generated events per surrogate")
        ax1.set_ylabel("$n_{equiv}$")
        ax1.legend(fontsize=8)
        amp = result.amplification_per_bin
        idx = np.arange(amp.shape[0])
        shown = np.where(np.isfinite(amp), amp, np.nan)
        ax2.bar(idx, shown, color="C0")
        ax2.axhline(1.0, color="C3", ls="--", label="G = 1")
        ax2.set_yscale("log")
        ax2.set_xlabel(f"bin of {result.observable} (equal truth probability)")
        ax2.set_ylabel("amplification $n_{equiv,i}/n_{train}$")
        ax2.legend(fontsize=8)
    return fig
