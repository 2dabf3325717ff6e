r"""From classifier scores to a profile-likelihood measurement of a signal strength, with pyhf.

A binned classifier-score distribution becomes a one-channel HistFactory model
(Cranmer, Lewis, Moneta, Shibata, Verkerke, CERN-OPEN-2012-016) written as a pyhf
workspace (Heinrich, Feickert, Stark, Cranmer, "pyhf: pure-Python implementation of
HistFactory statistical models", JOSS 6 (2021) 2823). The likelihood is pyhf's, never a
hand-written one:

.. math::

    L(\mu, \boldsymbol\theta) = \prod_{i=1}^{B} \mathrm{Pois}\big(n_i \mid
    \mu\, s_i(\boldsymbol\theta) + b_i(\boldsymbol\theta)\big)
    \prod_j c_j(a_j \mid \theta_j),

with the signal strength :math:`\mu` (a ``normfactor``) as parameter of interest and
the nuisances :math:`\boldsymbol\theta`: ``histosys`` shape variations and ``normsys``
rate factors (Gaussian constraints on :math:`\alpha`), the Barlow–Beeston-lite
``staterror`` for the finite simulation (Gaussian, per bin) and an optional absolute
per-bin background uncertainty as ``shapesys`` (Poisson constraint with
:math:`\tau_i = (b_i/\sigma_i)^2`).

:class:`Measurement` fits :math:`\hat\mu` with its total, statistical and systematic
uncertainty (:math:`\sigma_\text{syst} = \sqrt{\sigma_\text{tot}^2-\sigma_\text{stat}^2}`,
the statistical part from a refit with the nuisances fixed at their best-fit values),
the nuisance pulls and impacts, the breakdown of :math:`\sigma_\mu` by groups of nuisances
(:meth:`Measurement.breakdown`), the Asimov discovery significance
:math:`Z_A = \Phi^{-1}(1-p_0)` from the asymptotic :math:`q_0` test (Cowan, Cranmer,
Gross, Vitells, EPJC 71 (2011) 1554, arXiv:1007.1727), the shift of :math:`\hat\mu`
between a reference and a perturbed (for example adversarially attacked) data set, and
the frequentist coverage of the :math:`\pm1\sigma` interval from pseudo-experiments.

Fits use pyhf's NumPy backend with the Minuit optimizer (HESSE uncertainties); the
asymptotic hypothesis test falls back to the SciPy optimizer when the fixed-POI fit has
no free parameter left (pyhf's Minuit shim fails on an all-fixed fit). The global pyhf
backend is switched only for the duration of each call and restored afterwards.

Example:
    >>> import numpy as np
    >>> from aalearn.inference import Measurement, templates_from_scores
    >>> rng = np.random.default_rng(0)
    >>> t = templates_from_scores(rng.beta(5, 2, 20_000), rng.beta(2, 5, 20_000))
    >>> m = Measurement(t)
    >>> res = m.fit()  # Asimov data, mu = 1
    >>> round(res.mu_hat, 3)
    1.0
    >>> z = m.asimov_significance()
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aalearn.core.io import atomic_write
from aalearn.core.jsonutil import to_jsonable
from aalearn.core.result import ReportBuilder
from aalearn.core.validation import check_array
from aalearn.inference.breakdown import DEFINITION, breakdown_rows, default_groups, resolve_groups
from aalearn.inference.plots import plot_impacts, plot_shifts, plot_templates
from aalearn.inference.systematics import treat_histosys
from aalearn.inference.templates import (
    CHANNEL,
    SAMPLES,
    Templates,
    histogram_data,
    templates_from_scores,
)
from aalearn.inference.workspace import (
    _main_data,
    _numpy_backend,
    _pyhf,
    _quiet_pyhf_optimizer,
    _quiet_schema_validation,
    build_workspace,
)

__all__ = [
    "CHANNEL",
    "SAMPLES",
    "FitResult",
    "Measurement",
    "MeasurementResult",
    "Templates",
    "build_workspace",
    "histogram_data",
    "templates_from_scores",
]

FloatArray = npt.NDArray[np.float64]

BOUND_SIGMAS = 3.0
"""A true or fitted μ closer than this many σ_μ to a POI bound triggers a warning."""


# --------------------------------------------------------------------------------------
# fit results
# --------------------------------------------------------------------------------------
@dataclass
class FitResult:
    r"""Result of a maximum-likelihood fit.

    Attributes:
        mu_hat: Best-fit signal strength :math:`\hat\mu`.
        mu_err: Total (HESSE) uncertainty :math:`\sigma_\text{tot}` of :math:`\hat\mu`.
        mu_err_stat: Statistical part: HESSE error of a refit with every nuisance fixed
            at its best-fit value.
        mu_err_syst: :math:`\sqrt{\max(\sigma_\text{tot}^2 - \sigma_\text{stat}^2, 0)}`.
        parameters: Best-fit values by parameter label (vector parameters such as the
            staterror expand to ``name[i]``).
        uncertainties: HESSE uncertainties by label (0 for fixed parameters).
        pulls: :math:`(\hat\theta - \theta_0)/\sigma_\text{prior}` of the free constrained
            nuisances.
        correlation: Correlation matrix in the order of ``labels``.
        labels: Parameter labels in pyhf's order.
        twice_nll: :math:`-2\ln L` at the best fit.
        warnings: Problems of this fit, e.g. :math:`\hat\mu` within
            :data:`BOUND_SIGMAS` σ of a POI bound (where HESSE errors and the ±1σ
            interval are unreliable).
    """

    mu_hat: float
    mu_err: float
    mu_err_stat: float
    mu_err_syst: float
    parameters: dict[str, float]
    uncertainties: dict[str, float]
    pulls: dict[str, float]
    correlation: FloatArray
    labels: list[str]
    twice_nll: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the correlation matrix as nested lists)."""
        out: dict[str, Any] = to_jsonable(
            {
                "mu_hat": self.mu_hat,
                "mu_err": self.mu_err,
                "mu_err_stat": self.mu_err_stat,
                "mu_err_syst": self.mu_err_syst,
                "parameters": self.parameters,
                "uncertainties": self.uncertainties,
                "pulls": self.pulls,
                "correlation": self.correlation,
                "labels": self.labels,
                "twice_nll": self.twice_nll,
                "warnings": self.warnings,
            }
        )
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row: the signal strength and its total, statistical and systematic uncertainty."""
        return [
            {
                "mu_hat": self.mu_hat,
                "mu_err": self.mu_err,
                "mu_err_stat": self.mu_err_stat,
                "mu_err_syst": self.mu_err_syst,
            }
        ]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the fit (μ̂ and its uncertainties) and the nuisance pulls to ``report``."""
        report.add_section(
            "Fit",
            text="Maximum-likelihood fit of the signal strength μ (pyhf, Minuit, HESSE uncertainties).",
            table=self.summary()[0],
        )
        if self.pulls:
            report.add_section(
                "Pulls",
                text="(θ̂ − θ₀)/σ_prior of the constrained nuisances.",
                table=[{"nuisance": k, "pull": v} for k, v in self.pulls.items()],
            )


@dataclass(frozen=True)
class _Nuisance:
    """One scalar component of a constrained nuisance parameter."""

    label: str
    index: int
    center: float
    width: float


class Measurement:
    r"""Profile-likelihood measurement of the signal strength from binned templates.

    Args:
        templates: Expected signal and background yields with their systematics.
        poi: Name of the signal-strength parameter.
        poi_bounds: Fit range of the POI (see :func:`build_workspace`).
        histosys: Treatment of the shape variations before they enter the workspace
            (:func:`aalearn.inference.systematics.treat_histosys`): ``"auto"`` mirrors
            one-sided and symmetrises strongly asymmetric variations (with a warning
            naming each), ``"mirror"``/``"symmetrize"`` force one treatment,
            ``"none"`` uses them as given (pyhf's ``code4p`` interpolation, which
            turns a one-sided variation into an even function of α: no first-order
            effect on σ_μ and a biased μ̂).

    Attributes:
        input_templates: The templates as given.
        templates: The templates of the workspace (after the histosys treatment).
        histosys_info: Per variation: its kind, the method applied, the significance
            test against template statistics and the warnings (see ``treat_histosys``).

    Example:
        >>> t = Templates(edges=[0.0, 0.5, 1.0], signal=[2.0, 8.0], background=[80.0, 20.0])
        >>> m = Measurement(t)
        >>> r = m.fit([82.0, 36.0])
        >>> r.mu_hat > 1.0
        True
    """

    def __init__(
        self,
        templates: Templates,
        *,
        poi: str = "mu",
        poi_bounds: tuple[float, float] | None = None,
        histosys: str = "auto",
    ) -> None:
        self.input_templates = templates
        self.templates, self.histosys_info = treat_histosys(templates, histosys)
        templates = self.templates
        self.poi = poi
        self._workspace = build_workspace(templates, poi=poi, poi_bounds=poi_bounds)
        # The specification is built by build_workspace, not read from a user: pyhf's
        # jsonschema validation (half of a construction's CPU time: 0.026 -> 0.014 s on a 2-bin
        # model; `surrogate closure` builds dozens) is skipped here;
        # tests/inference/test_measurement.py validates build_workspace's output against
        # pyhf's schema instead.
        with _numpy_backend() as pyhf, _quiet_schema_validation():
            self._model: Any = pyhf.Workspace(self._workspace, validate=False).model(validate=False)
        config = self._model.config
        self._poi_index = int(config.poi_index)
        self._labels: list[str] = list(config.par_names)
        self._init: list[float] = [float(v) for v in config.suggested_init()]
        self._bounds: list[tuple[float, float]] = [(float(a), float(b)) for a, b in config.suggested_bounds()]
        self._fixed: list[bool] = [bool(v) for v in config.suggested_fixed()]
        self._nuisances = self._constrained_nuisances()
        self._asimov: FitResult | None = None

    # ----------------------------------------------------------------------------- basics
    @property
    def workspace(self) -> dict[str, Any]:
        """A copy of the pyhf workspace specification (Asimov observations)."""
        return copy.deepcopy(self._workspace)

    @property
    def model(self) -> Any:
        """The pyhf model (``pyhf.pdf.Model``)."""
        return self._model

    @property
    def labels(self) -> list[str]:
        """Parameter labels in pyhf's order (vector parameters as ``name[i]``)."""
        return list(self._labels)

    @property
    def n_bins(self) -> int:
        """Number of main-channel bins."""
        return self.templates.n_bins

    def expected_data(self, mu: float = 1.0) -> FloatArray:
        """Expected main-channel counts followed by the nominal auxiliary data, as pyhf wants.

        Args:
            mu: Signal strength; the nuisances stay at their nominal values.

        Returns:
            ``(B + n_aux,)`` array.
        """
        pars = list(self._init)
        pars[self._poi_index] = float(mu)
        with _numpy_backend():
            return np.asarray(self._model.expected_data(pars), dtype=np.float64)

    def workspace_json(self, path: str | Path | None = None) -> str:
        """The workspace as JSON text; written atomically to ``path`` when given.

        Args:
            path: Output file (parent directories are created).

        Returns:
            The JSON text.
        """
        text = json.dumps(self._workspace, indent=2) + "\n"
        if path is not None:
            atomic_write(Path(path), text)
        return text

    def _constrained_nuisances(self) -> list[_Nuisance]:
        config = self._model.config
        out: list[_Nuisance] = []
        for name in config.par_order:
            pset = config.param_set(name)
            if not getattr(pset, "constrained", False):
                continue
            widths = np.atleast_1d(np.asarray(pset.width(), dtype=np.float64))
            sl = config.par_slice(name)
            for k, index in enumerate(range(sl.start, sl.stop)):
                if self._fixed[index]:
                    continue
                label = name if pset.is_scalar else f"{name}[{k}]"
                out.append(_Nuisance(label, index, self._init[index], float(widths[k])))
        return out

    def _full_data(self, data: npt.ArrayLike | None) -> FloatArray:
        """Main counts (``(B,)``) plus nominal aux data, or a full ``(B + n_aux,)`` vector."""
        if data is None:
            return self.expected_data(1.0)
        n_aux = int(self._model.config.nauxdata)
        arr = check_array(data, name="data", ndim=1, dtype=np.float64)
        if arr.shape[0] == self.n_bins + n_aux and n_aux > 0:
            _main_data(arr[: self.n_bins], self.n_bins)
            return arr
        main = _main_data(arr, self.n_bins)
        return np.concatenate([main, np.asarray(self._model.config.auxdata, dtype=np.float64)])

    # ------------------------------------------------------------------------------ fits
    def _minimize(
        self, data: FloatArray, *, init: list[float] | None = None, fixed: list[bool] | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        """One Minuit fit; returns (values, errors, correlation, twice_nll)."""
        fix = list(self._fixed if fixed is None else fixed)
        # pyhf leaves Minuit's initial step sizes to iminuit, which takes 1 % of |start|
        # (0.1 at exactly 0): a warm start at a tiny best-fit value such as α̂ = 1e-8 gives
        # a 1e-10 step and Migrad stalls above its EDM goal. Free starts within 0.1 of zero
        # are therefore snapped to zero.
        start = [
            0.0 if (not f and abs(v) < 0.1) else float(v)
            for v, f in zip(self._init if init is None else init, fix, strict=True)
        ]
        nominal = [v if f else n for v, n, f in zip(start, self._init, fix, strict=True)]
        n_free = fix.count(False)
        # Minuit's own default call limit (pyhf raises it to 100 000): a fit that needs more is
        # one Migrad does not solve from this start. For pseudo-data the model describes badly
        # (nuisances at their bounds, e.g. strongly attacked jets) Migrad used 400 000 calls
        # (130 s, 17 parameters) and failed, where a start at scipy's SLSQP best fit converges
        # in 600 calls (0.14 s) to the same minimum.
        cap = 200 + 100 * n_free + 5 * n_free**2
        with _numpy_backend("minuit") as pyhf, _quiet_pyhf_optimizer():

            def migrad(init_pars: list[float], strategy: int | None, maxiter: int | None) -> Any:
                return pyhf.infer.mle.fit(
                    data,
                    self._model,
                    init_pars=init_pars,
                    par_bounds=list(self._bounds),
                    fixed_params=fix,
                    strategy=strategy,
                    return_uncertainties=True,
                    return_correlations=True,
                    return_fitted_val=True,
                    **({"maxiter": maxiter} if maxiter else {}),
                )

            # Retry ladder: the start, the nominal start, then Migrad (default strategy, then
            # strategy 2) from the SLSQP best fit.
            attempts: list[tuple[list[float] | None, int | None, int | None]] = [(start, None, cap)]
            if nominal != start:
                attempts.append((nominal, None, cap))
            attempts += [(None, None, None), (None, 2, None)]
            polished: list[float] | None = None
            for k, (init_pars, strategy, maxiter) in enumerate(attempts):
                try:
                    if init_pars is None:
                        if polished is None:
                            polished = self._slsqp(data, start, fix)
                        init_pars = polished
                    pars, corr, fval = migrad(init_pars, strategy, maxiter)
                    break
                except pyhf.exceptions.FailedMinimization:
                    if k == len(attempts) - 1:
                        raise
        pars = np.asarray(pars, dtype=np.float64)
        return pars[:, 0], pars[:, 1], np.asarray(corr, dtype=np.float64), float(fval)

    def _sigma_mu_fixed(self, data: FloatArray, best: FloatArray, indices: list[int], sigma: float) -> float:
        """HESSE σ_μ of a refit with the parameters ``indices`` fixed at ``best``.

        ``sigma`` (the σ_μ of the fit at ``best``) is returned without a refit when the
        parameters are fixed already.
        """
        fixed = list(self._fixed)
        if all(fixed[i] for i in indices):
            return sigma
        for i in indices:
            fixed[i] = True
        return float(self._minimize(data, init=[float(v) for v in best], fixed=fixed)[1][self._poi_index])

    def _fit_with_fixed(self, data: FloatArray, best: FloatArray, values: Mapping[int, float]) -> float:
        """μ̂ of a refit with the parameters ``values`` (index -> value) fixed."""
        init = [float(v) for v in best]
        fixed = list(self._fixed)
        for index, value in values.items():
            lo, hi = self._bounds[index]
            init[index] = float(np.clip(value, lo, hi))
            fixed[index] = True
        return self._mu_hat(data, init=init, fixed=fixed)[0]

    def _mu_hat(
        self, data: FloatArray, *, init: list[float] | None = None, fixed: list[bool] | None = None
    ) -> tuple[float, float, FloatArray]:
        """(μ̂, its HESSE error, all fitted values) of a fit where only the best-fit values matter.

        Migrad first (:meth:`_minimize`, with its retry ladder). When it does not converge (for
        example for pseudo-data the model cannot describe, whose best fit lies on the bounds of
        several nuisances, where Migrad's estimated distance to the minimum stays large)
        scipy's SLSQP, which handles bounds directly, gives the best-fit values; the error is
        then NaN.
        """
        pyhf = _pyhf()
        try:
            values, errors, _, _ = self._minimize(data, init=init, fixed=fixed)
            return float(values[self._poi_index]), float(errors[self._poi_index]), values
        except pyhf.exceptions.FailedMinimization:
            start = list(self._init if init is None else init)
            values = np.asarray(self._slsqp(data, start, list(self._fixed if fixed is None else fixed)))
            return float(values[self._poi_index]), math.nan, values

    def _slsqp(self, data: FloatArray, init: list[float], fixed: list[bool]) -> list[float]:
        """Best-fit values from scipy's SLSQP (bounds handled directly; no HESSE errors)."""
        with _numpy_backend("scipy") as pyhf, _quiet_pyhf_optimizer():
            pars = pyhf.infer.mle.fit(data, self._model, init_pars=init, par_bounds=list(self._bounds),
                                      fixed_params=fixed)  # fmt: skip
        return [float(v) for v in np.asarray(pars, dtype=np.float64)]

    def fit(self, data: npt.ArrayLike | None = None) -> FitResult:
        r"""Maximum-likelihood fit of :math:`\mu` and the nuisances.

        Args:
            data: Main-channel counts ``(B,)`` (the nominal auxiliary data are appended)
                or a full ``(B + n_aux,)`` vector; ``None`` for the Asimov data at
                :math:`\mu = 1`.

        Returns:
            The :class:`FitResult`.

        Raises:
            ValueError: For data of the wrong length or negative counts.
            pyhf.exceptions.FailedMinimization: When Minuit does not converge.
        """
        full = self._full_data(data)
        values, errors, corr, twice_nll = self._minimize(full)
        p = self._poi_index
        mu_err = float(errors[p])
        stat = self._sigma_mu_fixed(full, values, [i for i in range(len(values)) if i != p], mu_err)
        syst = math.sqrt(max(mu_err**2 - stat**2, 0.0))
        pulls = {n.label: float((values[n.index] - n.center) / n.width) for n in self._nuisances}
        notes = self._bound_warnings(float(values[p]), mu_err, what="fitted μ̂")
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        return FitResult(
            mu_hat=float(values[p]),
            mu_err=mu_err,
            mu_err_stat=stat,
            mu_err_syst=syst,
            parameters={lab: float(v) for lab, v in zip(self._labels, values, strict=True)},
            uncertainties={lab: float(e) for lab, e in zip(self._labels, errors, strict=True)},
            pulls=pulls,
            correlation=corr,
            labels=list(self._labels),
            twice_nll=twice_nll,
            warnings=notes,
        )

    @property
    def poi_bounds(self) -> tuple[float, float]:
        """The fit range of the POI."""
        return self._bounds[self._poi_index]

    def _bound_warnings(self, mu: float, sigma: float, *, what: str) -> list[str]:
        """A note when ``mu`` lies within :data:`BOUND_SIGMAS` ``sigma`` of a POI bound."""
        lo, hi = self.poi_bounds
        if not (math.isfinite(sigma) and sigma > 0):
            return []
        notes = []
        for side, bound in (("lower", lo), ("upper", hi)):
            dist = abs(mu - bound) / sigma
            if dist < BOUND_SIGMAS:
                notes.append(
                    f"the {what} = {mu:.4g} lies {dist:.2f} σ_μ (σ_μ = {sigma:.3g}) from the POI {side} "
                    f"bound {bound:.4g}: fits pile up at the bound, their HESSE errors are truncated and "
                    "the ±1σ interval does not cover 68 %; widen poi_bounds (negative μ is allowed while "
                    "every bin keeps μ·s + b > 0) or quote a profile-likelihood (Feldman-Cousins) interval"
                )
        return notes

    def asimov_significance(self) -> float:
        r"""Median expected discovery significance :math:`Z_A` on the Asimov data set.

        The Asimov data set is generated at :math:`\mu = 1` with nominal nuisances
        (auxiliary data included); pyhf's asymptotic test of :math:`\mu = 0` with the
        discovery statistic :math:`q_0` returns :math:`p_0`, and
        :math:`Z_A = \Phi^{-1}(1 - p_0)` (``scipy.stats.norm.isf``), which equals
        :math:`\sqrt{q_{0,A}}` (Cowan et al. 2011, eq. 97 with the Asimov data). For one
        bin without uncertainty this is :math:`\sqrt{2[(s+b)\ln(1+s/b) - s]}`; with a
        ``shapesys`` background uncertainty it is Cowan's 2012 formula with
        :math:`\sigma_b`.

        Returns:
            :math:`Z_A` (0 when :math:`\hat\mu \le 0`).
        """
        from scipy.stats import norm

        asimov = self.expected_data(1.0)
        free_nuisance = any(not f for i, f in enumerate(self._fixed) if i != self._poi_index)
        with _numpy_backend("minuit" if free_nuisance else "scipy") as pyhf:
            p0 = pyhf.infer.hypotest(
                0.0,
                asimov,
                self._model,
                init_pars=list(self._init),
                par_bounds=list(self._bounds),
                fixed_params=list(self._fixed),
                test_stat="q0",
                calctype="asymptotics",
            )
        return float(norm.isf(float(np.asarray(p0))))

    def impacts(self, data: npt.ArrayLike | None = None) -> dict[str, dict[str, float]]:
        r"""Impact of each constrained nuisance on :math:`\hat\mu`.

        Post-fit: refit with the nuisance fixed at :math:`\hat\theta \pm \sigma_{\hat\theta}`;
        pre-fit: fixed at :math:`\theta_0 \pm \sigma_\text{prior}` (clipped to the
        parameter bounds). The impact is :math:`\hat\mu_\text{fixed} - \hat\mu`.

        Args:
            data: As for :meth:`fit`.

        Returns:
            ``label -> {"postfit_up", "postfit_down", "prefit_up", "prefit_down"}``,
            sorted by the largest absolute post-fit impact first.
        """
        full = self._full_data(data)
        best, errors, _, _ = self._minimize(full)
        mu_hat = float(best[self._poi_index])
        out: dict[str, dict[str, float]] = {}
        for n in self._nuisances:
            sig = float(errors[n.index])
            post = {
                k: self._fit_with_fixed(full, best, {n.index: best[n.index] + s * sig}) - mu_hat
                for k, s in (("postfit_up", 1.0), ("postfit_down", -1.0))
            }
            pre = {
                k: self._fit_with_fixed(full, best, {n.index: n.center + s * n.width}) - mu_hat
                for k, s in (("prefit_up", 1.0), ("prefit_down", -1.0))
            }
            out[n.label] = {**post, **pre}
            if (
                n.label in self.templates.histosys
                and pre["prefit_up"] * pre["prefit_down"] > 0
                and min(abs(pre["prefit_up"]), abs(pre["prefit_down"])) > 1e-4
            ):
                warnings.warn(
                    f"histosys {n.label!r}: pre-fit impacts on μ̂ of the up ({pre['prefit_up']:+.3g}) and "
                    f"down ({pre['prefit_down']:+.3g}) variations have the same sign (method "
                    f"{self.histosys_info.get(n.label, {}).get('method', 'none')!r}); the nuisance cannot "
                    "describe a shift in both directions and biases μ̂",
                    UserWarning,
                    stacklevel=2,
                )
        order = sorted(out, key=lambda k: -max(abs(out[k]["postfit_up"]), abs(out[k]["postfit_down"])))
        return {k: out[k] for k in order}

    def breakdown(
        self, data: npt.ArrayLike | None = None, groups: Mapping[str, str | Sequence[str]] | None = None
    ) -> dict[str, Any]:
        r"""Uncertainty breakdown of :math:`\sigma_\mu` by groups of nuisance parameters.

        For each group: :math:`\sigma_{\mu,\text{fixed}}`, the HESSE uncertainty of a refit
        with the group's parameters fixed at their best-fit values, and the group's
        contribution :math:`\sqrt{\sigma_\mu^2 - \sigma_{\mu,\text{fixed}}^2}` (the ATLAS and
        CMS convention; 0 when numerical noise makes the difference negative). It says how
        much :math:`\sigma_\mu` would shrink if the group's uncertainty were removed, for
        example by a tagger that is insensitive to it (INFERNO, arXiv:1806.04743).

        The contributions of correlated groups do **not** add in quadrature to the total
        :math:`\sigma_\mu` (nor to the ``"all systematics"`` contribution): each is the
        loss of information when one group alone is removed.

        Args:
            data: As for :meth:`fit` (``None``: the Asimov data at :math:`\mu = 1`).
            groups: Group name -> parameter labels or label prefixes (``"staterror"``
                matches every ``staterror_score[i]``). Default: ``"staterror"`` (every MC
                statistical γ), each normsys and each histosys by name, ``"shapesys"``
                (if any). ``"all systematics"`` (every nuisance; its
                ``sigma_mu_fixed`` is :attr:`FitResult.mu_err_stat`) is always added
                unless a group has that name.

        Returns:
            ``{"mu_hat", "sigma_mu", "groups": {name: {"parameters", "sigma_mu_fixed",
            "contribution", "fraction_of_variance"}}, "definition"}`` with
            ``fraction_of_variance`` = contribution²/σ_μ². A group whose refit fails
            gets NaN (and a :class:`UserWarning`).

        Raises:
            ValueError: For a group entry that matches no nuisance label (the message
                lists the known labels) or one that names the POI.
            pyhf.exceptions.FailedMinimization: When the nominal fit does not converge.
        """
        if groups is None:
            config = self._model.config
            param_labels = {
                name: self._labels[config.par_slice(name)] for name in config.par_order if name != self.poi
            }
            members = default_groups(config.modifiers, param_labels, poi=self.poi)
        else:
            members = resolve_groups(groups, self._labels, poi=self.poi)
        full = self._full_data(data)
        best, errors, _, _ = self._minimize(full)
        p = self._poi_index
        sigma = float(errors[p])
        pyhf = _pyhf()
        rows: dict[str, dict[str, Any]] = {}
        for name, labels in members.items():
            try:
                fixed = self._sigma_mu_fixed(full, best, [self._labels.index(lab) for lab in labels], sigma)
            except pyhf.exceptions.FailedMinimization:
                warnings.warn(
                    f"breakdown: the refit with group {name!r} fixed failed", UserWarning, stacklevel=2
                )
                fixed = math.nan
            contribution = math.sqrt(max(sigma**2 - fixed**2, 0.0)) if math.isfinite(fixed) else math.nan
            rows[name] = {
                "parameters": list(labels),
                "sigma_mu_fixed": fixed,
                "contribution": contribution,
                "fraction_of_variance": contribution**2 / sigma**2 if sigma > 0 else math.nan,
            }
        return {"mu_hat": float(best[p]), "sigma_mu": sigma, "groups": rows, "definition": DEFINITION}

    def shift(self, data: npt.ArrayLike, reference: npt.ArrayLike | None = None) -> dict[str, float]:
        r"""Shift of :math:`\hat\mu` between a reference and a perturbed data set.

        Args:
            data: Perturbed main-channel counts (for example attacked jets through
                :func:`histogram_data`).
            reference: Reference counts; ``None`` for the Asimov data at :math:`\mu = 1`.

        Returns:
            ``mu_hat``, ``mu_hat_reference``, ``delta_mu`` (perturbed − reference),
            ``sigma_mu`` (total uncertainty of the reference fit),
            ``delta_mu_over_sigma`` and ``converged`` (``False``: Migrad did not converge
            on ``data``, and ``mu_hat`` is scipy's SLSQP best fit, with a warning).
        """
        ref = self._asimov_fit() if reference is None else self.fit(reference)
        mu_new, err_new, values = self._mu_hat(self._full_data(data))
        converged = math.isfinite(err_new)
        if converged:
            for note in self._bound_warnings(mu_new, err_new, what="fitted μ̂"):
                warnings.warn(note, UserWarning, stacklevel=2)
        else:
            at_bound = [
                n.label
                for n in self._nuisances
                if min(abs(values[n.index] - b) for b in self._bounds[n.index]) < 1e-3 * n.width
            ]
            warnings.warn(
                f"the fit of the perturbed data did not converge in Migrad; μ̂ = {mu_new:.4g} is scipy's "
                "SLSQP best fit"
                + (f", with {', '.join(at_bound)} at their bounds" if at_bound else "")
                + ": the model describes these data badly and the shift depends on the nuisances' "
                "bounds; read it as a sign of mismodelling, not as a precise number",
                UserWarning,
                stacklevel=2,
            )
        delta = mu_new - ref.mu_hat
        return {
            "mu_hat": mu_new,
            "mu_hat_reference": ref.mu_hat,
            "delta_mu": delta,
            "sigma_mu": ref.mu_err,
            "delta_mu_over_sigma": delta / ref.mu_err if ref.mu_err > 0 else math.nan,
            "converged": converged,
        }

    def _asimov_fit(self) -> FitResult:
        """:meth:`fit` of the Asimov data at μ = 1, computed once per measurement."""
        if self._asimov is None:
            self._asimov = self.fit()
        return self._asimov

    # ----------------------------------------------------------------------------- toys
    def _sample_toys(self, rng: np.random.Generator, mu: float, n_toys: int) -> FloatArray:
        """Poisson main counts and auxiliary data fluctuated per pyhf's constraint terms."""
        config = self._model.config
        pars = list(self._init)
        pars[self._poi_index] = float(mu)
        with _numpy_backend():
            main = np.asarray(self._model.expected_actualdata(pars), dtype=np.float64)
        toys_main = rng.poisson(main, size=(n_toys, main.shape[0])).astype(np.float64)
        aux_parts: list[FloatArray] = []
        for name in config.auxdata_order:
            pset = config.param_set(name)
            sl = config.par_slice(name)
            theta = np.asarray(pars[sl], dtype=np.float64)
            fixed = np.asarray(self._fixed[sl], dtype=bool)
            if pset.pdf_type == "normal":
                width = np.atleast_1d(np.asarray(pset.width(), dtype=np.float64))
                part = rng.normal(theta, width, size=(n_toys, theta.shape[0]))
                part[:, fixed] = theta[fixed]
            elif pset.pdf_type == "poisson":
                factors = np.asarray(pset.factors, dtype=np.float64)
                part = rng.poisson(factors * theta, size=(n_toys, theta.shape[0])).astype(np.float64)
                part[:, fixed] = (factors * theta)[fixed]
            else:  # pragma: no cover - pyhf has only these two constraint types
                raise NotImplementedError(f"unknown pyhf constraint type {pset.pdf_type!r}")
            aux_parts.append(part)
        aux = np.concatenate(aux_parts, axis=1) if aux_parts else np.zeros((n_toys, 0))
        if aux.shape[1] != config.nauxdata:  # pragma: no cover - guards pyhf layout changes
            raise RuntimeError("auxiliary-data layout differs from pyhf's; cannot generate toys")
        return np.concatenate([toys_main, aux], axis=1)

    def coverage(self, n_toys: int = 200, mu_true: float = 1.0, seed: int = 0) -> dict[str, Any]:
        r"""Frequentist coverage of :math:`\hat\mu \pm \sigma_{\hat\mu}` from pseudo-experiments.

        Each toy draws Poisson main counts around the expectation at ``mu_true`` (nominal
        nuisances) and auxiliary data from the constraint terms (Gaussian for
        normsys/histosys/staterror, Poisson :math:`\mathrm{Pois}(\tau_i\gamma_i)` for
        shapesys), then fits all parameters. For a well-behaved likelihood the coverage is
        close to 68.3 % and the pulls :math:`(\hat\mu - \mu)/\sigma_{\hat\mu}` are
        standard normal.

        A toy whose fit fails (raises, or gives a non-finite or non-positive error) has no
        interval, so it counts as **not covering**: ``coverage`` is the fraction of *all*
        toys; ``coverage_converged`` is the fraction among converged fits. When
        ``mu_true`` lies within :data:`BOUND_SIGMAS` σ_μ (the Asimov σ at ``mu_true``) of
        a POI bound, the fits of about half the toys end at the bound, HESSE errors
        there are truncated, and the interval over- or under-covers; this is reported in
        ``warnings`` (and as a :class:`UserWarning`) with ``n_at_bound``.

        Args:
            n_toys: Number of pseudo-experiments.
            mu_true: Injected signal strength.
            seed: Seed of the NumPy generator.

        Returns:
            ``coverage`` (covering toys / ``n_toys``, failed fits not covering),
            ``coverage_error`` (binomial standard error), ``coverage_converged``,
            ``mean_pull``, ``mean_pull_error``, ``pull_std`` (over converged toys),
            ``n_toys``, ``n_failed``, ``n_at_bound`` (fits with μ̂ within 10⁻⁶ of the
            bound range of a bound), ``sigma_asimov`` and ``warnings``.

        Raises:
            ValueError: For ``n_toys < 1`` or ``mu_true`` outside the POI bounds.
        """
        if int(n_toys) < 1:
            raise ValueError(f"n_toys must be at least 1, got {n_toys}")
        lo, hi = self._bounds[self._poi_index]
        if not (math.isfinite(mu_true) and lo <= mu_true <= hi):
            raise ValueError(f"mu_true must lie within the POI bounds [{lo}, {hi}], got {mu_true}")
        pyhf = _pyhf()
        notes: list[str] = []
        sigma_asimov = math.nan
        init = list(self._init)
        init[self._poi_index] = float(mu_true)
        try:
            sigma_asimov = float(self._minimize(self.expected_data(mu_true), init=init)[1][self._poi_index])
        except pyhf.exceptions.FailedMinimization:
            notes.append(f"the Asimov fit at mu_true = {mu_true:g} failed; distance to the bounds unknown")
        notes += self._bound_warnings(float(mu_true), sigma_asimov, what="true μ")
        toys = self._sample_toys(np.random.default_rng(seed), mu_true, int(n_toys))
        pulls: list[float] = []
        n_failed = n_at_bound = 0
        tol = 1e-6 * (hi - lo)
        for toy in toys:
            try:
                values, errors, _, _ = self._minimize(toy, init=init)
            except (pyhf.exceptions.FailedMinimization, ValueError, FloatingPointError):
                n_failed += 1
                continue
            err = float(errors[self._poi_index])
            if not (math.isfinite(err) and err > 0):
                n_failed += 1
                continue
            mu_hat = float(values[self._poi_index])
            n_at_bound += int(mu_hat - lo < tol or hi - mu_hat < tol)
            pulls.append((mu_hat - mu_true) / err)
        arr = np.asarray(pulls, dtype=np.float64)
        n = int(n_toys)
        n_cover = int(np.sum(np.abs(arr) <= 1.0))
        cov = n_cover / n
        ok = arr.shape[0] > 0
        if n_failed:
            notes.append(f"{n_failed} of {n} fits failed; they count as not covering")
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        return {
            "coverage": cov,
            "coverage_error": math.sqrt(max(cov * (1 - cov), 1.0 / n) / n),
            "coverage_converged": n_cover / arr.shape[0] if ok else math.nan,
            "mean_pull": float(arr.mean()) if ok else math.nan,
            "mean_pull_error": float(arr.std(ddof=1) / math.sqrt(arr.shape[0]))
            if arr.shape[0] > 1
            else math.nan,
            "pull_std": float(arr.std(ddof=1)) if arr.shape[0] > 1 else math.nan,
            "n_toys": float(n),
            "n_failed": float(n_failed),
            "n_at_bound": float(n_at_bound),
            "mu_true": float(mu_true),
            "sigma_asimov": sigma_asimov,
            "warnings": notes,
        }


# --------------------------------------------------------------------------------------
# the measurement as a command's result
# --------------------------------------------------------------------------------------
@dataclass
class MeasurementResult:
    """The output of ``aalearn measure``: fit, impacts, shifts and coverage, with the templates.

    Attributes:
        data: The JSON object (``mu_hat``, ``mu_err``, ``mu_err_stat``, ``mu_err_syst``,
            ``z_asimov``, ``breakdown``, ``impacts``, ``pulls``, ``shifts``, optional
            ``coverage``, ...).
        templates: The templates of the fit (for the template figure).

    Example:
        >>> r = MeasurementResult({"mu_hat": 1.0, "mu_err": 0.2, "mu_err_stat": 0.1,
        ...                        "mu_err_syst": 0.17, "z_asimov": 3.0}, templates=None)
        >>> r.summary()[0]["mu_hat"]
        1.0
    """

    data: dict[str, Any]
    templates: Templates | None

    _KEYS = ("mu_hat", "mu_err", "mu_err_stat", "mu_err_syst", "z_asimov", "delta_mu_over_sigma", "seconds")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object."""
        return self.data

    def summary(self) -> list[dict[str, Any]]:
        """One row: μ̂, its uncertainties, Z_A, the shift under ``--data`` and the time."""
        return [{k: self.data.get(k) for k in self._KEYS if k in self.data}]

    def add_to(self, report: ReportBuilder) -> None:
        """Add the fit, uncertainty breakdown, pulls, coverage, impacts and shifts sections to ``report``."""
        result = self.data
        report.add_section(
            "Fit",
            text=(
                "Asimov fit (μ = 1) of the classifier-score templates. Systematics: normalisation (normsys), "
                "shape from modelling variations (histosys), MC statistics (staterror). The statistical "
                "uncertainty comes from a refit with every nuisance fixed; σ_syst = √(σ² − σ_stat²)."
            ),
            table={k: result[k] for k in ("mu_hat", "mu_err", "mu_err_stat", "mu_err_syst", "z_asimov")},
            figures=[plot_templates(self.templates)] if self.templates is not None else [],
        )
        if result.get("breakdown"):
            report.add_section(
                "Uncertainty breakdown",
                text=(
                    "σ_μ with each group of nuisance parameters fixed at its best-fit values, and the "
                    "group's contribution √(σ_μ² − σ_μ,fixed²): what removing that uncertainty (for example "
                    "with a tagger insensitive to it) would gain. Contributions of correlated groups do not "
                    "add in quadrature to the total."
                ),
                table=breakdown_rows(result["breakdown"]),
            )
        if result.get("pulls"):
            report.add_section(
                "Pulls",
                text=(
                    "(θ̂ − θ₀)/σ_prior of the constrained nuisances "
                    "(0 on the Asimov data set by construction)."
                ),
                table=[{"nuisance": k, "pull": v} for k, v in result["pulls"].items()],
            )
        if result.get("histosys"):
            report.add_section(
                "Shape systematics",
                text=(
                    "Each modelling variation: its kind (two-sided, one-sided: up and down on the same side "
                    "of nominal, asymmetric), the treatment applied (mirror: down = 2·nominal − up; "
                    "symmetrize: ±(up − down)/2; none) and the χ² test of each side against the "
                    "statistical noise of the templates."
                ),
                table=[
                    {"variation": k, **{f: v for f, v in info.items() if f != "warnings"}}
                    for k, info in result["histosys"].items()
                ],
            )
        if result.get("warnings"):
            report.add_section(
                "Warnings",
                text="Problems found by the measurement.",
                table=[{"warning": w} for w in result["warnings"]],
            )
        if "coverage" in result:
            report.add_section(
                "Coverage of the μ interval",
                text=(
                    "Pseudo-experiments at μ = 1: fraction of toys whose ±1σ interval contains the true μ "
                    "(failed fits count as not covering), with its binomial standard error."
                ),
                table={k: v for k, v in result["coverage"].items() if k != "warnings"},
            )
        if result.get("impacts"):
            report.add_section(
                "Impacts",
                text="Post-fit impact of each nuisance on μ̂ (refit with the nuisance fixed at θ̂ ± σ_θ̂).",
                table=[{"nuisance": k, **v} for k, v in result["impacts"].items()],
                figures=[plot_impacts(result["impacts"])],
            )
        if result.get("shifts"):
            report.add_section(
                "Shifts of the measurement",
                text=(
                    "The Asimov pseudo-data replaced by other jets (attacked, modelling variations, data); "
                    "Δμ̂/σ_μ in units of the nominal fit's total uncertainty. |Δμ̂/σ_μ| > 1 means the shift "
                    "alone would move the result by more than its quoted uncertainty."
                ),
                table=[{"pseudo-data": k, **v} for k, v in result["shifts"].items()],
                figures=[plot_shifts(result["shifts"])],
            )
