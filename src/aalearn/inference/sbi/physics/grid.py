r"""The posterior of a set of i.i.d. jets, evaluated exactly on a grid over the prior box.

:class:`GridPosterior` combines a per-jet NLE or NRE estimator over the :math:`K` jets of a
set, :math:`\log p(\theta|x_{1..K}) = \log p(\theta) + \sum_j \log q(x_j|\theta) + c`, on a
coarse and then a fine grid (one or two parameters, no MCMC); :class:`GridSummary` holds
the normalised density with means, standard deviations and central 68 %/95 % intervals.

Example:
    >>> from aalearn.inference.sbi.physics.grid import LEVEL_68, LEVEL_95
    >>> round(LEVEL_68, 4), round(LEVEL_95, 4)
    (0.6827, 0.9545)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.inference.sbi.physics.simulator import (
    _N_OBS,
    OBSERVABLES,
    PARAMETERS,
    _check_parameters,
    _positive_int,
)

__all__ = ["LEVEL_68", "LEVEL_95", "GridPosterior", "GridSummary"]

FloatArray = npt.NDArray[np.float64]

#: Lower edge of the transformed jet pT (GeV below the smallest pT in a sample; see :func:`_features`).
_PT_OFFSET_GEV = 1.0


def _observable_columns(observables: Sequence[str] | str | None) -> list[int]:
    if observables is None:
        return list(range(_N_OBS))
    if isinstance(observables, str):
        observables = [o.strip() for o in observables.split(",") if o.strip()]
    names = list(observables)
    if not names or len(set(names)) != len(names) or any(o not in OBSERVABLES for o in names):
        raise ValueError(f"observables must be distinct names among {', '.join(OBSERVABLES)}, got {names}")
    return [OBSERVABLES.index(o) for o in names]


def _features(x: npt.ArrayLike, pt_min: float) -> FloatArray:
    r"""Observables as the estimator sees them: :math:`\log(p_T - p_T^{\min} + 1\,{\rm GeV})`, the rest as is.

    The jet :math:`p_T` spectrum starts with a sharp edge at the selection cut, which
    normalising flows model poorly; the logarithm of the distance to the cut is smooth.
    A θ-independent change of variables leaves the posterior unchanged.
    """
    f = np.array(x, dtype=np.float64, copy=True).reshape(-1, _N_OBS)
    f[:, 0] = np.log(np.clip(f[:, 0] - pt_min, 0.0, None) + _PT_OFFSET_GEV)
    return f


@dataclass(frozen=True)
class GridSummary:
    """Posterior on a grid: the normalised density and per-parameter summaries.

    Attributes:
        axes: Grid cell centres per parameter.
        density: Normalised probability per cell (shape ``(len(axes[0]), ...)``).
        mean: Posterior mean per parameter.
        std: Posterior standard deviation per parameter.
        interval_68: Central 68.27 % credible interval per parameter.
        interval_95: Central 95.45 % credible interval per parameter.
        mode: Grid cell of the largest density (per parameter).
    """

    axes: tuple[FloatArray, ...]
    density: FloatArray
    mean: FloatArray
    std: FloatArray
    interval_68: FloatArray
    interval_95: FloatArray
    mode: FloatArray

    def marginal(self, d: int) -> FloatArray:
        """Normalised marginal probabilities per cell of parameter ``d``."""
        other = tuple(i for i in range(self.density.ndim) if i != d)
        out: FloatArray = self.density.sum(axis=other) if other else self.density
        return out


#: Central credibility of the "68 %" and "95 %" intervals (one and two Gaussian sigma).
LEVEL_68 = 0.682689492137086
LEVEL_95 = 0.954499736103642


def _central_interval(axis: FloatArray, prob: FloatArray, level: float) -> tuple[float, float]:
    h = axis[1] - axis[0] if len(axis) > 1 else 1.0
    edges = np.concatenate([[axis[0] - h / 2], axis + h / 2])
    cdf = np.concatenate([[0.0], np.cumsum(prob)])
    cdf /= cdf[-1]
    lo = float(np.interp((1 - level) / 2, cdf, edges))
    hi = float(np.interp((1 + level) / 2, cdf, edges))
    return lo, hi


def _log_mean_exp(values: FloatArray) -> FloatArray:
    """``log(mean(exp(values), axis=0))``, ``-inf`` where every row is ``-inf``."""
    from scipy.special import logsumexp

    with np.errstate(divide="ignore"):
        out = logsumexp(values, axis=0) - math.log(len(values))
    return np.asarray(out, dtype=np.float64)


class GridPosterior:
    r"""Posterior of a set of :math:`K` i.i.d. jets, evaluated exactly on an adaptive grid.

    :math:`\log p(\theta|x_{1..K}) = \log p(\theta) + \sum_j \log q(x_j|\theta) + c` from a
    per-jet NLE or NRE posterior (:class:`aalearn.inference.sbi.Posterior`, whose
    ``log_prob`` with a ``(K, X)`` observation is sbi's i.i.d. potential). The density is
    first evaluated on a coarse grid over the prior box, then on a fine grid over the
    region holding all but :math:`e^{-12}` of the peak density. With one or two parameters
    this is exact up to the grid resolution and needs no MCMC.

    It has the ``sample(n, x_o, *, seed)`` and ``log_prob(theta, x_o)`` methods that
    :mod:`aalearn.inference.sbi.diagnostics` needs; ``x_o`` is one set of jets, either
    ``(K, 5)`` or flattened ``(K * 5,)`` (the simulator's output row).

    Args:
        posterior: Per-jet posterior with ``log_prob(theta, x_o)`` for ``x_o`` of shape ``(K, 5)``.
        parameters: Names in :data:`PARAMETERS` (order of the columns of θ).
        pt_min: Jet :math:`p_T` cut of the simulator (for the feature transform).
        observables: The observables the estimator was trained on (default: all of :data:`OBSERVABLES`).
        coarse: Coarse grid points per parameter (default 121 in 1-D, 31 in 2-D).
        fine: Fine grid points per parameter (default 401 in 1-D, 61 in 2-D).

    Example:
        >>> gp = GridPosterior(per_jet_posterior, ("top_mass",), pt_min=400.0)  # doctest: +SKIP
        >>> gp.summary(jets).mean  # doctest: +SKIP
        array([169.27...])
    """

    def __init__(
        self,
        posterior: Any,
        parameters: Sequence[str],
        *,
        pt_min: float,
        observables: Sequence[str] | None = None,
        coarse: int | None = None,
        fine: int | None = None,
    ) -> None:
        if not callable(getattr(posterior, "log_prob", None)):
            raise TypeError(
                f"posterior must have a log_prob(theta, x_o) method, got {type(posterior).__name__}"
            )
        self.posterior = posterior
        self.parameters = _check_parameters(parameters)
        if len(self.parameters) > 2:
            raise ValueError(f"grid posteriors support 1 or 2 parameters, got {len(self.parameters)}")
        one = len(self.parameters) == 1
        self.coarse = _positive_int("coarse", coarse if coarse is not None else (121 if one else 31))
        self.fine = _positive_int("fine", fine if fine is not None else (401 if one else 61))
        self.pt_min = float(pt_min)
        self.columns = _observable_columns(observables)
        self.bounds = np.array([(PARAMETERS[p].low, PARAMETERS[p].high) for p in self.parameters])
        self._grid_cache: dict[bytes, tuple[tuple[FloatArray, ...], FloatArray, FloatArray]] = {}

    def _jets(self, x_o: npt.ArrayLike) -> FloatArray:
        x = np.asarray(x_o, dtype=np.float64)
        if x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1 and x.shape[1] != _N_OBS):
            if x.size % _N_OBS:
                raise ValueError(
                    f"a flattened set of jets must have a multiple of {_N_OBS} values, got {x.size}"
                )
            x = x.reshape(-1, _N_OBS)
        if x.ndim != 2 or x.shape[1] != _N_OBS or len(x) < 1:
            raise ValueError(
                f"x_o must be a set of jets (K, {_N_OBS}) = {OBSERVABLES} or its flattened row, got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(
                f"x_o has non-finite values in jets {np.flatnonzero(~np.isfinite(x).all(1))[:10]}"
            )
        return _features(x, self.pt_min)[:, self.columns]

    def _member_logp(self, theta: FloatArray, feats: FloatArray) -> FloatArray:
        """``(members, m)`` log-densities: each ensemble member separately, else one row."""
        if int(getattr(self.posterior, "ensemble", 1)) > 1 and callable(
            getattr(self.posterior, "member_log_probs", None)
        ):
            out = np.asarray(self.posterior.member_log_probs(theta, feats), dtype=np.float64)
        else:
            out = np.asarray(self.posterior.log_prob(theta, feats), dtype=np.float64)[None, :]
        return np.where(np.isfinite(out), out, -np.inf)

    def _logp(self, axes: Sequence[FloatArray], feats: FloatArray) -> FloatArray:
        """Per-member log-densities on the grid ``axes``, shape ``(members, *grid)``."""
        mesh = np.meshgrid(*axes, indexing="ij")
        theta = np.stack([m.reshape(-1) for m in mesh], axis=1)
        return self._member_logp(theta, feats).reshape(-1, *mesh[0].shape)

    @staticmethod
    def _mixture(member_logp: FloatArray, log_cell: float) -> tuple[FloatArray, FloatArray]:
        r"""Equal-weight mixture of the members, each normalised on the grid.

        NLE/NRE members' log-densities carry arbitrary, member-dependent constants; the
        ensemble posterior is :math:`\frac{1}{M}\sum_i p_i`, so every member is divided by
        its own grid integral first. Returns the mixture's log density on the grid and the
        members' log normalisers.
        """
        flat = member_logp.reshape(len(member_logp), -1)
        peak = np.max(flat, axis=1, keepdims=True)
        if not np.all(np.isfinite(peak)):
            raise ValueError("the posterior density is zero everywhere on the prior box; check x_o")
        log_z = peak[:, 0] + np.log(np.exp(flat - peak).sum(axis=1)) + log_cell
        normed = member_logp - log_z.reshape(-1, *([1] * (member_logp.ndim - 1)))
        return _log_mean_exp(normed), log_z

    @staticmethod
    def _log_cell(axes: Sequence[FloatArray]) -> float:
        return float(sum(np.log(ax[1] - ax[0]) if len(ax) > 1 else 0.0 for ax in axes))

    @staticmethod
    def _centres(lo: float, hi: float, n: int) -> FloatArray:
        h = (hi - lo) / n
        out: FloatArray = lo + h * (np.arange(n, dtype=np.float64) + 0.5)
        return out

    def evaluate(self, x_o: npt.ArrayLike) -> tuple[tuple[FloatArray, ...], FloatArray]:
        """Fine grid axes and normalised cell probabilities for the set of jets ``x_o``."""
        feats = self._jets(x_o)
        axes, logp, _ = self._evaluate(feats)
        prob = np.exp(logp - logp.max())
        return axes, prob / prob.sum()

    def _evaluate(self, feats: FloatArray) -> tuple[tuple[FloatArray, ...], FloatArray, FloatArray]:
        """Fine axes, the mixture's log density on them and the members' log normalisers."""
        key = feats.tobytes()
        cache = self._grid_cache
        if key in cache:
            return cache[key]
        axes = tuple(self._centres(lo, hi, self.coarse) for lo, hi in self.bounds)
        logp, _ = self._mixture(self._logp(axes, feats), self._log_cell(axes))
        finite = np.isfinite(logp)
        if not finite.any():
            raise ValueError("the posterior density is zero everywhere on the prior box; check x_o")
        keep = finite & (logp > logp[finite].max() - 12.0)
        fine_axes = []
        for d, ax in enumerate(axes):
            other = tuple(i for i in range(keep.ndim) if i != d)
            idx = np.flatnonzero(keep.any(axis=other) if other else keep)
            h = ax[1] - ax[0] if len(ax) > 1 else 0.0
            lo = max(self.bounds[d, 0], ax[idx[0]] - 1.5 * h)
            hi = min(self.bounds[d, 1], ax[idx[-1]] + 1.5 * h)
            fine_axes.append(self._centres(lo, hi, self.fine))
        log_cell = self._log_cell(fine_axes)
        logp, log_z = self._mixture(self._logp(fine_axes, feats), log_cell)
        if len(cache) > 64:
            cache.clear()
        cache[key] = (tuple(fine_axes), logp, log_z)
        return tuple(fine_axes), logp, log_z

    def summary(self, x_o: npt.ArrayLike) -> GridSummary:
        """Mean, standard deviation, central 68 %/95 % intervals and mode of every parameter.

        Example:
            >>> s = gp.summary(jets)  # doctest: +SKIP
            >>> s.interval_68  # doctest: +SKIP
        """
        axes, prob = self.evaluate(x_o)
        d_all = len(axes)
        mean, std, i68, i95 = [], [], [], []
        for d, ax in enumerate(axes):
            other = tuple(i for i in range(d_all) if i != d)
            p = prob.sum(axis=other) if other else prob
            h = ax[1] - ax[0] if len(ax) > 1 else 0.0
            m = float(np.sum(p * ax))
            mean.append(m)
            std.append(math.sqrt(float(np.sum(p * (ax - m) ** 2)) + h * h / 12.0))
            i68.append(_central_interval(ax, p, LEVEL_68))
            i95.append(_central_interval(ax, p, LEVEL_95))
        mode_idx = np.unravel_index(int(np.argmax(prob)), prob.shape)
        return GridSummary(
            axes=axes,
            density=prob,
            mean=np.array(mean),
            std=np.array(std),
            interval_68=np.array(i68),
            interval_95=np.array(i95),
            mode=np.array([axes[d][i] for d, i in enumerate(mode_idx)]),
        )

    def sample(self, n: int, x_o: npt.ArrayLike, *, seed: int) -> FloatArray:
        """``n`` posterior samples: a grid cell by its probability, then uniform inside it."""
        n = _positive_int("n", n)
        axes, prob = self.evaluate(x_o)
        rng = np.random.default_rng(seed)
        flat = rng.choice(prob.size, size=n, p=prob.reshape(-1))
        idx = np.unravel_index(flat, prob.shape)
        out = np.empty((n, len(axes)))
        for d, ax in enumerate(axes):
            h = ax[1] - ax[0] if len(ax) > 1 else 0.0
            out[:, d] = ax[idx[d]] + h * (rng.random(n) - 0.5)
        return out

    def log_prob(self, theta: npt.ArrayLike, x_o: npt.ArrayLike) -> FloatArray:
        """Log posterior of parameter rows ``theta`` given the set ``x_o``.

        For one estimator this is the unnormalised log density (prior plus the sum over
        jets); for an ensemble it is the normalised density of the equal-weight mixture
        of the members, each normalised on the fine grid of :meth:`evaluate`.
        """
        th = np.asarray(theta, dtype=np.float64).reshape(-1, len(self.parameters))
        feats = self._jets(x_o)
        member = self._member_logp(th, feats)
        if len(member) == 1:
            return member[0]
        _, _, log_z = self._evaluate(feats)
        return _log_mean_exp(member - log_z[:, None])
