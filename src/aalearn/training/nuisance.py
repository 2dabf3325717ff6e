r"""How far a jet tagger's output moves between modelling variations, and training against it.

A modelling variation (for example the final-state shower's :math:`\alpha_s` up or down,
:data:`aalearn.data.generate.VARIATIONS`) is a systematic uncertainty: a tagger whose
output distribution moves between variations has an efficiency that is uncertain by as
much. :func:`nuisance_shift` measures the movement of a trained model per variation
against a reference (the nominal sample):

* the two-sample Kolmogorov–Smirnov distance between the score distributions of the
  variation and the reference, per class (``ks_top``, ``ks_w``; ``ks_max`` the larger);
* the shift of the mean score, overall and per class;
* AUC and accuracy on the variation;
* the background efficiency at 50 % signal efficiency on the variation's own ROC curve
  (``bkg_eff``) and, at the **fixed** working point of the reference (the cut that keeps
  50 % of the reference's signal), the change of the signal and background efficiencies
  (``sig_eff_shift``, ``bkg_eff_shift``, ``bkg_eff_rel_shift``): the systematic
  uncertainty of a selection tuned on the nominal simulation.

:func:`train_nuisance_study` trains TopoDNNs (Pearkes et al., arXiv:1704.02124) on a mix
of variations with three strategies of the one training loop and tabulates
:func:`nuisance_shift` for each on held-out jets:

* ``nominal``: plain binary cross-entropy;
* ``pivot``: learning to pivot (Louppe, Kagan, Cranmer, arXiv:1611.01046) with the
  variation's label as a categorical nuisance :math:`z` (−1 for ``*-down``, 0 for the
  reference, +1 for ``*-up``), starting from the nominal model as the paper pre-trains
  the classifier;
* ``disco``: distance-correlation decorrelation (Kasieczka & Shih, arXiv:2001.05310) from
  the variation label (``disco_variable="z"``, all rows) or from the jet mass
  (``disco_variable="mass"``, background rows).

Example:
    >>> import numpy as np
    >>> from aalearn.models import TopoDNN
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> nominal = (rng.normal(size=(400, 3)) + y[:, None]).astype(np.float32)
    >>> rows = nuisance_shift(TopoDNN(3, (4,)), {"nominal": (nominal, y), "up": (nominal + 0.5, y)})
    >>> [r["variation"] for r in rows], rows[0]["ks_max"]
    (['nominal', 'up'], 0.0)
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from aalearn.core.validation import check_array, check_labels, check_probability
from aalearn.data.dataset import LABEL_NAMES, LABEL_TOP, LABEL_W, JetDataset
from aalearn.evaluation import evaluate_scores
from aalearn.models.factory import build_tagger
from aalearn.models.predict import predict_proba
from aalearn.physics import CHALLENGE_PT_SCALE_GEV
from aalearn.physics.preprocessing import features_mass
from aalearn.training.configs import NUISANCE_CONFIG
from aalearn.training.trainer import train_classifier

__all__ = ["NuisanceStudy", "default_nuisance_values", "nuisance_shift", "train_nuisance_study"]

#: A variation's jets: a labelled :class:`~aalearn.data.JetDataset` or ``(X, y)``.
VariationData = JetDataset | tuple[npt.ArrayLike, npt.ArrayLike]
_STRATEGIES = ("nominal", "pivot", "disco")


def _as_xy(data: Any, name: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    if isinstance(data, JetDataset):
        if data.labels is None:
            raise ValueError(f"variation {name!r} has no labels; the shift study needs labelled jets")
        return data.features, data.labels
    if isinstance(data, tuple) and len(data) == 2:
        x = check_array(data[0], name=f"features of variation {name!r}", ndim=2)
        y = check_labels(data[1], name=f"labels of variation {name!r}", n=x.shape[0])
        return x, y
    raise TypeError(
        f"variation {name!r} must be a labelled JetDataset or a tuple (X, y), got {type(data).__name__}"
    )


def _working_point(d_sig: npt.NDArray[np.float64], efficiency: float) -> float:
    """Cut ``c`` on the discriminant with ``mean(d_sig >= c)`` ≈ ``efficiency`` (lower-quantile rule)."""
    return float(np.quantile(d_sig, 1.0 - efficiency, method="lower"))


def nuisance_shift(
    model: nn.Module,
    variations: Mapping[str, VariationData],
    *,
    reference: str = "nominal",
    signal_label: int = LABEL_TOP,
    signal_efficiency: float = 0.5,
    batch_size: int = 8192,
) -> list[dict[str, Any]]:
    r"""Per variation: how far the model's output moves relative to the reference sample.

    Args:
        model: Binary classifier returning logits of :math:`P(\text{label}=1)`.
        variations: Variation name → labelled jets (:class:`~aalearn.data.JetDataset`
            or ``(X, y)``); must contain ``reference``.
        reference: Name of the reference variation (the nominal simulation).
        signal_label: Label of the signal class (default top = 0, the challenge's convention).
        signal_efficiency: Signal efficiency of the working point (default 0.5).
        batch_size: Rows per forward pass.

    Returns:
        One dictionary per variation (reference first, then in the mapping's order) with
        ``variation``, ``n``, ``auc``, ``accuracy``, ``mean_score``, ``mean_shift``,
        ``mean_shift_<class>``, ``ks_<class>`` (KS distance of the class's score
        distribution to the reference's) with its two-sample p-value ``ks_<class>_pvalue``
        (small samples show KS distances of a few per cent without any shift), ``ks_max``,
        ``bkg_eff`` (background efficiency at ``signal_efficiency`` on the variation's own
        ROC), ``sig_eff_at_ref_cut``, ``bkg_eff_at_ref_cut`` (efficiencies at the
        reference's working point),
        ``sig_eff_shift``, ``bkg_eff_shift`` and ``bkg_eff_rel_shift`` (differences to the
        reference at that working point). Class names are ``top``/``w`` (labels 0/1).

    Raises:
        ValueError: For a missing reference, unlabeled data, a single-class variation, a
            bad ``signal_label`` or ``signal_efficiency``.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> x = np.random.default_rng(1).normal(size=(200, 2)).astype(np.float32)
        >>> y = np.arange(200) % 2
        >>> nuisance_shift(TopoDNN(2, (3,)), {"nominal": (x, y)})[0]["bkg_eff_shift"]
        0.0
    """
    from scipy.stats import ks_2samp

    if not isinstance(variations, Mapping) or not variations:
        raise ValueError("variations must be a non-empty mapping name → (X, y) or JetDataset")
    if reference not in variations:
        raise ValueError(
            f"the reference variation {reference!r} is not among the variations {sorted(variations)}; "
            "pass reference=NAME"
        )
    if isinstance(signal_label, bool) or signal_label not in (0, 1):
        raise ValueError(f"signal_label must be 0 or 1, got {signal_label!r}")
    eff = check_probability(signal_efficiency, name="signal_efficiency")
    if not 0.0 < eff < 1.0:
        raise ValueError(f"signal_efficiency must lie strictly between 0 and 1, got {signal_efficiency}")

    scored: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]] = {}
    for name in [reference, *[k for k in variations if k != reference]]:
        x, y = _as_xy(variations[name], name)
        if np.unique(y).size < 2:
            raise ValueError(f"variation {name!r} has only one class; the shift study needs both")
        scored[name] = (predict_proba(model, x, batch_size=batch_size).astype(np.float64), y)

    def discriminant(s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return s if signal_label == 1 else -s

    s_ref, y_ref = scored[reference]
    cut = _working_point(discriminant(s_ref[y_ref == signal_label]), eff)
    ref_sig = float(np.mean(discriminant(s_ref[y_ref == signal_label]) >= cut))
    ref_bkg = float(np.mean(discriminant(s_ref[y_ref != signal_label]) >= cut))
    rows: list[dict[str, Any]] = []
    for name, (s, y) in scored.items():
        result = evaluate_scores(y, s, signal_label=signal_label, signal_efficiencies=(eff,))
        rejection = result.background_rejection[eff]
        sig_cut = float(np.mean(discriminant(s[y == signal_label]) >= cut))
        bkg_cut = float(np.mean(discriminant(s[y != signal_label]) >= cut))
        row: dict[str, Any] = {
            "variation": name,
            "n": int(s.size),
            "auc": result.auc,
            "accuracy": result.accuracy,
            "mean_score": float(s.mean()),
            "mean_shift": float(s.mean() - s_ref.mean()),
        }
        ks: list[float] = []
        for label, cls in enumerate(LABEL_NAMES):
            row[f"mean_shift_{cls}"] = float(s[y == label].mean() - s_ref[y_ref == label].mean())
            if name == reference:
                value, pvalue = 0.0, 1.0
            else:
                test = ks_2samp(s[y == label], s_ref[y_ref == label])
                value, pvalue = float(test.statistic), float(test.pvalue)
            row[f"ks_{cls}"] = value
            row[f"ks_{cls}_pvalue"] = pvalue
            ks.append(value)
        row["ks_max"] = max(ks)
        row["bkg_eff"] = 0.0 if rejection is None or math.isinf(rejection) else 1.0 / rejection
        row["sig_eff_at_ref_cut"] = sig_cut
        row["bkg_eff_at_ref_cut"] = bkg_cut
        row["sig_eff_shift"] = sig_cut - ref_sig
        row["bkg_eff_shift"] = bkg_cut - ref_bkg
        row["bkg_eff_rel_shift"] = (bkg_cut - ref_bkg) / ref_bkg if ref_bkg > 0 else math.nan
        rows.append(row)
    return rows


_UP = re.compile(r"(^|[-_ ])(up|plus|high)$", re.IGNORECASE)
_DOWN = re.compile(r"(^|[-_ ])(down|minus|low)$", re.IGNORECASE)


def default_nuisance_values(names: Sequence[str], reference: str = "nominal") -> dict[str, float]:
    """Nuisance value per variation from its name: reference 0, ``*-up`` +1, ``*-down`` −1.

    Raises:
        ValueError: For a name that is neither the reference nor ends in up/down (pass
            explicit ``z_values`` then).

    Example:
        >>> default_nuisance_values(["nominal", "fsr-up", "fsr-down"])
        {'nominal': 0.0, 'fsr-up': 1.0, 'fsr-down': -1.0}
    """
    out: dict[str, float] = {}
    for name in names:
        if name == reference:
            out[name] = 0.0
        elif _UP.search(name):
            out[name] = 1.0
        elif _DOWN.search(name):
            out[name] = -1.0
        else:
            raise ValueError(
                f"cannot tell the nuisance value of variation {name!r} from its name (expected the reference "
                f"{reference!r} or a name ending in -up/-down); pass z_values={{name: value}}"
            )
    return out


@dataclass
class NuisanceStudy:
    """Result of :func:`train_nuisance_study`.

    Attributes:
        rows: The shift table: :func:`nuisance_shift`'s rows with a ``strategy`` column,
            for every strategy and variation (held-out jets).
        histories: Per strategy, the training history's summary.
        models: Per strategy, the trained model (not serialised by :meth:`to_dict`).
        config: Settings of the study (split sizes, nuisance values, strategies' settings).
    """

    rows: list[dict[str, Any]]
    histories: dict[str, dict[str, Any]]
    models: dict[str, nn.Module] = field(repr=False)
    config: dict[str, Any]

    def summary(self) -> list[dict[str, Any]]:
        """Per strategy: reference AUC, largest per-class KS and largest |Δε_B| over the variations.

        Example:
            >>> NuisanceStudy([], {}, {}, {}).summary()
            []
        """
        out: list[dict[str, Any]] = []
        for strategy in dict.fromkeys(r["strategy"] for r in self.rows):
            rows = [r for r in self.rows if r["strategy"] == strategy]
            ref = rows[0]
            others = rows[1:] or rows
            out.append(
                {
                    "strategy": strategy,
                    "auc_reference": ref["auc"],
                    "max_ks": max(r["ks_max"] for r in others),
                    "max_abs_mean_shift": max(abs(r["mean_shift"]) for r in others),
                    "max_abs_bkg_eff_shift": max(abs(r["bkg_eff_shift"]) for r in others),
                    "max_abs_sig_eff_shift": max(abs(r["sig_eff_shift"]) for r in others),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (without the models)."""
        return {
            "summary": self.summary(),
            "rows": self.rows,
            "histories": self.histories,
            "config": self.config,
        }


def _split(
    n: int, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> tuple[Any, Any, Any]:
    order = rng.permutation(n)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    if n - n_test - n_val < 2:
        raise ValueError(f"a variation with {n} jets is too small for the test/validation fractions")
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def _jet_mass(x: npt.NDArray[np.float32], name: str) -> npt.NDArray[np.float64]:
    try:
        return np.asarray(features_mass(x, pt_scale=CHALLENGE_PT_SCALE_GEV), dtype=np.float64)
    except ValueError as exc:
        raise ValueError(
            f"cannot compute the jet mass of variation {name!r} ({exc}); disco_variable='mass' needs the "
            "challenge's 87-column layout: use disco_variable='z'"
        ) from None


def train_nuisance_study(
    variations: Mapping[str, VariationData],
    *,
    reference: str = "nominal",
    z_values: Mapping[str, float] | None = None,
    strategies: Sequence[str] = _STRATEGIES,
    disco_variable: str = "z",
    hidden: Sequence[int] = (64, 32, 16),
    model_options: Mapping[str, Any] | None = None,
    epochs: int = NUISANCE_CONFIG.epochs,
    batch_size: int = NUISANCE_CONFIG.batch_size,
    lr: float = NUISANCE_CONFIG.lr,
    patience: int = NUISANCE_CONFIG.patience,
    pivot_epochs: int | None = None,
    pivot_lr: float | None = None,
    pivot_options: Mapping[str, Any] | None = None,
    disco_options: Mapping[str, Any] | None = None,
    test_fraction: float = 0.3,
    val_fraction: float = 0.15,
    seed: int = 0,
    progress: bool = NUISANCE_CONFIG.progress,
) -> NuisanceStudy:
    r"""Train nominal, pivot and DisCo TopoDNNs on a mix of variations; tabulate their output shifts.

    Every variation is split (seeded) into training, validation and test jets; the
    training and validation parts of all variations are pooled. The nuisance of a jet is
    its variation's value in ``z_values`` (default :func:`default_nuisance_values`). The
    TopoDNN's input standardisation is fitted on the pooled training jets. The
    ``nominal`` model is trained first; ``pivot`` starts from its weights (the classifier
    pre-training of arXiv:1611.01046) with a categorical adversary on :math:`z`; ``disco``
    trains from the same initial weights as ``nominal`` with
    :math:`\lambda\,\mathrm{dCor}^2(f, v)` (arXiv:2001.05310). Early stopping watches the
    validation BCE (nominal), the validation value function (pivot) and the validation
    BCE + λ·dCor² (DisCo). :func:`nuisance_shift` is then evaluated on the test parts.

    Args:
        variations: Variation name → labelled jets; must contain ``reference``.
        reference: The reference variation.
        z_values: Nuisance value per variation (default from the names).
        strategies: Any of ``"nominal"``, ``"pivot"``, ``"disco"`` (``pivot`` needs
            ``nominal``).
        disco_variable: ``"z"`` (decorrelate from the variation label, all rows) or
            ``"mass"`` (jet mass from the challenge features, background rows).
        hidden: TopoDNN hidden widths.
        model_options: Further :class:`~aalearn.models.TopoDNN` settings (default
            ``batchnorm_momentum=0.1``: the challenge model's 0.01 needs far more steps
            than a small study takes before its running statistics settle).
        epochs: Maximum epochs per model.
        batch_size: Mini-batch size.
        lr: Adam learning rate (nominal, DisCo).
        patience: Early-stopping patience.
        pivot_epochs: Epochs of adversarial training (default ``epochs``).
        pivot_lr: Classifier learning rate during adversarial training (default ``lr``).
        pivot_options: Settings of :class:`~aalearn.training.pivot.PivotStrategy`
            (defaults here: λ = 10, categorical nuisance, 5 adversary steps per classifier
            step, 500 adversary pre-training steps).
        disco_options: Settings of :class:`~aalearn.training.disco.DiscoStrategy`
            (default λ = 10; ``aux_key`` and ``decorrelate_class`` follow ``disco_variable``).
        test_fraction: Fraction of each variation held out for the shift table.
        val_fraction: Fraction of each variation for early stopping.
        seed: Seed of the split, the initial weights and the training.
        progress: Show progress bars.

    Returns:
        The :class:`NuisanceStudy`.

    Raises:
        ValueError: For an unknown strategy or ``disco_variable``, ``pivot`` without
            ``nominal``, a missing reference, or too few jets.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 300)
        >>> x = (rng.normal(size=(300, 3)) + y[:, None]).astype(np.float32)
        >>> study = train_nuisance_study({"nominal": (x, y), "a-up": (x + 0.3, y)}, strategies=("nominal",),
        ...                              epochs=2)
        >>> [r["variation"] for r in study.rows]
        ['nominal', 'a-up']
    """
    unknown = [s for s in strategies if s not in _STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"strategies must be a non-empty subset of {_STRATEGIES}, got {list(strategies)}")
    if "pivot" in strategies and "nominal" not in strategies:
        raise ValueError("the pivot starts from the nominal model: include 'nominal' in strategies")
    if disco_variable not in ("z", "mass"):
        raise ValueError(f"disco_variable must be 'z' or 'mass', got {disco_variable!r}")
    if reference not in variations:
        raise ValueError(f"the reference variation {reference!r} is not among {sorted(variations)}")
    test_fraction = check_probability(test_fraction, name="test_fraction")
    val_fraction = check_probability(val_fraction, name="val_fraction")
    names = list(variations)
    zmap = dict(z_values) if z_values is not None else default_nuisance_values(names, reference)
    missing = [n for n in names if n not in zmap]
    if missing:
        raise ValueError(f"z_values has no value for the variation(s) {missing}")

    rng = np.random.default_rng(seed)
    parts: dict[str, dict[str, Any]] = {"train": {}, "val": {}}
    test: dict[str, VariationData] = {}
    n_test: dict[str, int] = {}
    for name in names:
        x, y = _as_xy(variations[name], name)
        tr, va, te = _split(x.shape[0], rng, test_fraction, val_fraction)
        for part, idx in (("train", tr), ("val", va)):
            entry = parts[part]
            entry.setdefault("x", []).append(x[idx])
            entry.setdefault("y", []).append(y[idx])
            entry.setdefault("z", []).append(np.full(idx.size, float(zmap[name])))
            if disco_variable == "mass" and "disco" in strategies:
                entry.setdefault("mass", []).append(_jet_mass(x[idx], name))
        test[name] = (x[te], y[te])
        n_test[name] = int(te.size)
    data = {part: {k: np.concatenate(v) for k, v in entry.items()} for part, entry in parts.items()}
    tr, va = data["train"], data["val"]
    n_features = tr["x"].shape[1]

    # The fixed input standardisation fitted on the pooled training jets, as the training workflow does.
    options = dict(model_options or {})
    initial = build_tagger("topodnn", n_features, seed, fit_x=tr["x"], hidden=hidden, **options)
    train_config = NUISANCE_CONFIG.replace(
        epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed, progress=progress
    )
    models: dict[str, nn.Module] = {}
    histories: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    seconds: dict[str, float] = {}

    if "nominal" in strategies:
        t0 = time.perf_counter()
        model = copy.deepcopy(initial)
        hist = train_classifier(model, tr["x"], tr["y"], va["x"], va["y"], config=train_config)
        models["nominal"], histories["nominal"] = model, hist.summary()
        settings["nominal"] = {"strategy": "nominal"}
        seconds["nominal"] = time.perf_counter() - t0
    if "pivot" in strategies:
        t0 = time.perf_counter()
        opts: dict[str, Any] = {
            "lam": 10.0,
            "nuisance": "categorical",
            "adversary_steps": 5,
            "adversary_pretrain_steps": 500,
            "adversary_lr": 1e-2,
            **dict(pivot_options or {}),
            "aux_key": "z",
        }
        model = copy.deepcopy(models["nominal"])
        hist = train_classifier(
            model,
            tr["x"],
            tr["y"],
            va["x"],
            va["y"],
            strategy="pivot",
            strategy_options=opts,
            aux_train={"z": tr["z"]},
            aux_val={"z": va["z"]},
            config=train_config.replace(epochs=pivot_epochs or epochs, lr=pivot_lr or lr),
            monitor="pivot_val_objective",
        )
        models["pivot"], histories["pivot"] = model, hist.summary()
        settings["pivot"] = hist.strategy
        seconds["pivot"] = time.perf_counter() - t0
    if "disco" in strategies:
        t0 = time.perf_counter()
        key = "z" if disco_variable == "z" else "mass"
        dopts: dict[str, Any] = {
            "lam": 10.0,
            "decorrelate_class": None if disco_variable == "z" else LABEL_W,
            **dict(disco_options or {}),
            "aux_key": key,
        }
        model = copy.deepcopy(initial)
        hist = train_classifier(
            model,
            tr["x"],
            tr["y"],
            va["x"],
            va["y"],
            strategy="disco",
            strategy_options=dopts,
            aux_train={key: tr[key]},
            aux_val={key: va[key]},
            config=train_config,
            monitor="disco_val_objective",
        )
        models["disco"], histories["disco"] = model, hist.summary()
        settings["disco"] = hist.strategy
        seconds["disco"] = time.perf_counter() - t0

    rows: list[dict[str, Any]] = []
    for strategy, model in models.items():
        for row in nuisance_shift(model, test, reference=reference):
            rows.append({"strategy": strategy, **row})
    config = {
        "reference": reference,
        "z_values": zmap,
        "disco_variable": disco_variable,
        "hidden": list(hidden),
        "model": dict(getattr(initial, "config", {})),
        "n_train": int(tr["x"].shape[0]),
        "n_val": int(va["x"].shape[0]),
        "n_test": n_test,
        "strategies": settings,
        "seconds": seconds,
        "seed": seed,
    }
    return NuisanceStudy(rows=rows, histories=histories, models=models, config=config)
