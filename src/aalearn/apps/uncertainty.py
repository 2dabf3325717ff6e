r"""The workflow behind ``aalearn uncertainty``: predictive uncertainty, calibration, shift detection.

1. A predictor: a deep ensemble (several checkpoints, or trained here on ``train_data``
   by :func:`aalearn.training.train_topodnn_ensemble`), MC dropout, or a last-layer
   Laplace approximation fitted on the calibration split.
2. The labelled data are split (seeded, stratified by nothing: a random half) into a
   calibration half — temperature scaling and the Laplace fit — and an evaluation half,
   on which ECE (bins and norm explicit), Brier score and NLL are reported before and
   after temperature scaling, with reliability diagrams.
3. Uncertainty under shift: the evaluation jets are attacked (each attack of the attack
   framework, aimed at the first member / the single model, i.e. transferred to the
   ensemble) and other files (modelling variations) are scored; per shifted set the
   uncertainty distributions and the AUROC with which the epistemic uncertainty separates
   shifted from clean jets.

The result is an :class:`UncertaintyRun` (:class:`~aalearn.core.result.Result`); with an
output directory it is written by :func:`aalearn.report.write_run` as ``results.json``
and ``report.html``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score
from torch import nn

from aalearn.apps.inputs import load_data, load_datasets, load_model_arg, parse_name_value
from aalearn.attacks import get_attack
from aalearn.core.result import ReportBuilder
from aalearn.data.dataset import JetDataset
from aalearn.data.split import split_indices
from aalearn.evaluation.bootstrap import (
    DEFAULT_LEVEL,
    Interval,
    bootstrap_metric,
    check_interval_options,
    proportion_interval,
)
from aalearn.report import write_run
from aalearn.training import ENSEMBLE_CONFIG, train_topodnn_ensemble
from aalearn.uncertainty.calibration import (
    ReliabilityCurve,
    TemperatureScaling,
    calibration_summary,
    expected_calibration_error,
    reliability_curve,
)
from aalearn.uncertainty.decomposition import UncertaintyDecomposition
from aalearn.uncertainty.plots import plot_reliability, plot_uncertainty_histograms
from aalearn.uncertainty.predictors import DeepEnsemble, LastLayerLaplace, MCDropout

__all__ = [
    "METHODS",
    "SUMMARY_KEYS",
    "UncertaintyRun",
    "build_predictor",
    "parse_shifted",
    "uncertainty_file",
]

Method = Literal["ensemble", "mc-dropout", "laplace"]
METHODS: tuple[str, ...] = ("ensemble", "mc-dropout", "laplace")

#: Keys of the terminal summary table, in order.
SUMMARY_KEYS: tuple[str, ...] = (
    "method",
    "n_members",
    "accuracy",
    "ece",
    "brier",
    "nll",
    "temperature",
    "ece_temperature_scaled",
    "nll_temperature_scaled",
    "mean_total",
    "mean_aleatoric",
    "mean_epistemic",
    "seconds",
)

_CALIBRATION_KEYS = ("ece", "brier", "nll", "temperature", "ece_temperature_scaled", "nll_temperature_scaled")


@dataclass
class UncertaintyRun:
    """Result of :func:`uncertainty_file` (implements :class:`~aalearn.core.result.Result`).

    Attributes:
        values: The JSON object (``method``, ``ece``, ``brier``, ``nll``, the
            temperature-scaled versions, ``mean_*`` uncertainties, ``shifts``, ``notes``,
            ``seconds``; ``files`` once written).
        decompositions: Uncertainty decomposition per set (``"clean"`` and each shifted set).
        reliability: Reliability curves before and after temperature scaling.
        source: The evaluated data set.

    Example:
        >>> run = UncertaintyRun({"method": "laplace", "ece": 0.01, "shifts": {}})
        >>> run.summary()[0]["ece"], run.shift_rows()
        (0.01, [])
        >>> iv = {"ece": Interval(0.01, 0.008, 0.013, 0.002, 0.68, 300, 200).to_dict()}
        >>> UncertaintyRun({"ece": 0.01, "intervals": iv}).summary()[0]["ece 68% CI"]
        '[0.008, 0.013]'
    """

    values: dict[str, Any]
    decompositions: dict[str, UncertaintyDecomposition] = field(default_factory=dict)
    reliability: dict[str, ReliabilityCurve] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (``--json`` and ``results.json``)."""
        return dict(self.values)

    def summary(self) -> list[dict[str, Any]]:
        """One row: the headline numbers (:data:`SUMMARY_KEYS`), each interval beside its figure."""
        row: dict[str, Any] = {}
        for k in SUMMARY_KEYS:
            row[k] = self.values.get(k)
            row.update(self._interval_column(k))
        return [row]

    def _interval_column(self, key: str) -> dict[str, str]:
        """``{"<key> 68% CI": "[low, high]"}`` when ``key`` has an interval, else nothing."""
        iv = self.values.get("intervals", {}).get(key)
        if not iv:
            return {}
        interval = Interval(**iv)
        return {f"{key} {100 * interval.level:g}% CI": interval.bracket()}

    def shift_rows(self) -> list[dict[str, Any]]:
        """One row per shifted set."""
        return [{"set": k, **v} for k, v in self.values.get("shifts", {}).items()]

    def add_to(self, report: ReportBuilder) -> None:
        """The calibration section (reliability diagram) and the uncertainty-under-shift section."""
        v = self.values
        report.add_section(
            "Calibration",
            text=(
                f"Evaluation half ({v['n_evaluation']} jets). ECE with {v['n_bins']} equal-width bins "
                f"and the {v['norm']} norm (top-label), Brier score, NLL; temperature scaling fitted on "
                "the calibration half."
            ),
            table={
                col: val
                for k in _CALIBRATION_KEYS
                for col, val in ({k: v[k]} | self._interval_column(k)).items()
            },
            figures=[plot_reliability(self.reliability)] if self.reliability else [],
        )
        report.add_section(
            "Uncertainty under shift",
            text=(
                "Total = entropy of the mean prediction, aleatoric = mean entropy of the members, "
                "epistemic = their difference (mutual information). AUROC: how well the epistemic "
                "(or total) uncertainty separates shifted from clean jets (0.5 = not at all)."
            ),
            table=self.shift_rows() or {"shifted sets": "none"},
            figures=[plot_uncertainty_histograms(self.decompositions)] if self.decompositions else [],
        )


def parse_shifted(shifted: Mapping[str, str | Path] | Sequence[str] | None) -> dict[str, str | Path]:
    """Shifted sets as a name → file mapping, from a mapping or ``NAME=FILE`` strings.

    Example:
        >>> parse_shifted(["rdsa=adv.h5"])
        {'rdsa': 'adv.h5'}
    """
    if shifted is None:
        return {}
    if isinstance(shifted, Mapping):
        return dict(shifted)
    pairs = parse_name_value(
        list(shifted), option="--shifted", form="NAME=FILE", example="rdsa=adversaries.h5"
    )
    return dict(pairs)


def build_predictor(
    method: str,
    models: Sequence[nn.Module],
    *,
    fit_x: npt.NDArray[Any] | None = None,
    fit_y: npt.NDArray[Any] | None = None,
    train_data: JetDataset | None = None,
    members: int = 5,
    dropout: float | None = None,
    samples: int = 30,
    seed: int = 0,
) -> Any:
    """The uncertainty predictor for ``method`` (see the module docstring).

    An ensemble of fewer than two ``models`` is trained on ``train_data`` (80/20
    train/validation split) with :data:`aalearn.training.ENSEMBLE_CONFIG`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if method == "ensemble":
        if len(models) >= 2:
            return DeepEnsemble(models)
        if train_data is None or train_data.labels is None:
            raise ValueError(
                "a deep ensemble needs several --model checkpoints, or labelled --train-data to train "
                f"{members} members here"
            )
        split = split_indices(train_data.labels, fractions=(0.8, 0.2, 0.0), seed=seed)
        return train_topodnn_ensemble(
            train_data.features[split["train"]],
            train_data.labels[split["train"]],
            train_data.features[split["val"]],
            train_data.labels[split["val"]],
            n_members=members,
            seed=seed,
            config=ENSEMBLE_CONFIG,
        )
    if len(models) != 1:
        raise ValueError(f"{method} works on one model; got {len(models)}")
    if method == "mc-dropout":
        return MCDropout(models[0], n_samples=samples, p=dropout, seed=seed)
    if fit_x is None or fit_y is None:
        raise ValueError("the Laplace approximation needs labelled jets to fit on")
    return LastLayerLaplace(models[0]).fit(fit_x, fit_y)


def uncertainty_file(
    models: Sequence[str | Path | nn.Module],
    data: str | Path | JetDataset,
    *,
    method: str = "ensemble",
    train_data: Sequence[str | Path] = (),
    members: int = 5,
    dropout: float | None = None,
    samples: int = 30,
    n_bins: int = 15,
    norm: str = "l1",
    attacks: Sequence[str] = (),
    shifted: Mapping[str, str | Path] | Sequence[str] | None = None,
    n_max: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    n_boot: int = 200,
    level: float = DEFAULT_LEVEL,
) -> UncertaintyRun:
    """Uncertainty, calibration and shift detection of a classifier on a labelled file.

    Args:
        models: Model files or modules; several form a deep ensemble.
        data: Labelled data file, split into a calibration and an evaluation half.
        method: ``"ensemble"``, ``"mc-dropout"`` or ``"laplace"``.
        train_data: Labelled training files: train an ensemble of ``members`` here.
        members: Ensemble members to train on ``train_data``.
        dropout: MC dropout: insert dropout with this ``p`` if the model has none.
        samples: MC dropout forward passes.
        n_bins: ECE bins (equal width).
        norm: ECE norm: ``"l1"`` (ECE), ``"l2"`` (RMS) or ``"max"`` (MCE).
        attacks: Attacks whose adversaries of the evaluation half form shifted sets.
        shifted: Shifted data sets as name → file, or ``NAME=FILE`` strings.
        n_max: Use only the first ``n_max`` jets of ``data``.
        seed: Seed of the split, the ensemble, MC dropout and the attacks.
        out: Directory for ``results.json`` and ``report.html`` (``None``: write nothing).
        n_boot: Bootstrap replicas of the ECE intervals (percentile bootstrap over the
            evaluation jets); ``0``: no intervals.
        level: Confidence level of the intervals (the accuracy's is Clopper–Pearson).

    Returns:
        The :class:`UncertaintyRun`; its JSON object has ``intervals`` (``accuracy``,
        ``ece``, ``ece_temperature_scaled``: value, low, high, level, n) unless ``n_boot``
        is 0, and at least ``ece``, ``brier``,
        ``nll``, ``mean_epistemic``, ``mean_aleatoric`` (evaluation half), the
        temperature-scaled versions, and ``shifts`` (per shifted set: mean uncertainties
        and the epistemic AUROC), and ``files`` when ``out`` is given.

    Raises:
        ValueError: For no model, the same model file twice (or two with identical weights),
            unlabelled data, too few jets, an unknown method or a malformed ``NAME=FILE``.
    """
    check_interval_options(n_boot, level)
    t0 = time.perf_counter()
    shifted_files = parse_shifted(shifted)
    files = [Path(m).resolve() for m in models if isinstance(m, str | Path)]
    twice = next((f for f in files if files.count(f) > 1), None)
    if twice is not None:  # identical members would report an epistemic uncertainty of 0
        raise ValueError(f"--model {twice} is given more than once; ensemble members must be distinct models")
    nets = [load_model_arg(m) for m in models]
    if not nets:
        raise ValueError("give at least one --model")
    ds = load_data(data)
    if ds.labels is None:
        raise ValueError(f"{ds.source}: calibration needs labelled jets")
    if n_max is not None:
        ds = ds.subset(np.arange(min(n_max, len(ds))))
    rng = np.random.default_rng(seed)
    labels = ds.labels
    assert labels is not None  # checked above (n_max subsets keep labels)
    perm = rng.permutation(len(ds))
    cal, ev = np.sort(perm[: len(ds) // 2]), np.sort(perm[len(ds) // 2 :])
    if len(cal) < 10 or len(ev) < 10:
        raise ValueError(f"too few jets ({len(ds)}) for a calibration and an evaluation half")
    train = load_datasets(list(train_data)) if train_data else None
    predictor = build_predictor(
        method,
        nets,
        fit_x=ds.features[cal],
        fit_y=labels[cal],
        train_data=train,
        members=members,
        dropout=dropout,
        samples=samples,
        seed=seed,
    )
    d_cal = predictor.predict(ds.features[cal])
    d_ev = predictor.predict(ds.features[ev])
    y_cal, y_ev = labels[cal], labels[ev]
    before = calibration_summary(y_ev, d_ev.mean, n_bins=n_bins, norm=norm)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        ts = TemperatureScaling().fit(_logit(d_cal.mean), y_cal)
    notes += [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    p_after = ts.transform(_logit(d_ev.mean))
    after = calibration_summary(y_ev, p_after, n_bins=n_bins, norm=norm)
    result: dict[str, Any] = {
        "method": method,
        "n_members": d_ev.n_members,
        "n_calibration": len(cal),
        "n_evaluation": len(ev),
        **{k: before[k] for k in ("ece", "brier", "nll")},
        "n_bins": n_bins,
        "norm": norm,
        "temperature": ts.temperature,
        "ece_temperature_scaled": after["ece"],
        "brier_temperature_scaled": after["brier"],
        "nll_temperature_scaled": after["nll"],
        "accuracy": float(((d_ev.mean >= 0.5).astype(np.int64) == y_ev).mean()),
        **{k: v for k, v in d_ev.summary().items() if k.startswith("mean_")},
    }
    if n_boot:

        def _ece(y: npt.NDArray[Any], p: npt.NDArray[Any]) -> float:
            return expected_calibration_error(y, p, n_bins=n_bins, norm=norm)

        hits = int(((d_ev.mean >= 0.5).astype(np.int64) == y_ev).sum())
        ivs = {
            "accuracy": proportion_interval(hits, len(y_ev), level=level),
            "ece": bootstrap_metric(_ece, y_ev, d_ev.mean, n_boot=n_boot, level=level, seed=seed),
            "ece_temperature_scaled": bootstrap_metric(
                _ece, y_ev, p_after, n_boot=n_boot, level=level, seed=seed
            ),
        }
        result["intervals"] = {k: iv.to_dict() for k, iv in ivs.items()}
    decomps = {"clean": d_ev}
    shifts: dict[str, dict[str, float]] = {}

    def _shift(name: str, x_shifted: npt.NDArray[Any], y_shifted: npt.NDArray[Any] | None) -> None:
        d = predictor.predict(x_shifted)
        decomps[name] = d
        scores = np.concatenate([d_ev.epistemic, d.epistemic])
        is_shifted = np.concatenate([np.zeros(len(d_ev.epistemic)), np.ones(len(d.epistemic))])
        row = {
            **{k: v for k, v in d.summary().items() if k.startswith("mean_")},
            "auroc_epistemic": float(roc_auc_score(is_shifted, scores)),
            "auroc_total": float(roc_auc_score(is_shifted, np.concatenate([d_ev.total, d.total]))),
            "n": len(x_shifted),
        }
        if y_shifted is not None:
            row["accuracy"] = float(((d.mean >= 0.5).astype(np.int64) == y_shifted).mean())
        shifts[name] = row

    for a in attacks:
        res = get_attack(a).run(nets[0], ds.features[ev], y_ev, seed=seed)
        fooled = res.success
        if fooled.sum() < 2:
            shifts[f"attack:{a}"] = {"n": int(fooled.sum()), "note": "fewer than 2 jets fooled"}  # type: ignore[dict-item]
            continue
        _shift(f"attack:{a}", res.x_adv[fooled], y_ev[fooled])
        shifts[f"attack:{a}"]["fooling_ratio"] = res.fooling_ratio
    for name, path in shifted_files.items():
        sds = load_data(path)
        _shift(f"file:{name}", sds.features, sds.labels)
    result["shifts"] = shifts
    result["notes"] = notes
    result["seconds"] = time.perf_counter() - t0
    run = UncertaintyRun(
        result,
        decompositions=decomps,
        reliability={
            "before": reliability_curve(y_ev, d_ev.mean, n_bins=n_bins),
            "temperature-scaled": reliability_curve(y_ev, p_after, n_bins=n_bins),
        },
        source=ds.source,
    )
    if out is not None:
        paths = write_run(run, out, title="aalearn uncertainty", subtitle=f"{method} on {ds.source}")
        run.values["files"] = paths.to_dict()
    return run


def _logit(p: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    out: npt.NDArray[np.float64] = np.log(q) - np.log1p(-q)
    return out
