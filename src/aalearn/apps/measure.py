r"""The measurement workflow behind ``aalearn measure``: classifier → templates → pyhf fit → shifts.

1. Score the signal (top, label 0) and background (W, label 1) samples with the model and
   build score templates normalised to the expected yields, with a normalisation
   uncertainty per sample (``normsys``), shape uncertainties from modelling-variation
   samples (``histosys``) and the MC statistical uncertainty (``staterror``).
2. Fit the Asimov data set: :math:`\hat\mu`, its uncertainty split into statistics and
   systematics and broken down by groups of nuisance parameters, the expected discovery
   significance :math:`Z_A`, the impact of each nuisance parameter.
3. Replace the pseudo-data by other jets — attacked jets (each attack of the attack
   framework) or modelling-variation jets — and report :math:`\Delta\hat\mu/\sigma_\mu`:
   whether a perturbation that passes the validation checks would bias the measurement.

Pseudo-data from a labelled sample are built class by class: the signal jets' score
histogram scaled to the expected signal yield plus the background jets' histogram scaled to
the expected background yield, so that only the *shape* of each class's score distribution
changes (a normalisation change is what the normsys nuisances describe).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from aalearn.apps.inputs import load_data, load_model_arg, parse_name_value
from aalearn.attacks import ATTACKS, get_attack
from aalearn.data.dataset import LABEL_TOP, LABEL_W, JetDataset
from aalearn.inference.measurement import Measurement, MeasurementResult, Templates, templates_from_scores
from aalearn.inference.systematics import check_histosys_method
from aalearn.models import predict_proba
from aalearn.report import write_run

__all__ = [
    "class_scores",
    "measure_files",
    "measurement_templates",
    "parse_variation",
    "pseudo_data",
    "quantile_edges",
]

FloatArray = npt.NDArray[np.float64]


def _scores(model: nn.Module, features: npt.ArrayLike) -> FloatArray:
    return np.asarray(predict_proba(model, features), dtype=np.float64)


def class_scores(model: nn.Module, ds: JetDataset, label: int) -> FloatArray:
    """Scores of the jets of class ``label`` (all jets when the file has no labels)."""
    x = ds.features if ds.labels is None else ds.features[ds.labels == label]
    if len(x) == 0:
        raise ValueError(f"{ds.source or 'the dataset'} holds no jets of label {label}")
    return _scores(model, x)


def pseudo_data(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    edges: npt.ArrayLike,
    *,
    expected_signal: float,
    expected_background: float,
    signal_label: int = LABEL_TOP,
    weights: npt.ArrayLike | None = None,
) -> FloatArray:
    """Pseudo-data counts: per-class score histograms scaled to the expected yields.

    ``weights``: optional per-jet weights (a variation given as event weights); each class's
    histogram is then its weighted histogram scaled to the class's expected yield.

    Raises:
        ValueError: If a class is missing from ``labels``.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    e = np.asarray(edges, dtype=np.float64)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.zeros(len(e) - 1)
    for label, total in ((signal_label, expected_signal), (1 - signal_label, expected_background)):
        sel, w_sel = s[y == label], w[y == label]
        if sel.size == 0:
            raise ValueError(f"pseudo-data need jets of both classes; label {label} is missing")
        h, _ = np.histogram(np.clip(sel, e[0], e[-1]), bins=e, weights=w_sel)
        out += h * (total / w_sel.sum())
    return out


def quantile_edges(
    scores_signal: npt.ArrayLike,
    scores_background: npt.ArrayLike,
    bins: int,
    *,
    expected_signal: float,
    expected_background: float,
) -> FloatArray:
    """Score bin edges in [0, 1] with (about) equal expected total yield per bin.

    Equal-width bins leave empty bins when a classifier separates the classes well (the
    challenge model puts almost every jet at a score of 0 or 1), and empty bins make the
    MC-statistics constraint undefined. Quantiles of the expected mixture (each class
    weighted to its expected yield) avoid that; coinciding edges are merged, so fewer
    than ``bins`` bins may result.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    s = np.concatenate([np.asarray(scores_signal, np.float64), np.asarray(scores_background, np.float64)])
    w = np.concatenate(
        [
            np.full(np.size(scores_signal), expected_signal / max(np.size(scores_signal), 1)),
            np.full(np.size(scores_background), expected_background / max(np.size(scores_background), 1)),
        ]
    )
    order = np.argsort(s, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    inner = np.interp(np.arange(1, bins) / bins, cum, s[order])
    edges = np.unique(np.concatenate([[0.0], np.clip(inner, 0.0, 1.0), [1.0]]))
    # an edge exactly at a pile of identical scores would leave a bin without entries
    keep = [edges[0]]
    for e in edges[1:]:
        if np.any((s >= keep[-1]) & (s < e)) or e == edges[-1]:
            keep.append(e)
    return np.asarray(keep, dtype=np.float64)


def parse_variation(spec: str) -> tuple[str, Path, Path]:
    """Parse ``NAME=DOWN_FILE:UP_FILE`` (a modelling variation given as two labelled files).

    Example:
        >>> parse_variation("fsr=down.h5:up.h5")
        ('fsr', PosixPath('down.h5'), PosixPath('up.h5'))
    """
    form, example = "NAME=DOWN_FILE:UP_FILE", "fsr=fsr_down.h5:fsr_up.h5"
    [(name, files)] = parse_name_value([spec], option="--variation", form=form, example=example)
    down, sep, up = files.partition(":")
    if not sep:
        raise ValueError(f"bad --variation {spec!r}: use {form}, e.g. {example}")
    return name, Path(down), Path(up)


def _variation_scores(
    model: nn.Module, path: Path, nominal: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """(signal, background) scores of a variation file; a class it lacks keeps the nominal scores."""
    ds = load_data(path)
    if ds.labels is None:
        raise ValueError(f"variation file {path} needs labels (0 = top, 1 = W)")
    out = []
    for label, nom in ((LABEL_TOP, nominal[0]), (LABEL_W, nominal[1])):
        sel = ds.features[ds.labels == label]
        out.append(_scores(model, sel) if len(sel) else nom)
    return out[0], out[1]


def measurement_templates(
    s_sig: FloatArray,
    s_bkg: FloatArray,
    var_scores: Mapping[str, tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]],
    *,
    bins: int = 10,
    binning: str = "quantile",
    expected_signal: float = 100.0,
    expected_background: float = 1000.0,
    signal_norm: float = 0.05,
    background_norm: float = 0.10,
    staterror: bool = True,
    var_weights: Mapping[str, tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]]
    | None = None,
) -> Templates:
    """The templates of :func:`measure_files` from class scores (arguments as there).

    Args:
        s_sig: Scores of the signal jets.
        s_bkg: Scores of the background jets.
        var_scores: ``name -> ((signal_down, background_down), (signal_up, background_up))``.
        var_weights: The same of per-jet weights of the nominal jets (``weight_variations``).

    Returns:
        Templates with normsys ``signal_norm``/``background_norm``, histosys per variation
        and staterror.
    """
    normsys: dict[str, dict[str, tuple[float, float]]] = {}
    if signal_norm > 0:
        normsys["signal_norm"] = {"signal": (1 - signal_norm, 1 + signal_norm)}
    if background_norm > 0:
        normsys["background_norm"] = {"background": (1 - background_norm, 1 + background_norm)}
    edges = (
        quantile_edges(
            s_sig, s_bkg, bins, expected_signal=expected_signal, expected_background=expected_background
        )
        if binning == "quantile"
        else bins
    )
    return templates_from_scores(
        s_sig,
        s_bkg,
        bins=edges,
        expected_signal=expected_signal,
        expected_background=expected_background,
        variations=var_scores or None,
        normsys=normsys or None,
        staterror=staterror,
        variation_weights=var_weights or None,
    )


def measure_files(
    model: str | Path | nn.Module,
    signal: str | Path | JetDataset,
    background: str | Path | JetDataset,
    *,
    data: str | Path | JetDataset | None = None,
    variations: Sequence[str] | Mapping[str, tuple[Path, Path]] = (),
    attacks: Sequence[str] = (),
    attack_eps: float | None = None,
    bins: int = 10,
    binning: str = "quantile",
    expected_signal: float = 100.0,
    expected_background: float = 1000.0,
    signal_norm: float = 0.05,
    background_norm: float = 0.10,
    staterror: bool = True,
    histosys: str = "auto",
    weight_variations: Mapping[
        str, tuple[tuple[npt.ArrayLike, npt.ArrayLike], tuple[npt.ArrayLike, npt.ArrayLike]]
    ]
    | None = None,
    coverage_toys: int = 0,
    n_max: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """The measurement, its uncertainties and its shifts under other pseudo-data.

    Args:
        model: Classifier file or module (score = P(label = 1), i.e. P(W)).
        signal: Signal (top) jets; with labels, only label-0 jets are used.
        background: Background (W) jets; with labels, only label-1 jets are used.
        data: Optional labelled jets used as pseudo-data (for example modelling-variation
            or attacked jets); gives ``delta_mu_over_sigma``.
        variations: ``NAME=DOWN:UP`` strings (or a mapping) of labelled variation files:
            histosys nuisances.
        attacks: Attack names; the signal and background jets are attacked (labels =
            their class) and used as pseudo-data, one shift per attack.
        attack_eps: Budget (σ units) for ε attacks; default: each attack's default.
        bins: Number of score bins in [0, 1].
        binning: ``"quantile"`` (equal expected yield per bin; no empty bins) or
            ``"uniform"`` (equal width).
        expected_signal: Expected signal yield.
        expected_background: Expected background yield.
        signal_norm: Relative normalisation uncertainty of the signal (normsys).
        background_norm: Relative normalisation uncertainty of the background (normsys).
        staterror: Include the MC statistical uncertainty.
        histosys: Treatment of the variations (:data:`aalearn.inference.systematics.HISTOSYS_METHODS`):
            ``auto`` mirrors one-sided variations (down = 2·nominal − up) and
            symmetrises strongly asymmetric ones, with a warning naming each.
        weight_variations: Modelling variations given as per-jet weights of the nominal
            jets, ``name -> ((signal_down, background_down), (signal_up, background_up))``:
            one weight per top jet of ``signal`` and per W jet of ``background`` (in file
            order, after ``n_max``), e.g. parton-shower weights or a density ratio fitted
            between the nominal and a varied sample (CARL, arXiv:1506.02169). Histosys
            nuisances whose templates share the nominal jets, so their difference carries no
            statistical noise of a separate sample
            (:func:`~aalearn.inference.templates.templates_from_scores`).
        coverage_toys: Pseudo-experiments for the coverage of the μ interval (0: skip).
        n_max: Use at most this many jets per sample.
        seed: Seed (attacks, toys).
        out: Directory for ``report.html``, ``results.json`` and ``workspace.json``.

    Returns:
        A JSON-friendly dict with ``mu_hat``, ``mu_err``, ``mu_err_stat``, ``mu_err_syst``,
        ``z_asimov``, ``breakdown`` (σ_μ with each group of nuisances fixed and the group's
        contribution, :meth:`~aalearn.inference.measurement.Measurement.breakdown`: groups
        ``staterror``, ``signal_norm``, ``background_norm``, one per variation and ``all
        systematics``), ``impacts``, ``shifts`` (and ``delta_mu_over_sigma`` with ``data``),
        ``histosys`` (per variation: kind, method applied, significance against the
        template statistics), ``impact_definition`` and ``warnings`` (every warning of the
        measurement: one-sided variations, POI bounds, failed toy fits).
    """
    t0 = time.perf_counter()
    check_histosys_method(histosys)
    if binning not in ("quantile", "uniform"):
        raise ValueError(f"binning must be 'quantile' or 'uniform', got {binning!r}")
    if expected_signal <= 0 or expected_background <= 0:
        raise ValueError("expected_signal and expected_background must be positive")
    if isinstance(coverage_toys, bool) or not isinstance(coverage_toys, int) or coverage_toys < 0:
        raise ValueError(
            f"--toys must be a non-negative integer (0: skip the coverage), got {coverage_toys!r}"
        )
    for name, v in (("signal_norm", signal_norm), ("background_norm", background_norm)):
        if not 0 <= v < 1:
            raise ValueError(f"{name} must be a relative uncertainty in [0, 1), got {v}")
    net = load_model_arg(model)
    sig_ds, bkg_ds = load_data(signal, n_max=n_max), load_data(background, n_max=n_max)
    s_sig = class_scores(net, sig_ds, LABEL_TOP)
    s_bkg = class_scores(net, bkg_ds, LABEL_W)
    var_specs = (
        dict(variations)
        if isinstance(variations, Mapping)
        else {n: (d, u) for n, d, u in (parse_variation(v) for v in variations)}
    )
    var_scores = {
        name: (
            _variation_scores(net, Path(d), (s_sig, s_bkg)),
            _variation_scores(net, Path(u), (s_sig, s_bkg)),
        )
        for name, (d, u) in var_specs.items()
    }
    var_weights = {
        name: tuple(tuple(np.asarray(w, dtype=np.float64) for w in side) for side in pair)
        for name, pair in (weight_variations or {}).items()
    }
    templates = measurement_templates(
        s_sig,
        s_bkg,
        var_scores,
        var_weights=var_weights,  # type: ignore[arg-type]
        bins=bins,
        binning=binning,
        expected_signal=expected_signal,
        expected_background=expected_background,
        signal_norm=signal_norm,
        background_norm=background_norm,
        staterror=staterror,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        meas = Measurement(templates, histosys=histosys)
        try:
            fit = meas.fit()
        except Exception as exc:  # pyhf raises its own FailedMinimization
            raise RuntimeError(
                f"the nominal fit failed ({exc}); try fewer --bins or check the variation samples"
            ) from exc
        z_asimov = meas.asimov_significance()
        breakdown = meas.breakdown()
        impacts = meas.impacts()
    result: dict[str, Any] = {
        "mu_hat": fit.mu_hat,
        "mu_err": fit.mu_err,
        "mu_err_stat": fit.mu_err_stat,
        "mu_err_syst": fit.mu_err_syst,
        "z_asimov": z_asimov,
        "breakdown": breakdown,
        "impacts": impacts,
        "impact_definition": (
            "post-fit: refit with the nuisance fixed at θ̂ ± σ_θ̂; pre-fit: fixed at θ0 ± σ_prior; "
            "impact = μ̂_fixed − μ̂; histosys templates treated as in 'histosys'"
        ),
        "histosys": meas.histosys_info,
        "poi_bounds": list(meas.poi_bounds),
        "pulls": fit.pulls,
        "n_signal_jets": len(s_sig),
        "n_background_jets": len(s_bkg),
        "bins": bins,
        "expected_signal": expected_signal,
        "expected_background": expected_background,
        "variations": sorted([*var_specs, *var_weights]),
    }
    shifts: dict[str, dict[str, float]] = {}
    edges = templates.edges
    result["edges"] = edges.tolist()

    def _shift(
        name: str, scores: FloatArray, labels: npt.NDArray[np.int64], weights: FloatArray | None = None
    ) -> None:
        counts = pseudo_data(
            scores,
            labels,
            edges,
            expected_signal=expected_signal,
            expected_background=expected_background,
            weights=weights,
        )
        shifts[name] = meas.shift(counts)

    if data is not None:
        d_ds = load_data(data)
        if d_ds.labels is None:
            raise ValueError("--data needs labels (0 = top, 1 = W) to build class-wise pseudo-data")
        _shift(f"data:{Path(str(d_ds.source)).name or 'data'}", _scores(net, d_ds.features), d_ds.labels)
        result["delta_mu_over_sigma"] = next(iter(shifts.values()))["delta_mu_over_sigma"]
    for name, ((down_s, down_b), (up_s, up_b)) in var_scores.items():
        for side, (ss, sb) in (("down", (down_s, down_b)), ("up", (up_s, up_b))):
            lab = np.concatenate([np.full(len(ss), LABEL_TOP), np.full(len(sb), LABEL_W)])
            _shift(f"variation:{name}-{side}", np.concatenate([ss, sb]), lab)
    nominal_labels = np.concatenate([np.full(len(s_sig), LABEL_TOP), np.full(len(s_bkg), LABEL_W)])
    for name, sides in var_weights.items():
        for side, (w_s, w_b) in zip(("down", "up"), sides, strict=True):
            both_w = np.concatenate([w_s, w_b])
            _shift(f"variation:{name}-{side}", np.concatenate([s_sig, s_bkg]), nominal_labels, both_w)
    if attacks:
        both = JetDataset.concatenate([_class_subset(sig_ds, LABEL_TOP), _class_subset(bkg_ds, LABEL_W)])
        assert both.labels is not None
        for a in attacks:
            kw: dict[str, Any] = {}
            if attack_eps is not None and a in ATTACKS and ATTACKS[a].strength == "eps":
                kw["eps"] = attack_eps
            res = get_attack(a, **kw).run(net, both.features, both.labels, seed=seed)
            _shift(f"attack:{a}", _scores(net, res.x_adv), both.labels)
            shifts[f"attack:{a}"]["fooling_ratio"] = res.fooling_ratio
            shifts[f"attack:{a}"]["unphysical_fraction"] = res.unphysical_fraction
    result["shifts"] = shifts
    if coverage_toys > 0:
        with warnings.catch_warnings(record=True) as caught_cov:
            warnings.simplefilter("always", UserWarning)
            result["coverage"] = meas.coverage(n_toys=coverage_toys, seed=seed)
        caught += caught_cov
    result["warnings"] = list(
        dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    )
    for note in result["warnings"]:
        warnings.warn(note, UserWarning, stacklevel=2)
    result["seconds"] = time.perf_counter() - t0
    if out is not None:
        result["files"] = _write(result, meas, templates, Path(out))
    return result


def _class_subset(ds: JetDataset, label: int) -> JetDataset:
    if ds.labels is None:
        return JetDataset(
            ds.features, np.full(len(ds), label, dtype=np.int64), ds.feature_names, source=ds.source
        )
    return ds.subset(np.flatnonzero(ds.labels == label))


def _write(result: dict[str, Any], meas: Measurement, templates: Templates, out: Path) -> dict[str, str]:
    """``workspace.json``, then ``results.json`` and ``report.html`` through :func:`write_run`."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory; give a directory")
    ws = out / "workspace.json"
    meas.workspace_json(ws)
    paths = write_run(
        MeasurementResult(result, templates),
        out,
        title="aalearn measurement",
        subtitle="profile-likelihood fit of the signal strength μ with pyhf",
        json_name="results.json",
    )
    return {"workspace": str(ws), **paths.to_dict()}
