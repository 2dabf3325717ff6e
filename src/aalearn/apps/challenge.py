r"""Challenge Task 2 (robust model) and the side-by-side comparison of trained models.

Task 2 of the ECML-PKDD 2025 "Colliding with Adversaries" challenge scores a model by the
**mixed accuracy**

.. math::

    S = \tfrac{1}{2}\bigl(\mathrm{Acc}_{\text{clean}} + \mathrm{Acc}_{\text{adv}}\bigr),

with both accuracies at threshold 0.5 (label 1 predicted where
:math:`P(\text{label}=1) \ge 0.5`, as the organisers' ``Prepare_Submission.py``) and the
adversarial accuracy measured against the **clean** labels on a fixed, pre-generated RDSA
file row-paired with the clean file (a transfer attack: the adversaries were made against
the organisers' TopoDNN, not against the model under test). The winning solution
(Stefanopoulos & Voskou, arXiv:2510.16443) reached :math:`S = 0.80` on the hidden set.

Because a fixed file says nothing about attacks aimed at the model itself,
:func:`challenge_task2` also runs the attack framework's attacks **adaptively** against the
model under test (``adaptive=("pgd", "rdsa", ...)``) and reports accuracy under each.

Every figure carries a confidence interval (level 0.68 by default) and the number of jets
behind it (:mod:`aalearn.evaluation.bootstrap`): Clopper–Pearson for the clean and
adversarial accuracies and fooling ratios, a paired bootstrap over jets (stratified by
label) for the mixed accuracy, the accuracy drop, MAD and the Task-1 score of each attack,
and, in :func:`compare_models`, the AUC and the paired AUC difference to the first model.

Example:
    >>> import numpy as np, torch
    >>> from aalearn.models import TopoDNN
    >>> x = np.zeros((4, 87), dtype=np.float32)
    >>> res = mixed_accuracy(TopoDNN(), x, x, np.array([0, 1, 0, 1]))
    >>> res["mixed_accuracy"]
    0.5
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import ks_2samp

from aalearn.apps.audit import attack_file, summary_rows
from aalearn.apps.inputs import describe_model, load_data, load_model_arg, parse_name_value
from aalearn.attacks import ATTACKS
from aalearn.core.paths import CHALLENGE_FILES, require_challenge_data
from aalearn.core.result import DictResult, ReportBuilder
from aalearn.core.validation import check_array, check_labels
from aalearn.evaluation import evaluate_scores
from aalearn.evaluation.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    Interval,
    attack_intervals,
    bootstrap_aucs,
    check_interval_options,
    mixed_accuracy_intervals,
)
from aalearn.models import load_checkpoint, predict_proba
from aalearn.report import write_run

__all__ = [
    "DEFAULT_ADAPTIVE",
    "Comparison",
    "challenge_task2",
    "compare_files",
    "compare_models",
    "mixed_accuracy",
    "paired_hits",
    "parse_attacks",
    "variation_shift",
]

#: Adaptive attacks of :func:`challenge_task2` and :func:`compare_models`: (name, strength).
DEFAULT_ADAPTIVE: tuple[tuple[str, float | None], ...] = (("pgd", 1.0), ("rdsa", None))


def parse_attacks(spec: str | None) -> list[tuple[str, float | None]]:
    """Parse an attack spec: ``"pgd:1,rdsa"`` → ``[("pgd", 1.0), ("rdsa", None)]``.

    ``""`` and ``"none"`` give ``[]``; ``None`` gives :data:`DEFAULT_ADAPTIVE`.

    Example:
        >>> parse_attacks("pgd:1,rdsa")
        [('pgd', 1.0), ('rdsa', None)]
        >>> parse_attacks(None) == list(DEFAULT_ADAPTIVE)
        True
    """
    if spec is None:
        return list(DEFAULT_ADAPTIVE)
    out: list[tuple[str, float | None]] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item or item == "none":
            continue
        name, _, strength = item.partition(":")
        try:
            out.append((name, float(strength) if strength else None))
        except ValueError:
            raise ValueError(f"bad attack spec {item!r}: use NAME or NAME:STRENGTH, e.g. pgd:1") from None
    return out


def _hits(model: Any, x: npt.ArrayLike, labels: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    pred = (predict_proba(model, np.asarray(x, dtype=np.float32)) >= 0.5).astype(np.int64)
    return np.asarray(pred == labels)


def interval_fields(intervals: Mapping[str, Interval], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Flat ``<figure>_low`` / ``<figure>_high`` entries of intervals, for terminal tables.

    Example:
        >>> interval_fields({"auc": Interval(0.9, 0.89, 0.91, 0.01, 0.68, 100, 1000)})
        {'auc_low': 0.89, 'auc_high': 0.91}
    """
    out: dict[str, Any] = {}
    for k in keys if keys is not None else list(intervals):
        if k in intervals:
            out[f"{k}_low"], out[f"{k}_high"] = intervals[k].low, intervals[k].high
    return out


def paired_hits(
    model: Any, x_clean: npt.ArrayLike, x_adv: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Per row: is the decision (P ≥ 0.5) right on the clean jet, on its adversary; the labels.

    The Task 2 scoring rule, per row (for example to combine two taggers row by row).

    Raises:
        ValueError: For files that are not row-paired, NaN/inf or labels other than 0/1.
    """
    xc = check_array(x_clean, name="x_clean", ndim=2)
    xa = check_array(x_adv, name="x_adv", ndim=2)
    if xa.shape != xc.shape:
        raise ValueError(
            f"the adversarial file must be row-paired with the clean file: shapes {xa.shape} and {xc.shape}"
        )
    y = check_labels(labels, name="labels", n=xc.shape[0])
    return _hits(model, xc, y), _hits(model, xa, y), y


def mixed_accuracy(
    model: Any, x_clean: npt.ArrayLike, x_adv: npt.ArrayLike, labels: npt.ArrayLike
) -> dict[str, float]:
    """Clean, adversarial and mixed accuracy of ``model`` on a row-paired clean/adversarial pair.

    Args:
        model: Binary logit classifier (torch module).
        x_clean: Clean features ``(N, F)``.
        x_adv: Adversarial features ``(N, F)``, row ``i`` made from clean row ``i``.
        labels: Clean labels ``(N,)`` (the adversaries are scored against them).

    Returns:
        ``clean_accuracy``, ``adversarial_accuracy``, ``mixed_accuracy`` (their mean), ``n``.

    Raises:
        ValueError: For mismatched shapes, NaN/inf or labels other than 0/1.
    """
    hit_clean, hit_adv, _ = paired_hits(model, x_clean, x_adv, labels)
    return _mixed(hit_clean, hit_adv)


def _mixed(hit_clean: npt.NDArray[np.bool_], hit_adv: npt.NDArray[np.bool_]) -> dict[str, float]:
    clean, adv = float(np.mean(hit_clean)), float(np.mean(hit_adv))
    return {
        "clean_accuracy": clean,
        "adversarial_accuracy": adv,
        "mixed_accuracy": 0.5 * (clean + adv),
        "n": len(hit_clean),
    }


def _adaptive_rows(
    model: Any,
    data: Any,
    attacks: Sequence[tuple[str, float | None]],
    *,
    n_max: int | None,
    seed: int,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, strength in attacks:
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
        kind = ATTACKS[name].strength
        kw: dict[str, Any] = {kind: strength} if kind and strength is not None else {}
        run = attack_file(model, data, name, n_max=n_max, seed=seed, **kw)
        (row,) = summary_rows(name, [(strength, run)])
        if n_boot:
            ivs = attack_intervals(run.result, n_boot=n_boot, level=level, seed=seed)
            row.update(interval_fields(ivs, ("accuracy", "fooling_ratio")))
            row["n"] = run.result.n
            row["intervals"] = {k: v.to_dict() for k, v in ivs.items()}
        rows.append(row)
    return rows


def challenge_task2(
    model: str | Path | Any,
    *,
    clean: str | Path | None = None,
    adversarial: str | Path | None = None,
    adaptive: Sequence[tuple[str, float | None]] = DEFAULT_ADAPTIVE,
    n_adaptive: int | None = 1000,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
) -> DictResult:
    """Challenge Task 2: mixed accuracy on the public clean/RDSA pair, plus adaptive attacks.

    Args:
        model: Model spec for :func:`aalearn.models.load_model` (``aalearn:robust``, a
            ``.safetensors`` checkpoint, a Keras ``.hdf5``) or a torch module.
        clean: Clean file (default: the challenge's ``Clean_Test_Public.feather``).
        adversarial: Row-paired adversarial file (default: ``Adversaries_Test_Public.feather``).
        adaptive: Attacks run against the model itself, as (registry name, strength in
            the attack's own unit or ``None`` for its default); ``()`` skips them.
        n_adaptive: Attack only the first ``n_adaptive`` clean jets (``None``: all).
        seed: Seed of the adaptive attacks and of the bootstrap.
        n_boot: Bootstrap replicas of the intervals (``0``: no intervals).
        level: Confidence level of the intervals.

    Returns:
        A :class:`~aalearn.core.result.DictResult` of ``clean_accuracy``,
        ``adversarial_accuracy``, ``mixed_accuracy``, ``n``, the files, ``adaptive`` (one
        row per attack: accuracy and fooling ratio under attack,
        MAD, unphysical fraction, validation verdict) and ``seconds``. With ``n_boot``:
        ``intervals`` (figure → ``{"value", "low", "high", "std", "level", "n",
        "n_boot", "method"}`` for the three accuracies and ``accuracy_drop``),
        ``<figure>_low`` / ``<figure>_high`` beside each accuracy and ``interval_level``;
        each adaptive row gets ``intervals`` of :func:`~aalearn.evaluation.bootstrap.attack_intervals`.

    Raises:
        FileNotFoundError: If the challenge files are not found and none were given.
        ValueError: For unpaired files, unlabelled data or an unknown attack.
    """
    start = time.perf_counter()
    check_interval_options(n_boot, level)
    clean_path = Path(clean) if clean is not None else require_challenge_data() / CHALLENGE_FILES["clean"]
    adv_path = (
        Path(adversarial)
        if adversarial is not None
        else require_challenge_data() / CHALLENGE_FILES["adversarial"]
    )
    net = load_model_arg(model)
    ds_clean = load_data(clean_path)
    ds_adv = load_data(adv_path)
    if ds_clean.labels is None:
        raise ValueError(f"{clean_path} has no labels; Task 2 needs the labelled clean file")
    hit_clean, hit_adv, y = paired_hits(net, ds_clean.features, ds_adv.features, ds_clean.labels)
    result: dict[str, Any] = {"model": describe_model(model), **_mixed(hit_clean, hit_adv)}
    if n_boot:
        ivs = mixed_accuracy_intervals(hit_clean, hit_adv, strata=y, n_boot=n_boot, level=level, seed=seed)
        result.update(interval_fields(ivs, ("clean_accuracy", "adversarial_accuracy", "mixed_accuracy")))
        result["interval_level"] = level
        result["intervals"] = {k: v.to_dict() for k, v in ivs.items()}
    result.update({"clean_file": str(clean_path), "adversarial_file": str(adv_path)})
    result["adaptive"] = (
        _adaptive_rows(net, ds_clean, adaptive, n_max=n_adaptive, seed=seed, n_boot=n_boot, level=level)
        if adaptive
        else []
    )
    result["seconds"] = time.perf_counter() - start
    return DictResult(result, title="Challenge task 2")


def variation_shift(model: Any, nominal: Any, variations: Mapping[str, Any]) -> list[dict[str, Any]]:
    """How far the classifier output moves between modelling variations.

    Args:
        model: Binary logit classifier.
        nominal: Labelled :class:`~aalearn.data.JetDataset` of the nominal simulation.
        variations: Name → labelled :class:`~aalearn.data.JetDataset` of a variation.

    Returns:
        One row per variation: the mean shift of :math:`P(\\text{label}=1)` per class,
        the two-sample Kolmogorov–Smirnov distance per class (``scipy.stats.ks_2samp``)
        and the accuracy change.
    """

    def scores(ds: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        if ds.labels is None:
            raise ValueError(f"{ds.source}: the variation study needs labelled jets")
        return predict_proba(model, ds.features).astype(np.float64), ds.labels

    s0, y0 = scores(nominal)
    acc0 = float(np.mean((s0 >= 0.5) == y0))
    rows = []
    for name, ds in variations.items():
        s1, y1 = scores(ds)
        row: dict[str, Any] = {"variation": name}
        for label in (0, 1):
            a, b = s0[y0 == label], s1[y1 == label]
            if len(a) and len(b):
                row[f"mean_shift_label{label}"] = float(b.mean() - a.mean())
                row[f"ks_label{label}"] = float(ks_2samp(a, b).statistic)
        row["accuracy_change"] = float(np.mean((s1 >= 0.5) == y1)) - acc0
        rows.append(row)
    return rows


def compare_models(
    models: Sequence[str | Path],
    data: str | Path,
    *,
    attacks: Sequence[tuple[str, float | None]] = DEFAULT_ADAPTIVE,
    variations: Mapping[str, str | Path] | None = None,
    n_attack: int | None = 1000,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
) -> list[dict[str, Any]]:
    """One row per model: clean performance, accuracy under attack, variation shift, training cost.

    Args:
        models: Model specs (checkpoints, ``aalearn:NAME``, Keras files).
        data: Labelled test file.
        attacks: (attack, strength) pairs run against each model at fixed strength.
        variations: Optional name → labelled file of a modelling variation; the mean
            score shift and KS distance to ``data`` (taken as nominal) are reported.
        n_attack: Attack only the first ``n_attack`` jets.
        seed: Seed of the attacks and of the bootstrap.
        n_boot: Bootstrap replicas of the intervals (``0``: none).
        level: Confidence level of the intervals.

    Returns:
        Rows with ``model``, ``auc``, ``accuracy``, ``rejection@0.5`` (1/ε_B at 50 % top
        efficiency), ``acc_<attack>`` per attack, ``max_ks_<variation>`` per variation,
        ``strategy`` and ``train_seconds`` (from the checkpoint's metadata, when present).
        With ``n_boot``: ``n``, ``auc_low``/``auc_high``, ``accuracy_low``/``accuracy_high``,
        from the second model on ``delta_auc`` (this model's AUC minus the first model's,
        paired bootstrap on the same jets) with ``delta_auc_low``/``delta_auc_high``, and
        ``intervals`` holding the full records (also of each attack's figures).
    """
    if not models:
        raise ValueError("give at least one model to compare")
    test = load_data(data)
    if test.labels is None:
        raise ValueError(f"{data} has no labels; the comparison needs a labelled file")
    var_sets = {k: load_data(v) for k, v in (variations or {}).items()}
    rows = []
    first: npt.NDArray[np.float64] | None = None
    for spec in models:
        net = load_model_arg(spec)
        meta: dict[str, Any] = {}
        if str(spec).endswith(".safetensors"):
            meta = load_checkpoint(spec)[1]
        scores = predict_proba(net, test.features).astype(np.float64)
        res = evaluate_scores(test.labels, scores, n_boot=n_boot, level=level, seed=seed)
        row: dict[str, Any] = {
            "model": str(spec),
            "strategy": meta.get("strategy", "-"),
            "auc": res.auc,
            "accuracy": res.accuracy,
            "rejection@0.5": res.background_rejection.get(0.5),
        }
        intervals: dict[str, Any] = {k: v.to_dict() for k, v in res.intervals.items()}
        if n_boot:
            row["n"] = res.n
            row.update(interval_fields(res.intervals, ("auc", "accuracy")))
        if n_boot and first is not None and res.auc is not None:
            diff = bootstrap_aucs(
                test.labels,
                {"this": scores, "first": first},
                differences=[("this", "first")],
                n_boot=n_boot,
                level=level,
                seed=seed,
            )["this-first"]
            row["delta_auc"] = diff.value
            row.update(interval_fields({"delta_auc": diff}))
            intervals["delta_auc"] = diff.to_dict()
        first = scores if first is None else first
        for arow in _adaptive_rows(net, test, attacks, n_max=n_attack, seed=seed, n_boot=n_boot, level=level):
            key = f"acc_{arow['attack']}({arow['strength']})"
            row[key] = arow["accuracy"]
            if "intervals" in arow:
                intervals[key] = arow["intervals"]
        for vrow in variation_shift(net, test, var_sets) if var_sets else []:
            row[f"max_ks_{vrow['variation']}"] = max(vrow.get("ks_label0", 0.0), vrow.get("ks_label1", 0.0))
        row["train_seconds"] = meta.get("train_seconds", meta.get("history", {}).get("seconds"))
        if intervals:
            row["intervals"] = intervals
        rows.append(row)
    return rows


@dataclass
class Comparison:
    """The side-by-side comparison of models (a :class:`~aalearn.core.result.Result`).

    Attributes:
        data: The labelled test file.
        rows: One row per model (:func:`compare_models`).
        files: Paths written (``results``, ``report``), when any.
    """

    data: str
    rows: list[dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``aalearn compare --json`` object: ``data``, ``models`` and the files written."""
        return {"data": self.data, "models": self.rows, **self.files}

    def summary(self) -> list[dict[str, Any]]:
        """One row per model, without the nested ``intervals`` records (their ends are in the row)."""
        return [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in self.rows]

    def add_to(self, report: ReportBuilder) -> None:
        """The comparison table with its explanation."""
        report.add_section(
            "Model comparison",
            text=(
                "Per model: ROC AUC and accuracy on the clean test file, background rejection 1/ε_B at 50 % "
                "top efficiency, accuracy under each attack run against that model at fixed strength, the "
                "largest per-class KS distance of the score between nominal and each modelling variation, "
                "and the training time recorded in the checkpoint. _low/_high: 68 % intervals "
                "(Clopper–Pearson for accuracies, label-stratified bootstrap for AUC); delta_auc: AUC "
                "minus the first model's, paired bootstrap on the same jets; n: jets in the test file."
            ),
            table=self.summary(),
        )

    def write(self, out_dir: str | Path) -> dict[str, str]:
        """Write ``results.json`` (``data`` and ``models``) and ``report.html`` into ``out_dir``."""
        paths = write_run(
            self,
            out_dir,
            title="aalearn model comparison",
            subtitle=self.data,
            payload={"data": self.data, "models": self.rows},
        )
        self.files = {"results": str(paths.results), "report": str(paths.report)}
        return dict(self.files)


def compare_files(
    models: Sequence[str | Path],
    data: str | Path,
    *,
    attacks: str | Sequence[tuple[str, float | None]] | None = None,
    variations: Sequence[str] | Mapping[str, str | Path] | None = None,
    n_attack: int | None = 1000,
    seed: int = 0,
    out: str | Path | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    level: float = DEFAULT_LEVEL,
) -> Comparison:
    """The ``aalearn compare`` command: :func:`compare_models`, optionally written as a report.

    Args:
        models: Model specs.
        data: Labelled test file.
        attacks: An attack spec (``"pgd:1,rdsa"``, see :func:`parse_attacks`; ``None``:
            the default attacks) or (attack, strength) pairs.
        variations: ``NAME=FILE`` strings or a name → file mapping of modelling variations.
        n_attack: Attack only the first ``n_attack`` jets.
        seed: Seed of the attacks.
        out: Directory for ``results.json`` and ``report.html`` (``None``: nothing written).
        n_boot: Bootstrap replicas of the AUC intervals (0: none).
        level: Confidence level of the intervals.

    Returns:
        The :class:`Comparison`.

    Raises:
        ValueError: For a malformed ``NAME=FILE`` or attack spec, or what :func:`compare_models` refuses.

    Example:
        >>> compare_files([], "test.h5", variations=["fsr-up"])
        Traceback (most recent call last):
        ...
        ValueError: bad --variation 'fsr-up': use NAME=FILE, e.g. fsr-up=fsr_up.h5
    """
    check_interval_options(n_boot, level)
    pairs = parse_attacks(attacks) if attacks is None or isinstance(attacks, str) else list(attacks)
    var_files: dict[str, str | Path] = (
        dict(variations)
        if isinstance(variations, Mapping)
        else dict(
            parse_name_value(variations, option="--variation", form="NAME=FILE", example="fsr-up=fsr_up.h5")
        )
    )
    rows = compare_models(
        models,
        data,
        attacks=pairs,
        variations=var_files,
        n_attack=n_attack,
        seed=seed,
        n_boot=n_boot,
        level=level,
    )
    comparison = Comparison(str(data), rows)
    if out is not None:
        comparison.write(out)
    return comparison
