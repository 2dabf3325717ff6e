r"""Inference-aware training: INFERNO and neos (loss = expected variance of the POI after profiling).

INFERNO (de Castro & Dorigo, Comput. Phys. Commun. 244 (2019) 170, arXiv:1806.04743)
trains a network whose :math:`b` outputs define the bins of a summary statistic. The
histogram is relaxed with a softmax of temperature :math:`\tau`, so that the expected
counts are differentiable in the network's weights:

.. math::

    \hat n_{k,i} = \frac{N_k}{|B_k|}\sum_{x \in B_k}
        \operatorname{softmax}\bigl(f(x)/\tau\bigr)_i ,\qquad
    n_i(\mu, \nu) = \mu\,\hat n_{s,i}(\nu) + \hat n_{b,i}(\nu),

with :math:`N_k` the expected number of events of sample :math:`k` (signal, background)
and :math:`B_k` its rows in the batch. The nuisance parameters :math:`\nu` enter through
differentiable transformations of the data (``"shift"``: :math:`x_c \to x_c + \nu - \nu_0`;
``"rate"``: :math:`x_c \to x_c\,\nu_0/\nu`), through template interpolation of varied
data sets (``"histosys"``, pyhf's ``code4p``) and through normalisation factors
(``"normsys"``, pyhf's ``code4``; ``"norm"``: :math:`n_k \to n_k\,\nu/\nu_0`). The binned
Poisson likelihood of the Asimov data set :math:`A_i = n_i(\mu_0, \nu_0)` with Gaussian
constraint terms,

.. math::

    -\log L(\mu, \nu) = \sum_i \bigl[n_i - A_i \log n_i\bigr]
        + \sum_{j\ \text{constrained}} \frac{(\nu_j - \nu_{0,j})^2}{2\sigma_j^2} + \text{const},

gives the Fisher information :math:`I = \nabla^2(-\log L)` at :math:`(\mu_0, \nu_0)`
(computed by autodiff, twice through the network) and the loss is the variance of
:math:`\hat\mu` after profiling the nuisances, :math:`[I^{-1}]_{\mu\mu}` (Cramér–Rao).
With ``mc_events`` the templates' MC statistical uncertainty (pyhf ``staterror``, one
:math:`\gamma_i` per bin) is profiled out too: bin :math:`i`'s Fisher term
:math:`\partial n \partial n^\top / n_i` becomes :math:`\partial n \partial n^\top / (n_i + V_i)`
(derivation in :mod:`aalearn.training.staterror`).

neos (Simpson & Heinrich, arXiv:2203.05570) is the same idea for a one-output network:
the histogram of the score :math:`s = \sigma(f(x))` is relaxed with a Gaussian kernel
density estimate (bin :math:`i` receives :math:`\Phi((e_{i+1}-s)/h) - \Phi((e_i-s)/h)`),
and the loss is :math:`\sigma_\mu` from the same profile likelihood
(:class:`NeosStrategy`, registered as ``"neos"``).

Why not pyhf: pyhf's PyTorch backend evaluates a ``pyhf.Model`` whose templates are
fixed when the model is built from its JSON specification (they are converted to
constant tensors), so no gradient reaches the network that made the histograms; neos
works around this with JAX pytrees, which PyTorch has no counterpart of. The likelihood
is therefore hand-built here (:func:`expected_counts`, :func:`asimov_nll`), with pyhf's
interpolation codes, and the tests check :func:`binned_logpdf` against ``pyhf.Model.logpdf``
on fixed histograms to :math:`10^{-6}`.

Example:
    >>> import torch
    >>> h = soft_histogram(torch.tensor([[10.0, 0.0], [0.0, 10.0], [0.0, 10.0]]), tau=0.1)
    >>> [round(v, 3) for v in h.tolist()]
    [1.0, 2.0]
    >>> from aalearn.training.strategy import get_strategy
    >>> s = get_strategy("inferno", signal_expected=50, background_expected=1000,
    ...                  nuisances=[{"name": "r", "kind": "shift", "column": 0, "nominal": 2.0}])
    >>> s.parameter_names
    ['mu', 'r']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aalearn.data.dataset import LABEL_TOP
from aalearn.inference.systematics import check_histosys_method
from aalearn.training.inferno_histosys import Plan, histosys_plan, treat
from aalearn.training.staterror import check_mc_events, mc_variance, staterror_scale
from aalearn.training.strategy import Batch, Strategy, TrainingData, logits_of, register_strategy

__all__ = [
    "EMPTY_BIN_FRACTION",
    "NUISANCE_KINDS",
    "InfernoStrategy",
    "NeosStrategy",
    "Nuisance",
    "SoftBinClassifier",
    "asimov_fisher",
    "asimov_nll",
    "binned_logpdf",
    "code4_factor",
    "code4p_delta",
    "expected_counts",
    "fisher_information",
    "histosys_templates",
    "inferno_mlp",
    "informative_bins",
    "kde_histogram",
    "sample_counts",
    "soft_histogram",
]

#: Kinds of nuisance parameter: data transforms (``shift``, ``rate``), template
#: interpolation (``histosys``), normalisation (``normsys``, ``norm``).
NUISANCE_KINDS = ("shift", "rate", "norm", "histosys", "normsys")
_SAMPLES = ("signal", "background")


# --------------------------------------------------------------------------- relaxed histograms
def soft_histogram(logits: Tensor, tau: float = 0.1, weight: Tensor | None = None) -> Tensor:
    r"""Softmax-relaxed histogram :math:`\sum_x w_x\,\mathrm{softmax}(f(x)/\tau)_i` (arXiv:1806.04743, Eq. 7).

    Args:
        logits: Network outputs ``(N, n_bins)``; bin :math:`i` is "the largest output is :math:`i`".
        tau: Temperature :math:`\tau > 0`; :math:`\tau \to 0` gives the hard histogram of the arg-max.
        weight: Optional per-row weights ``(N,)``.

    Returns:
        Soft counts ``(n_bins,)`` summing to :math:`\sum_x w_x`.

    Example:
        >>> soft_histogram(torch.zeros(4, 2), tau=1.0).tolist()
        [2.0, 2.0]
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"soft_histogram needs logits of shape (N, n_bins ≥ 2), got {tuple(logits.shape)}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}")
    p = torch.softmax(logits / tau, dim=1)
    return p.sum(dim=0) if weight is None else weight @ p


def kde_histogram(
    scores: Tensor, edges: Tensor, bandwidth: float = 0.09, weight: Tensor | None = None
) -> Tensor:
    r"""Kernel-density relaxed histogram of a 1-D score (neos, arXiv:2203.05570; the ``relaxed`` library).

    Each value contributes :math:`\Phi((e_{i+1}-s)/h) - \Phi((e_i-s)/h)` to bin :math:`i`
    (Gaussian kernel of bandwidth :math:`h`); :math:`h \to 0` gives the hard histogram.

    Example:
        >>> h = kde_histogram(torch.tensor([0.25, 0.75]), torch.tensor([0.0, 0.5, 1.0]), bandwidth=1e-3)
        >>> [round(v, 6) for v in h.tolist()]
        [1.0, 1.0]
    """
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise ValueError("edges must be a 1-D tensor of at least 2 bin edges")
    cdf = torch.special.ndtr((edges[None, :] - scores.reshape(-1, 1)) / bandwidth)
    per_row = cdf[:, 1:] - cdf[:, :-1]
    return per_row.sum(dim=0) if weight is None else weight @ per_row


# --------------------------------------------------------------------------- interpolation (pyhf codes)
def code4p_delta(alpha: Tensor, nominal: Tensor, up: Tensor, down: Tensor) -> Tensor:
    r"""Additive histosys shift with pyhf's ``code4p`` interpolation (smooth at :math:`\alpha = 0`).

    For :math:`|\alpha| \le 1`: :math:`\alpha S + \alpha^2 A (15 + \alpha^2(3\alpha^2 - 10))` with
    :math:`S = (\delta_+ + \delta_-)/2`, :math:`A = (\delta_+ - \delta_-)/16`,
    :math:`\delta_+ = u - n`, :math:`\delta_- = n - d`; linear beyond.

    Example:
        >>> n, u, d = torch.tensor([10.0]), torch.tensor([12.0]), torch.tensor([9.0])
        >>> [float(code4p_delta(torch.tensor(a), n, u, d)) for a in (1.0, -1.0, 0.0)]
        [2.0, -1.0, 0.0]
    """
    d_up, d_dn = up - nominal, nominal - down
    s, a = 0.5 * (d_up + d_dn), 0.0625 * (d_up - d_dn)
    a2 = alpha * alpha
    inner = alpha * s + a2 * (a2 * (3.0 * a2 - 10.0) + 15.0) * a
    return torch.where(alpha > 1, alpha * d_up, torch.where(alpha < -1, alpha * d_dn, inner))


def _code4_coefficients(hi: float, lo: float) -> np.ndarray:
    """Coefficients :math:`a_1..a_6` of pyhf's ``code4`` polynomial (value, slope, curvature match at ±1)."""
    matrix = np.array(
        [
            [1, 1, 1, 1, 1, 1],
            [-1, 1, -1, 1, -1, 1],
            [1, 2, 3, 4, 5, 6],
            [1, -2, 3, -4, 5, -6],
            [0, 2, 6, 12, 20, 30],
            [0, 2, -6, 12, -20, 30],
        ],
        dtype=np.float64,
    )
    lh, ll = math.log(hi), math.log(lo)
    rhs = np.array([hi - 1, lo - 1, hi * lh, -lo * ll, hi * lh**2, lo * ll**2])
    return np.linalg.solve(matrix, rhs)


def code4_factor(alpha: Tensor, hi: float, lo: float) -> Tensor:
    r"""Multiplicative normsys factor with pyhf's ``code4`` (exponential beyond :math:`|\alpha| = 1`).

    Example:
        >>> [round(float(code4_factor(torch.tensor(a), 1.1, 0.8)), 6) for a in (1.0, -1.0, 0.0, 2.0)]
        [1.1, 0.8, 1.0, 1.21]
    """
    if not (hi > 0 and lo > 0):
        raise ValueError(f"normsys factors must be > 0, got hi={hi!r}, lo={lo!r}")
    coef = torch.as_tensor(_code4_coefficients(hi, lo), dtype=alpha.dtype, device=alpha.device)
    powers = torch.stack([alpha**k for k in range(1, 7)])
    inner = 1.0 + (coef * powers).sum()
    outer = torch.where(alpha >= 1, torch.as_tensor(hi, dtype=alpha.dtype) ** alpha.abs(), lo ** alpha.abs())
    return torch.where(alpha.abs() >= 1, outer, inner)


# --------------------------------------------------------------------------- nuisances and the likelihood
@dataclass(frozen=True)
class Nuisance:
    """One nuisance parameter of the inference-aware loss.

    Attributes:
        name: Parameter name.
        kind: One of :data:`NUISANCE_KINDS`.
        sample: ``"background"`` (default) or ``"signal"``: the sample it acts on.
        nominal: Nominal value :math:`\\nu_0` (default 0 for ``histosys``/``normsys``; required otherwise).
        sigma: Width of the Gaussian constraint, or ``None`` for a free parameter
            (default 1 for ``histosys``/``normsys``, as pyhf).
        column: Feature column of a ``shift``/``rate`` transform.
        up: ``histosys``: name of the auxiliary array holding the up-varied features of
            the same rows; ``normsys``: the up factor.
        down: As ``up``, for the down variation.

    Example:
        >>> Nuisance.from_dict({"name": "fsr", "kind": "histosys", "up": "x_up", "down": "x_down"}).sigma
        1.0
    """

    name: str
    kind: str
    sample: str = "background"
    nominal: float | None = None
    sigma: float | None = None
    column: int | None = None
    up: str | float | None = None
    down: str | float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name == "mu":
            raise ValueError(f"nuisance name must be a non-empty string other than 'mu', got {self.name!r}")
        if self.kind not in NUISANCE_KINDS:
            raise ValueError(f"nuisance {self.name!r}: kind must be one of {', '.join(NUISANCE_KINDS)}")
        if self.sample not in _SAMPLES:
            raise ValueError(f"nuisance {self.name!r}: sample must be 'signal' or 'background'")
        if self.kind in ("histosys", "normsys"):
            object.__setattr__(self, "nominal", 0.0 if self.nominal is None else float(self.nominal))
            object.__setattr__(self, "sigma", 1.0 if self.sigma is None else self.sigma)
            if self.kind == "histosys" and not (isinstance(self.up, str) and isinstance(self.down, str)):
                raise ValueError(f"histosys {self.name!r} needs up/down names of auxiliary feature arrays")
            if self.kind == "normsys" and not (
                isinstance(self.up, (int, float))
                and isinstance(self.down, (int, float))
                and self.up > 0 < self.down
            ):
                raise ValueError(f"normsys {self.name!r} needs positive up/down factors")
        elif self.nominal is None or not math.isfinite(float(self.nominal)):
            raise ValueError(f"nuisance {self.name!r} ({self.kind}) needs a finite nominal value")
        if self.kind in ("rate", "norm") and float(self.nominal or 0.0) == 0.0:
            raise ValueError(f"nuisance {self.name!r} ({self.kind}) needs a non-zero nominal value")
        if self.kind in ("shift", "rate") and (
            isinstance(self.column, bool) or not isinstance(self.column, int) or self.column < 0
        ):
            raise ValueError(f"nuisance {self.name!r} ({self.kind}) needs a feature column index ≥ 0")
        if self.sigma is not None and not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"nuisance {self.name!r}: sigma must be > 0 or None (free), got {self.sigma!r}")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | Nuisance) -> Nuisance:
        """Build from a mapping (the JSON form of :meth:`to_dict`)."""
        if isinstance(spec, Nuisance):
            return spec
        if not isinstance(spec, Mapping):
            raise ValueError(
                f"a nuisance must be a mapping such as {{'name': ..., 'kind': ...}}, got {spec!r}"
            )
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown nuisance setting(s) {sorted(unknown)}")
        return cls(**dict(spec))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


#: Histogram of a feature array as *fractions times rows*: ``hist(x) -> (n_bins,)``; with sample
#: weights :func:`expected_counts` calls ``hist(x, w)`` (the weighted sum, ``(N,)`` weights).
HistogramFn = Callable[..., Tensor]


def _transform(x: Tensor, nuisances: Sequence[Nuisance], p: Tensor, sample: str) -> Tensor:
    """Apply the ``shift``/``rate`` transforms of ``sample`` at parameter values ``p[1:]``."""
    for j, nu in enumerate(nuisances):
        if nu.sample != sample or nu.kind not in ("shift", "rate"):
            continue
        assert nu.column is not None
        assert nu.nominal is not None
        onehot = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
        onehot[nu.column] = 1.0
        value = p[j + 1].to(x.dtype)
        if nu.kind == "shift":
            x = x + onehot * (value - nu.nominal)
        else:
            x = x * (1.0 + onehot * (nu.nominal / value - 1.0))
    return x


def expected_counts(
    p: Tensor,
    nuisances: Sequence[Nuisance],
    hist: HistogramFn,
    samples: Mapping[str, Mapping[str, Tensor]],
    totals: Mapping[str, float],
    weights: Mapping[str, Tensor | Mapping[str, Tensor]] | None = None,
    plan: Plan | None = None,
) -> Tensor:
    r"""Expected counts :math:`n_i(\mu, \nu) = \mu\,S_i(\nu) + B_i(\nu)` of the binned model.

    Per sample: the histogram of the (transformed) nominal rows scaled to the sample's
    expected total, plus the ``code4p`` shifts of its histosys nuisances (histograms of
    the varied rows), times its ``code4`` normsys factors and ``norm`` factors
    :math:`\nu/\nu_0`; the signal is multiplied by :math:`\mu` = ``p[0]``.

    Args:
        p: Parameters ``(1 + len(nuisances),)``: :math:`\mu` then the nuisances in order.
        nuisances: The nuisance parameters.
        hist: Histogram of a feature array (soft, KDE or hard; its sum is the number of rows).
        samples: ``{"signal": {"x": ..., <aux names>: ...}, "background": {...}}``: the rows of
            each sample and their varied copies (keys named by the histosys ``up``/``down``).
        totals: Expected number of events per sample (``{"signal": s, "background": b}``).
        weights: Optional per-row sample weights of each sample's rows: histograms become
            weighted sums, ``hist(x, w)``, scaled by total / Σw, so a row of weight 2 counts
            as the row twice. Per sample either one ``(N,)`` tensor, the weights of the rows
            ``x`` and of their row-paired varied copies, or a mapping from row key (``"x"``,
            the histosys ``up``/``down`` names) to the weights of those rows, for varied
            samples with rows of their own: each histogram is then scaled by total / Σw of
            its own rows (a key without weights: unweighted, total / its number of rows).
        plan: Histosys treatments (:func:`~aalearn.training.inferno_histosys.histosys_plan`):
            nuisance index → how its up/down counts are mirrored or symmetrised before the
            interpolation, as ``aalearn measure`` does; ``None``: the templates as given.

    Returns:
        ``(n_bins,)`` expected counts, differentiable in ``p`` and in ``hist``'s parameters.
    """
    counts = sample_counts(p, nuisances, hist, samples, totals, weights, plan)
    return counts["signal"] + counts["background"]


def _scaled(
    p: Tensor,
    nuisances: Sequence[Nuisance],
    hist: HistogramFn,
    samples: Mapping[str, Mapping[str, Tensor]],
    totals: Mapping[str, float],
    sample: str,
    key: str,
    w: Tensor | Mapping[str, Tensor] | None,
) -> Tensor:
    """Histogram of ``samples[sample][key]`` (transformed) scaled to the sample's total."""
    rows = samples[sample]
    x = _transform(rows[key], nuisances, p, sample)
    total = float(totals[sample])
    if isinstance(w, Mapping):  # rows of their own per key: each scaled by its own Σw
        wk = w.get(key)
        if wk is None:
            return hist(x) * (total / rows[key].shape[0])
        return hist(x, wk) * (total / wk.sum())
    # one weight per row of x, the same for its row-paired varied copies
    scale: Tensor | float = total / (rows["x"].shape[0] if w is None else w.sum())
    return (hist(x) if w is None else hist(x, w)) * scale


def histosys_templates(
    p: Tensor,
    nuisances: Sequence[Nuisance],
    hist: HistogramFn,
    samples: Mapping[str, Mapping[str, Tensor]],
    totals: Mapping[str, float],
    weights: Mapping[str, Tensor | Mapping[str, Tensor]] | None = None,
) -> tuple[dict[str, Tensor], dict[int, tuple[Tensor, Tensor]]]:
    """The nominal expected counts per sample and each histosys nuisance's (up, down) counts at ``p``."""
    nominal: dict[str, Tensor] = {}
    shifts: dict[int, tuple[Tensor, Tensor]] = {}
    for sample in _SAMPLES:
        w = None if weights is None else weights.get(sample)
        nominal[sample] = _scaled(p, nuisances, hist, samples, totals, sample, "x", w)
        for j, nu in enumerate(nuisances):
            if nu.sample == sample and nu.kind == "histosys":
                up = _scaled(p, nuisances, hist, samples, totals, sample, str(nu.up), w)
                down = _scaled(p, nuisances, hist, samples, totals, sample, str(nu.down), w)
                shifts[j] = (up, down)
    return nominal, shifts


def sample_counts(
    p: Tensor,
    nuisances: Sequence[Nuisance],
    hist: HistogramFn,
    samples: Mapping[str, Mapping[str, Tensor]],
    totals: Mapping[str, float],
    weights: Mapping[str, Tensor | Mapping[str, Tensor]] | None = None,
    plan: Plan | None = None,
) -> dict[str, Tensor]:
    """:func:`expected_counts` per sample: ``{"signal": μ S(ν), "background": B(ν)}``."""
    nominals, shifts = histosys_templates(p, nuisances, hist, samples, totals, weights)
    out: dict[str, Tensor] = {}
    for sample in _SAMPLES:
        counts = nominal = nominals[sample]
        for j, nu in enumerate(nuisances):
            if nu.sample != sample or nu.kind != "histosys":
                continue
            up, down = shifts[j]
            if plan and j in plan:  # the measurement's treatment (inferno_histosys)
                up, down = treat(nominal, up, down, plan[j])
            counts = counts + code4p_delta(p[j + 1], nominal, up, down)
        for j, nu in enumerate(nuisances):
            if nu.sample != sample:
                continue
            if nu.kind == "normsys":
                counts = counts * code4_factor(p[j + 1], float(nu.up), float(nu.down))  # type: ignore[arg-type]
            elif nu.kind == "norm":
                counts = counts * (p[j + 1] / float(nu.nominal))  # type: ignore[arg-type]
        if sample == "signal":
            counts = counts * p[0]
        out[sample] = counts
    return out


def _constraint_terms(p: Tensor, nuisances: Sequence[Nuisance]) -> Tensor:
    r""":math:`\sum_j (\nu_j - \nu_{0,j})^2 / 2\sigma_j^2` over the constrained nuisances."""
    total = p.sum() * 0.0
    for j, nu in enumerate(nuisances):
        if nu.sigma is not None:
            total = total + 0.5 * ((p[j + 1] - float(nu.nominal)) / nu.sigma) ** 2  # type: ignore[arg-type]
    return total


#: A bin whose Asimov count is at most this fraction of the total (:func:`informative_bins`)
#: carries no information and is left out of the Asimov likelihood and Fisher information.
EMPTY_BIN_FRACTION = 1e-12


def informative_bins(asimov: Tensor) -> Tensor:
    r"""Bins whose Asimov count :math:`A_i` exceeds :data:`EMPTY_BIN_FRACTION` :math:`\times \sum_k A_k`.

    A bin with :math:`A_i = 0` contributes :math:`\partial n_i \partial n_i^\top / n_i \to 0` to
    the Asimov Fisher information (a non-negative :math:`n_i(p)` that is 0 at the nominal point
    has its minimum there, so :math:`\partial n_i = 0`); evaluated as written it is
    :math:`0/0`. Such bins, and those whose count is zero up to rounding (a relaxed histogram's
    underflowing tail: relative mass :math:`\le 10^{-12}`), are therefore left out, which is
    exactly the likelihood of the histogram without them.

    Example:
        >>> informative_bins(torch.tensor([0.0, 1e-14, 3.0, 1.0])).tolist()
        [False, False, True, True]
    """
    return asimov > EMPTY_BIN_FRACTION * asimov.detach().sum()


def asimov_nll(expected: Tensor, asimov: Tensor, scale: Tensor | None = None) -> Tensor:
    r"""Poisson :math:`\sum_i [n_i - A_i \log n_i]` (no constants) of counts ``expected``, data ``asimov``.

    The sum runs over the :func:`informative_bins` of ``asimov``: a bin with no expected
    events carries no information, so it adds 0 (not :math:`0 \log 0`) and its gradients,
    to every order, are 0 (no NaN reaches the backward pass). Without such bins this is the
    plain sum. ``scale`` (``(n_bins,)``, finite) multiplies each bin's term: the templates'
    MC statistical uncertainty profiled out (:mod:`aalearn.training.staterror`).

    Example:
        >>> n = torch.tensor([0.0, 2.0, 3.0], requires_grad=True)
        >>> value = asimov_nll(n, n.detach())
        >>> round(float(value.detach()), 6), torch.autograd.grad(value, n)[0].tolist()
        (0.317869, [0.0, 0.0, 0.0])
    """
    keep = informative_bins(asimov)
    safe = torch.where(keep, expected, 1.0)  # log(1) = 0 in the left-out bins: no 0·log 0, no 0/0
    terms = expected - asimov * torch.log(safe)
    return torch.where(keep, terms if scale is None else scale * terms, 0.0).sum()


def binned_logpdf(p: Tensor, nuisances: Sequence[Nuisance], expected: Tensor, observed: Tensor) -> Tensor:
    r"""Full log-likelihood as pyhf writes it: Poisson main term plus Gaussian constraint densities.

    :math:`\sum_i [A_i \log n_i - n_i - \log\Gamma(A_i + 1)] + \sum_j \log N(\nu_{0,j} \mid \nu_j, \sigma_j)`
    (the auxiliary datum of a constrained nuisance is its nominal value, as in pyhf). A bin with
    no observed events contributes :math:`-n_i` (:math:`0 \log n_i = 0`, also for :math:`n_i = 0`,
    with finite gradients).
    """
    seen = observed != 0
    log_n = torch.log(torch.where(seen, expected, 1.0))  # no 0·log 0 (NaN) in an empty bin
    main = (torch.where(seen, observed * log_n, 0.0) - expected - torch.lgamma(observed + 1.0)).sum()
    aux = p.sum() * 0.0
    for j, nu in enumerate(nuisances):
        if nu.sigma is not None:
            z = (p[j + 1] - float(nu.nominal)) / nu.sigma  # type: ignore[arg-type]
            aux = aux - 0.5 * z**2 - 0.5 * math.log(2 * math.pi) - math.log(nu.sigma)
    return main + aux


def fisher_information(nll: Callable[[Tensor], Tensor], p0: Tensor, *, create_graph: bool = True) -> Tensor:
    r"""Hessian :math:`\partial^2 (-\log L) / \partial p_j \partial p_k` at ``p0`` by double backpropagation.

    With ``create_graph`` the result stays differentiable in whatever ``nll`` closes over
    (the network's weights), which is what INFERNO's loss needs.

    Example:
        >>> f = lambda p: 0.5 * (p[0] ** 2 * 4.0 + p[0] * p[1] + p[1] ** 2)
        >>> fisher_information(f, torch.zeros(2, dtype=torch.float64)).tolist()
        [[4.0, 0.5], [0.5, 1.0]]
    """
    p = p0.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nll(p), p, create_graph=True)
    rows = []
    for j in range(p.shape[0]):
        (row,) = torch.autograd.grad(
            grad[j], p, create_graph=create_graph, retain_graph=True, allow_unused=True
        )
        rows.append(torch.zeros_like(p) if row is None else row)
    return torch.stack(rows)


def asimov_fisher(expected: Tensor, jacobian: Tensor, precision: Tensor) -> Tensor:
    r"""Asimov Fisher information of Poisson counts, :math:`J^\top D_{1/n} J + \mathrm{diag}(1/\sigma^2)`.

    The closed form of :func:`fisher_information` at the Asimov point, for histograms
    whose derivatives come from elsewhere (finite differences of hard histograms).
    Empty bins (:math:`n_i = 0`, or zero up to rounding: not :func:`informative_bins`) are left
    out, as in :func:`asimov_nll`.

    Args:
        expected: Counts ``(n_bins,)``.
        jacobian: :math:`\partial n_i / \partial p_j`, ``(n_bins, n_params)``.
        precision: Constraint precision :math:`1/\sigma_j^2` per parameter (0 if free), ``(n_params,)``.
    """
    keep = informative_bins(expected)
    j = jacobian[keep]
    return j.T @ (j / expected[keep][:, None]) + torch.diag(precision)


# --------------------------------------------------------------------------- models
class SoftBinClassifier(nn.Module):
    r"""A network with ``n_bins`` outputs (INFERNO's bins) that the training loop can also validate.

    :meth:`bin_logits` gives the bin outputs. ``forward`` returns one logit per row of
    :math:`P(\text{label} = 1)` implied by the binned summary: with bin probabilities
    :math:`q_i(x) = \mathrm{softmax}(f(x)/T)_i` and per-bin log-odds :math:`\ell_i` (the
    buffer ``bin_log_odds``, kept up to date by the strategy from the training batches),
    :math:`\log\sum_i q_i\sigma(\ell_i) - \log\sum_i q_i\sigma(-\ell_i)`. The loop's
    validation BCE is thus the BCE of the binned analysis.

    Example:
        >>> net = SoftBinClassifier(nn.Linear(3, 4), n_bins=4)
        >>> net(torch.zeros(2, 3)).shape, net.bin_logits(torch.zeros(2, 3)).shape
        (torch.Size([2]), torch.Size([2, 4]))
    """

    bin_log_odds: Tensor

    def __init__(self, body: nn.Module, n_bins: int, temperature: float = 0.1) -> None:
        super().__init__()
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
            raise ValueError(f"n_bins must be an integer ≥ 2, got {n_bins!r}")
        self.body = body
        self.n_bins = n_bins
        self.temperature = float(temperature)
        self.register_buffer("bin_log_odds", torch.zeros(n_bins))
        n_features = getattr(body, "in_features", None)
        if n_features is None:
            first = next((m for m in body.modules() if isinstance(m, nn.Linear)), None)
            n_features = None if first is None else first.in_features
        self.n_features = n_features

    def bin_logits(self, x: Tensor) -> Tensor:
        """Bin outputs ``(B, n_bins)``."""
        out: Tensor = self.body(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Log-odds of label 1 under the binned summary ``(B,)``."""
        logq = torch.log_softmax(self.bin_logits(x) / self.temperature, dim=1)
        lo = self.bin_log_odds.to(logq.dtype)
        return torch.logsumexp(logq + F.logsigmoid(lo), 1) - torch.logsumexp(logq + F.logsigmoid(-lo), 1)


def inferno_mlp(n_features: int, n_bins: int = 10, hidden: Sequence[int] = (100, 100)) -> SoftBinClassifier:
    """The paper's network (ReLU layers of 100 units), ``n_bins`` outputs, as a :class:`SoftBinClassifier`.

    Example:
        >>> inferno_mlp(3, 10).bin_logits(torch.zeros(5, 3)).shape
        torch.Size([5, 10])
    """
    layers: list[nn.Module] = []
    width = n_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_bins))
    return SoftBinClassifier(nn.Sequential(*layers), n_bins)


# --------------------------------------------------------------------------- strategies
def _mu_variance(info: Tensor) -> Tensor | None:
    r""":math:`[I^{-1}]_{\mu\mu}`, or ``None`` when :math:`I` is singular (e.g. every signal bin left out).

    A singular Fisher information means the data do not constrain :math:`\mu`: no information,
    treated as a batch without one of the classes.
    """
    inverse, status = torch.linalg.inv_ex(info)
    return None if int(status) != 0 else inverse[0, 0]


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return v


class InfernoStrategy(Strategy):
    r"""INFERNO (arXiv:1806.04743): minimise the profiled variance :math:`[I^{-1}]_{\mu\mu}` (``"inferno"``).

    Per batch the rows of each class make the soft histograms (:func:`soft_histogram` of
    the model's ``bin_logits``, or of its output when it has ``n_bins`` columns), scaled
    to the expected event counts; :func:`expected_counts` builds :math:`n_i(\mu,\nu)`;
    :func:`fisher_information` differentiates the Asimov likelihood twice in the
    parameters; the loss is :math:`[I^{-1}]_{\mu\mu}` (``loss="variance"``) or its square
    root (``loss="sigma"``). Histosys nuisances read the varied features of the batch's
    rows from ``Batch.aux[up]`` / ``Batch.aux[down]`` (pass them as ``aux_train``).

    Args:
        signal_expected: Expected number of signal events :math:`N_s` at :math:`\mu = 1`.
        background_expected: Expected number of background events :math:`N_b`.
        nuisances: :class:`Nuisance` objects or their dict forms.
        tau: Softmax temperature (0.1 in the paper).
        signal_label: Label of the signal rows (default :data:`aalearn.data.LABEL_TOP` = 0).
        loss: ``"variance"`` (the paper) or ``"sigma"``.
        mc_events: Simulated events each sample's template will be built from in the
            measurement, ``{"signal": N_s, "background": N_b}``: the templates' MC statistical
            uncertainty (pyhf ``staterror``, the per-bin :math:`\gamma_i` profiled out) enters
            the loss, each bin's Fisher term becoming :math:`\partial n \partial n^\top/(n_i + V_i)`,
            :math:`V_i = \sum_s S_{s,i} T_s/N_s` (:mod:`aalearn.training.staterror`). ``None``: none.
        histosys: The measurement's treatment of one-sided and asymmetric histosys
            variations (``aalearn measure --histosys``): ``auto`` mirrors one-sided and
            symmetrises strongly asymmetric variations, decided on each batch's templates
            at the nominal point by the measurement's rule; ``mirror``/``symmetrize`` force
            one treatment; ``none`` (default) interpolates the templates as given
            (:mod:`aalearn.training.inferno_histosys` says why a one-sided variation needs it).

    Attributes:
        parameter_names: ``["mu", <nuisance names>]``.

    Example:
        >>> InfernoStrategy(50, 1000, tau=0.1).config()["tau"]
        0.1
    """

    name: ClassVar[str] = "inferno"
    #: Sample weights (``aalearn train --reweight-to``, ``Batch.weight``) weight the histograms.
    supports_sample_weight: ClassVar[bool] = True

    def __init__(
        self,
        signal_expected: float = 50.0,
        background_expected: float = 1000.0,
        nuisances: Sequence[Mapping[str, Any] | Nuisance] = (),
        *,
        tau: float = 0.1,
        signal_label: int = LABEL_TOP,
        loss: str = "variance",
        mc_events: Mapping[str, float] | None = None,
        histosys: str = "none",
    ) -> None:
        self.mc_events = check_mc_events(mc_events)
        self.histosys = check_histosys_method(histosys)
        self.totals = {
            "signal": _positive(signal_expected, "signal_expected"),
            "background": _positive(background_expected, "background_expected"),
        }
        self.nuisances = [Nuisance.from_dict(n) for n in nuisances]
        names = [n.name for n in self.nuisances]
        if len(set(names)) != len(names):
            raise ValueError(f"nuisance names must be unique, got {names}")
        self.tau = _positive(tau, "tau")
        if signal_label not in (0, 1) or isinstance(signal_label, bool):
            raise ValueError(f"signal_label must be 0 or 1, got {signal_label!r}")
        self.signal_label = int(signal_label)
        if loss not in ("variance", "sigma"):
            raise ValueError(f"loss must be 'variance' or 'sigma', got {loss!r}")
        self.loss_kind = loss
        self.parameter_names = ["mu", *names]
        self.requires_aux = tuple(  # type: ignore[misc]
            str(k) for n in self.nuisances if n.kind == "histosys" for k in (n.up, n.down)
        )
        self._model: nn.Module | None = None
        self._val: tuple[Tensor, Tensor, dict[str, Tensor]] | None = None
        self._val_weight: Tensor | None = None
        self._sum = 0.0
        self._n = 0
        self._singular = 0  # batches of the epoch whose Fisher information was singular

    # ---- pieces a subclass may change
    def histogram(self, model: nn.Module, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """Soft histogram of the model's bin outputs on ``x`` (unnormalised: sums to the rows or Σw)."""
        bins = getattr(model, "bin_logits", None)
        out = bins(x) if callable(bins) else model(x)
        return soft_histogram(out, self.tau, weight)

    def p0(self, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
        """Nominal parameters :math:`(\\mu_0 = 1, \\nu_0)`."""
        return torch.tensor([1.0] + [float(n.nominal) for n in self.nuisances], dtype=dtype, device=device)  # type: ignore[arg-type]

    def poisson_nll(self, yields: Mapping[str, Tensor]) -> Callable[[Tensor], Tensor]:
        """``n ↦`` the Poisson NLL of the Asimov data given by the per-sample yields at the nominal point.

        With ``mc_events`` each bin's term is scaled by :func:`~aalearn.training.staterror.staterror_scale`
        of the MC variance of these yields (fixed in the parameters, differentiable in the network).
        """
        asimov = yields["signal"] + yields["background"]
        if self.mc_events is None:
            return lambda n: asimov_nll(n, asimov)
        scale = staterror_scale(asimov, mc_variance(yields, self.totals, self.mc_events))
        return lambda n: asimov_nll(n, asimov, scale)

    def histosys_plan(
        self,
        p0: Tensor,
        nuisances: Sequence[Nuisance],
        hist: HistogramFn,
        samples: Mapping[str, Mapping[str, Tensor]],
        weights: Mapping[str, Tensor | Mapping[str, Tensor]] | None = None,
    ) -> Plan | None:
        """This call's histosys treatments (``histosys``), decided on the templates at ``p0``."""
        if self.histosys == "none":
            return None
        nominal, shifts = histosys_templates(p0, nuisances, hist, samples, self.totals, weights)
        return histosys_plan(nominal, shifts, nuisances, self.histosys)

    # ---- the loss
    def _update_log_odds(
        self,
        model: nn.Module,
        samples: Mapping[str, Mapping[str, Tensor]],
        weights: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Set a :class:`SoftBinClassifier`'s per-bin log-odds of label 1 from these rows (no gradient)."""
        buffer = getattr(model, "bin_log_odds", None)
        if not isinstance(buffer, Tensor):
            return

        def fractions(sample: str) -> Tensor:
            x = samples[sample]["x"]
            w = None if weights is None else weights[sample]
            return self.histogram(model, x, w) / (x.shape[0] if w is None else w.sum())

        with torch.no_grad():
            sig, bkg = fractions("signal"), fractions("background")
            odds = torch.log(sig.clamp_min(1e-12) / bkg.clamp_min(1e-12))
            if odds.shape == buffer.shape:
                buffer.copy_(odds if self.signal_label == 1 else -odds)

    def fisher(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        aux: Mapping[str, Tensor],
        *,
        weight: Tensor | None = None,
        update_log_odds: bool = False,
        create_graph: bool | None = None,
    ) -> Tensor | None:
        r"""Fisher information of the Asimov likelihood on these rows (``None`` if a class is missing).

        With ``update_log_odds`` a :class:`SoftBinClassifier`'s ``bin_log_odds`` are set from
        these rows (the loss does it on each epoch's first batch, ``epoch_metrics`` on the
        validation set). ``create_graph`` (default: whether autograd is on) keeps the result
        differentiable in the weights. ``weight`` (``(N,)`` sample weights, or ``None``) weights
        the histograms: a row of weight 2 counts as the row twice.
        """
        samples: dict[str, dict[str, Tensor]] = {}
        weights: dict[str, Tensor] | None = None if weight is None else {}
        for sample, is_signal in (("signal", True), ("background", False)):
            mask = (y == self.signal_label) if is_signal else (y != self.signal_label)
            if int(mask.sum()) == 0:
                return None
            samples[sample] = {"x": x[mask], **{k: v[mask] for k, v in aux.items() if k in self.requires_aux}}
            if weights is not None and weight is not None:
                weights[sample] = weight[mask].to(x.dtype)
                if not float(weights[sample].sum()) > 0:
                    return None  # no weight in one class: no information

        # Rows that no nuisance transforms reach expected_counts as the very tensors held in
        # ``samples`` (alive for the whole call, so their ids are unique): their histograms
        # are computed once per call. Transformed rows are new tensors and never cached.
        inputs = {id(t) for rows in samples.values() for t in rows.values()}
        memo: dict[int, Tensor] = {}

        def hist(rows: Tensor, w: Tensor | None = None) -> Tensor:
            # the weights of a sample's rows are fixed within this call: the memo stays valid
            key = id(rows)
            if key not in inputs:
                return self.histogram(model, rows, w)
            if key not in memo:
                memo[key] = self.histogram(model, rows, w)
            return memo[key]

        p0 = self.p0(x.dtype, x.device)
        plan = self.histosys_plan(p0, self.nuisances, hist, samples, weights)
        nominal_counts = sample_counts(p0, self.nuisances, hist, samples, self.totals, weights, plan)
        poisson = self.poisson_nll(nominal_counts)
        if update_log_odds:
            self._update_log_odds(model, samples, weights)

        def nll(p: Tensor) -> Tensor:
            n = expected_counts(p, self.nuisances, hist, samples, self.totals, weights, plan)
            return poisson(n) + _constraint_terms(p, self.nuisances)

        keep = torch.is_grad_enabled() if create_graph is None else create_graph
        return fisher_information(nll, p0, create_graph=keep)

    def mu_variance(self, model: nn.Module, x: Tensor, y: Tensor, aux: Mapping[str, Tensor]) -> Tensor | None:
        r""":math:`[I^{-1}]_{\mu\mu}` on these rows (``None``: a class is missing or :math:`I` singular)."""
        info = self.fisher(model, x, y, aux)
        return None if info is None else _mu_variance(info)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        r""":math:`[I^{-1}]_{\mu\mu}` (or its square root) of the batch."""
        info = self.fisher(
            model, batch.x, batch.y, batch.aux, weight=batch.weight, update_log_odds=self._n == 0
        )
        var = None if info is None else _mu_variance(info)
        if info is not None and var is None:
            self._singular += 1
        if var is None:  # a batch without one of the classes (or a singular I): no information, no step
            return sum((p.sum() * 0.0 for p in model.parameters()), torch.zeros((), device=batch.x.device))
        self._sum += float(var.detach())
        self._n += 1
        return var if self.loss_kind == "variance" else var.clamp_min(0).sqrt()

    # ---- loop hooks
    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Check the labels and auxiliary arrays; keep the validation set for ``val_sigma_mu``."""
        labels = set(np.unique(data.y).tolist())
        if labels != {0, 1}:
            raise ValueError(
                "the inferno strategy needs training rows of both classes (signal and background)"
            )
        for key in self.requires_aux:
            arr = data.aux.get(key)
            if arr is None or arr.shape != data.X.shape:
                raise ValueError(
                    f"histosys array {key!r} must be in aux_train with the shape of X {data.X.shape}"
                )
        self._model = model
        self._val = None
        self._val_weight = None
        if set(np.unique(data.y_val).tolist()) == {0, 1} and all(
            k in data.aux_val for k in self.requires_aux
        ):
            device = next(model.parameters()).device
            dtype = next(model.parameters()).dtype
            self._val = (
                torch.as_tensor(data.X_val, device=device, dtype=dtype),
                torch.as_tensor(data.y_val, device=device),
                {k: torch.as_tensor(data.aux_val[k], device=device, dtype=dtype) for k in self.requires_aux},
            )
            if data.weight_val is not None:  # the validation σ_μ of a weighted run is weighted too
                self._val_weight = torch.as_tensor(data.weight_val, device=device, dtype=dtype)

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Reset the per-epoch mean."""
        self._sum, self._n, self._singular = 0.0, 0, 0

    def epoch_metrics(self) -> dict[str, float]:
        r"""Per-epoch ``train_var_mu`` (mean batch :math:`[I^{-1}]_{\mu\mu}`) and ``val_sigma_mu``.

        ``val_sigma_mu`` is a sensible ``monitor`` for early stopping.
        """
        out: dict[str, float] = {}
        if self._n == 0 and self._singular:  # nothing would ever train: say so instead of idling
            raise ValueError(
                f"{self.name}: the Fisher information was singular in all {self._singular} batches of the "
                "epoch, so μ is not constrained by these nuisances (a free signal normalisation "
                "duplicates μ, for example); constrain or remove the degenerate nuisance"
            )
        if self._n:
            out["train_var_mu"] = self._sum / self._n
        if self._val is not None and self._model is not None:
            x, y, aux = self._val
            was = self._model.training
            self._model.eval()
            try:
                with torch.enable_grad():
                    info = self.fisher(
                        self._model,
                        x,
                        y,
                        aux,
                        weight=self._val_weight,
                        update_log_odds=True,
                        create_graph=False,
                    )
                var = None if info is None else _mu_variance(info.detach())
                if var is not None:  # no information (as a missing class): not reported
                    out["val_sigma_mu"] = float(var.clamp_min(0).sqrt())
            finally:
                self._model.train(was)
        return out

    def config(self) -> dict[str, Any]:
        """The settings (JSON-serialisable)."""
        return {
            "strategy": self.name,
            "signal_expected": self.totals["signal"],
            "background_expected": self.totals["background"],
            "nuisances": [n.to_dict() for n in self.nuisances],
            "tau": self.tau,
            "signal_label": self.signal_label,
            "loss": self.loss_kind,
            # only runs with MC statistics or a histosys treatment carry the key: older
            # checkpoints keep their fingerprint
            **({} if self.mc_events is None else {"mc_events": dict(self.mc_events)}),
            **({} if self.histosys == "none" else {"histosys": self.histosys}),
        }


class NeosStrategy(InfernoStrategy):
    r"""neos (arXiv:2203.05570): KDE histogram of a one-output score, loss :math:`\sigma_\mu` (``"neos"``).

    The score is :math:`\sigma(\text{logit})` of a plain binary classifier; bins are
    ``n_bins`` equal-width bins on [0, 1] and the histogram is :func:`kde_histogram` with
    ``bandwidth`` (neos: 0.09 for 4 bins). Everything else is :class:`InfernoStrategy`.

    Example:
        >>> NeosStrategy(50, 1000, n_bins=4).config()["bandwidth"]
        0.09
    """

    name: ClassVar[str] = "neos"

    def __init__(
        self,
        signal_expected: float = 50.0,
        background_expected: float = 1000.0,
        nuisances: Sequence[Mapping[str, Any] | Nuisance] = (),
        *,
        n_bins: int = 4,
        bandwidth: float = 0.09,
        signal_label: int = LABEL_TOP,
        loss: str = "sigma",
        mc_events: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(
            signal_expected,
            background_expected,
            nuisances,
            tau=1.0,
            signal_label=signal_label,
            loss=loss,
            mc_events=mc_events,
        )
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
            raise ValueError(f"n_bins must be an integer ≥ 2, got {n_bins!r}")
        self.n_bins = n_bins
        self.bandwidth = _positive(bandwidth, "bandwidth")

    def histogram(self, model: nn.Module, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """KDE histogram of :math:`\\sigma(\\text{logit})` in ``n_bins`` equal bins of [0, 1]."""
        scores = torch.sigmoid(logits_of(model, x))
        edges = torch.linspace(0.0, 1.0, self.n_bins + 1, dtype=scores.dtype, device=scores.device)
        return kde_histogram(scores, edges, self.bandwidth, weight)

    def config(self) -> dict[str, Any]:
        """The settings (JSON-serialisable)."""
        out = super().config()
        del out["tau"]
        out.update({"n_bins": self.n_bins, "bandwidth": self.bandwidth})
        return out


register_strategy(InfernoStrategy)
register_strategy(NeosStrategy)
