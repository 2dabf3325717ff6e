r"""Train surrogates on jet files, write candidate samples, validate them, run amplification and closure.

Behind ``aalearn surrogate train`` (:func:`train_surrogate_file`), ``aalearn surrogate
validate`` (:func:`validate_files`) and the amplification and closure commands
(:func:`surrogate_study`). The representations a surrogate learns (``"jet"``: five jet
observables; ``"features"``: the 87 challenge features) are defined in
:mod:`aalearn.surrogates.representation`.

Files written by :func:`train_surrogate_file` in ``out``: ``surrogate.safetensors``,
``candidate.feather`` (generated jets with labels, readable by
:func:`aalearn.data.io.load_dataset`), ``reference.feather`` (the held-out real jets in the
same representation, not used for training) and ``summary.json``.
:func:`validate_files` writes ``results.json`` and ``report.html``; :func:`surrogate_study`
writes ``study.json`` and ``report.html``.

Example:
    >>> import numpy as np
    >>> from aalearn.data.dataset import JetDataset
    >>> from aalearn.physics import challenge_feature_names
    >>> x = np.abs(np.random.default_rng(0).normal(0.01, 0.005, size=(4, 87))).astype(np.float32)
    >>> rows, labels, names, ds = load_rows(JetDataset(x, None, challenge_feature_names()), "jet")
    >>> rows.shape, names[0]
    ((4, 5), 'jet_mass')
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aalearn.core.config import TrainConfig
from aalearn.core.result import DictResult
from aalearn.data.dataset import LABEL_NAMES, LABEL_TOP, LABEL_W, JetDataset
from aalearn.data.io import load_dataset, save_dataset
from aalearn.models import load_model, predict_proba
from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV
from aalearn.physics.preprocessing import features_mass
from aalearn.report import write_run
from aalearn.surrogates.amplification import AmplificationResult, amplification_from_samples, train_ensemble
from aalearn.surrogates.closure import closure_test
from aalearn.surrogates.models import Surrogate, make_surrogate
from aalearn.surrogates.representation import (
    JET_OBSERVABLES,
    jet_observables,
    representation_rows,
    surrogate_kwargs,
)
from aalearn.surrogates.study import SurrogateStudy
from aalearn.surrogates.validate import SurrogateValidation, validate_samples
from aalearn.surrogates.verdict import Check

__all__ = [
    "JET_OBSERVABLES",
    "jet_observables",
    "load_rows",
    "surrogate_study",
    "train_surrogate_file",
    "validate_files",
]

FloatArray = npt.NDArray[np.float64]
PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def _load(paths: PathLike | JetDataset | Sequence[PathLike | JetDataset]) -> JetDataset:
    items = [paths] if isinstance(paths, str | os.PathLike | JetDataset) else list(paths)
    if not items:
        raise ValueError("pass at least one data file")
    sets = [p if isinstance(p, JetDataset) else load_dataset(p) for p in items]
    names = sets[0].feature_names
    for ds in sets[1:]:
        if ds.feature_names != names:
            raise ValueError(
                f"{ds.source} has other features than {sets[0].source}; all files must share one layout"
            )
    labeled = [ds.labels is not None for ds in sets]
    if any(labeled) and not all(labeled):
        raise ValueError("some files have labels and some do not; pass only labeled or only unlabeled files")
    labels = None if not all(labeled) else np.concatenate([np.asarray(ds.labels) for ds in sets])
    return JetDataset(
        np.concatenate([ds.features for ds in sets]),
        labels,
        names,
        source=", ".join(ds.source for ds in sets),
    )


def load_rows(
    paths: PathLike | JetDataset | Sequence[PathLike | JetDataset],
    representation: Literal["jet", "features"] = "jet",
) -> tuple[FloatArray, npt.NDArray[np.int64] | None, tuple[str, ...], JetDataset]:
    """Rows of a representation from one or more jet files.

    A file written in the ``"jet"`` representation (columns :data:`JET_OBSERVABLES`, for
    example a ``reference.feather`` of :func:`train_surrogate_file`) is used as it is.

    Returns:
        ``(rows, labels or None, column names, dataset)``.

    Raises:
        ValueError: For an unknown representation or files in another layout.

    Example:
        >>> rows, labels, names, ds = load_rows(["top.h5", "w.h5"], "jet")  # doctest: +SKIP
        >>> names  # doctest: +SKIP
        ('jet_mass', 'jet_pt', 'width', 'e2', 'd2')
    """
    ds = _load(paths)
    rows, names = representation_rows(ds, representation)
    return rows, ds.labels, names, ds


def _split(
    n: int, labels: npt.NDArray[np.int64] | None, holdout: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(train, holdout) indices, stratified by class."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    train, held = [], []
    for g in groups:
        perm = rng.permutation(g)
        k = round(holdout * g.shape[0])
        held.append(perm[:k])
        train.append(perm[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def _check_fraction(value: float, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (lo <= float(value) < hi):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}), got {value!r}")
    return float(value)


def train_surrogate_file(
    data: PathLike | JetDataset | Sequence[PathLike | JetDataset],
    *,
    kind: Literal["flow", "flow-matching"] = "flow",
    out: PathLike,
    epochs: int = 50,
    seed: int = 0,
    representation: Literal["jet", "features"] = "jet",
    samples: int | None = None,
    holdout: float = 0.3,
    flow: Literal["nsf", "maf"] = "nsf",
    batch_size: int = 256,
    lr: float = 1e-3,
    val_fraction: float = 0.2,
    progress: bool = False,
    config: TrainConfig | None = None,
) -> dict[str, Any]:
    """Train a surrogate on jet files and write a candidate sample next to a held-out reference.

    Args:
        data: One or more jet files (aalearn HDF5, Feather, Parquet, ROOT) or datasets;
            with labels the surrogate is conditional on the class.
        kind: ``"flow"`` (zuko NSF/MAF) or ``"flow-matching"``.
        out: Output directory (created).
        epochs: Training epochs.
        seed: Seed of the split, the training and the sampling.
        representation: ``"jet"`` (five jet observables) or ``"features"`` (the 87
            challenge features); see the module doc.
        samples: Generated jets (default: as many as the held-out reference, with the
            same class counts).
        holdout: Fraction of the jets (per class) kept out of training as the reference.
        flow: ``"nsf"`` or ``"maf"`` (``kind="flow"`` only).
        batch_size: Training batch size.
        lr: Learning rate.
        val_fraction: Fraction of the training jets used for early model selection.
        progress: Progress bar on stderr.
        config: The training settings as one :class:`~aalearn.core.config.TrainConfig`;
            when given it replaces ``epochs``, ``batch_size``, ``lr``, ``seed`` and
            ``progress`` (and sets the early-stopping patience).

    Returns:
        Summary: ``kind``, ``representation``, ``columns``, ``n_train``, ``n_reference``,
        ``n_samples``, ``fit_seconds``, ``sample_seconds``, ``epochs_run``,
        ``best_epoch``, ``val_loss``, ``reference_log_prob`` (mean log-density of the
        held-out jets in the representation's units; flow matching: on at most ~1000 of
        them) and the paths written (``model``, ``candidate``, ``reference``, ``summary``).

    Raises:
        ValueError: For unreadable or inconsistent files, bad options or too few jets.

    Example:
        >>> res = train_surrogate_file(["top.h5", "w.h5"], kind="flow", out="sur/")  # doctest: +SKIP
        >>> res["candidate"], res["reference"]  # doctest: +SKIP
        ('sur/candidate.feather', 'sur/reference.feather')
    """
    if config is None:
        # the surrogates' defaults: no early stopping (patience = epochs)
        config = TrainConfig(
            epochs=epochs, batch_size=batch_size, lr=lr, patience=epochs, seed=seed, progress=progress
        )
    seed = config.seed
    if kind not in ("flow", "flow-matching"):
        raise ValueError(f"kind must be 'flow' or 'flow-matching', got {kind!r}")
    holdout = _check_fraction(holdout, "holdout", 0.0, 0.9)
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    rows, labels, names, ds = load_rows(data, representation)
    train_idx, ref_idx = _split(rows.shape[0], labels, holdout, seed)
    if samples is None and ref_idx.shape[0] == 0:
        raise ValueError("holdout = 0 leaves no reference; pass samples= to say how many jets to generate")
    model = make_surrogate(kind, **surrogate_kwargs(representation, names, kind, flow))
    y_train = None if labels is None else labels[train_idx]
    model.fit(rows[train_idx], y_train, config=config, val_fraction=val_fraction)
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    model_path = model.save(outp / "surrogate.safetensors")
    t0 = time.perf_counter()
    if samples is None:
        ref_labels = None if labels is None else np.random.default_rng(seed).permutation(labels[ref_idx])
        gen, gen_labels = model.sample_labeled(int(ref_idx.shape[0]), ref_labels, seed=seed + 1)
    else:
        gen, gen_labels = model.sample_labeled(int(samples), None, seed=seed + 1)
    sample_seconds = time.perf_counter() - t0
    meta = {
        "aalearn_surrogate": {
            "kind": kind,
            "representation": representation,
            "seed": seed,
            "trained_on": ds.source,
        }
    }
    cand_path = outp / "candidate.feather"
    save_dataset(
        JetDataset(gen.astype(np.float32), gen_labels, names, source="surrogate", metadata=meta), cand_path
    )
    ref_path = outp / "reference.feather"
    if ref_idx.shape[0]:
        save_dataset(
            JetDataset(
                rows[ref_idx].astype(np.float32),
                None if labels is None else labels[ref_idx],
                names,
                source=f"held-out jets of {ds.source}",
            ),
            ref_path,
        )
    ref_log_prob = math.nan
    if ref_idx.shape[0] and (kind == "flow" or len(names) <= 10):
        # flow matching integrates an ODE with an exact trace per row: every k-th row, at most ~1000
        lp_idx = ref_idx if kind == "flow" else ref_idx[:: max(1, ref_idx.shape[0] // 1000)]
        ref_log_prob = float(
            np.mean(model.log_prob(rows[lp_idx], None if labels is None else labels[lp_idx]))
        )
    summary: dict[str, Any] = {
        "kind": kind,
        "flow": flow if kind == "flow" else None,
        "representation": representation,
        "columns": list(names),
        "n_train": int(train_idx.shape[0]),
        "n_reference": int(ref_idx.shape[0]),
        "n_samples": int(gen.shape[0]),
        "conditional": model.conditional,
        "fit_seconds": model.fit_seconds_,
        "sample_seconds": sample_seconds,
        "epochs_run": len(model.history_.get("train_loss", [])),
        "best_epoch": model.best_epoch_,
        "val_loss": model.history_["val_loss"][model.best_epoch_] if model.best_epoch_ >= 0 else math.nan,
        "reference_log_prob": ref_log_prob,
        "model": str(model_path),
        "candidate": str(cand_path),
        "reference": str(ref_path) if ref_idx.shape[0] else None,
        "summary": str(outp / "summary.json"),
    }
    write_run(
        DictResult(summary, title="Surrogate training"),
        outp,
        title="aalearn surrogate train",
        json_name="summary.json",
        report_name=None,
    )
    return summary


# --------------------------------------------------------------------------------------
# amplification and closure on jet files
# --------------------------------------------------------------------------------------
def _observable(
    observable: str, names: Sequence[str], representation: str, model: str | PathLike | None
) -> Callable[[FloatArray], FloatArray]:
    if observable in names:
        col = list(names).index(observable)
        return lambda rows: rows[:, col]
    if representation == "features" and observable == "jet_mass":
        return lambda rows: np.asarray(features_mass(rows, pt_scale=CHALLENGE_PT_SCALE_GEV), dtype=np.float64)
    if observable == "score":
        if model is None:
            raise ValueError("observable 'score' needs a classifier: pass model=")
        if representation != "features":
            raise ValueError(
                "observable 'score' needs representation='features' (the classifier reads 87 features)"
            )
        clf = load_model(Path(model))
        return lambda rows: np.asarray(predict_proba(clf, rows.astype(np.float32)), dtype=np.float64)
    raise ValueError(
        f"unknown observable {observable!r}; use one of {list(names)[:8]}"
        + (", 'jet_mass'" if representation == "features" else "")
        + " or 'score' (with model=, representation='features')"
    )


def surrogate_study(
    data: PathLike | JetDataset | Sequence[PathLike | JetDataset],
    *,
    kind: Literal["flow", "flow-matching"] = "flow",
    representation: Literal["jet", "features"] = "jet",
    members: int = 5,
    epochs: int = 30,
    observable: str = "jet_mass",
    model: PathLike | None = None,
    holdout: float = 0.5,
    n_gen: int = 50_000,
    bins: int = 20,
    amplification: bool = True,
    closure: bool = True,
    closure_bins: int = 10,
    closure_toys: int = 200,
    closure_pool_bootstraps: int = 20,
    expected_signal: float | None = None,
    expected_background: float | None = None,
    needed_events: float | None = None,
    bias_tolerance: float = 0.2,
    flow: Literal["nsf", "maf"] = "nsf",
    batch_size: int = 256,
    seed: int = 0,
    out: PathLike | None = None,
    progress: bool = False,
    config: TrainConfig | None = None,
) -> SurrogateStudy:
    """Ensemble of surrogates on bootstraps of real jets: amplification per class and closure.

    The labelled jets are split (per class) into a training part and a held-out part. An
    ensemble of ``members`` conditional surrogates is trained on bootstrap resamples of the
    training part (:func:`aalearn.surrogates.amplification.train_ensemble`); each member
    generates ``n_gen`` jets per class. Amplification: the observable binned in
    equal-probability bins of the held-out jets of each class
    (:func:`~aalearn.surrogates.amplification.amplification_from_samples`). Closure: a fit
    of the signal strength of top jets (label 0, signal) over W jets (label 1, background)
    in the observable, templates from the ensemble, pseudo-data resampled from the
    held-out real jets (:func:`~aalearn.surrogates.closure.closure_test`), with and without
    the model-variance nuisance, and as the closure's null with templates from the real
    training jets themselves (``"real_templates"``).

    Args:
        data: Labelled jet files or datasets (both classes).
        kind: Surrogate family.
        representation: ``"jet"`` or ``"features"`` (see the module doc).
        members: Ensemble size (≥ 2).
        epochs: Training epochs per member.
        observable: Binned observable: a column of the representation (``"jet_mass"``, …),
            ``"jet_mass"`` for the features representation, or ``"score"`` with ``model``.
        model: Classifier for ``observable="score"``.
        holdout: Held-out fraction per class (the truth for amplification and the
            pseudo-data pool for closure).
        n_gen: Generated jets per member and class.
        bins: Amplification bins.
        amplification: Run the amplification study.
        closure: Run the closure test.
        closure_bins: Bins of the closure fit (quantile binning).
        closure_toys: Pseudo-experiments per variant.
        closure_pool_bootstraps: Bootstrap copies of the held-out pool (its share of the
            error of the closure bias).
        expected_signal: :math:`E_s` (default: pool/20, at most 100: the pool must be much
            larger than a toy).
        expected_background: :math:`E_b` (default: pool/10, at most 1000).
        needed_events: Equivalent events the analysis needs (amplification check).
        bias_tolerance: Closure bias tolerance in units of σ_stat.
        flow: ``"nsf"`` or ``"maf"`` for ``kind="flow"``.
        batch_size: Training batch size.
        seed: Seed of everything.
        out: Directory for ``study.json`` and ``report.html`` (optional).
        progress: Progress bars on stderr.
        config: Training settings of every member as one
            :class:`~aalearn.core.config.TrainConfig`; when given it replaces ``epochs``,
            ``batch_size`` and ``progress`` (member ``k`` trains with seed ``seed + k``).

    Returns:
        The :class:`~aalearn.surrogates.study.SurrogateStudy`; its ``to_dict()`` holds
        ``fit_seconds`` (per member), ``sample_seconds``, ``amplification`` (per class name),
        ``closure``, ``checks`` (Check dicts) and the paths written.

    Raises:
        ValueError: For unlabelled data, a missing class, bad options or an unknown observable.

    Example:
        >>> res = surrogate_study(["top.h5", "w.h5"], kind="flow", members=5, out="study/")  # doctest: +SKIP
        >>> [c.name for c in res.checks if not c.passed][:2]  # doctest: +SKIP
        ['amplification:n_equiv:top', 'amplification:n_equiv:w']
    """
    if config is None:
        # the surrogates' defaults: no early stopping (patience = epochs)
        config = TrainConfig(
            epochs=epochs, batch_size=batch_size, patience=epochs, seed=seed, progress=progress
        )
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ValueError(f"members must be an integer >= 2, got {members!r}")
    if isinstance(n_gen, bool) or not isinstance(n_gen, int) or n_gen < 100:
        raise ValueError(f"n_gen must be an integer >= 100, got {n_gen!r}")
    if not (amplification or closure):
        raise ValueError("nothing to do: enable amplification, closure or both")
    holdout = _check_fraction(holdout, "holdout", 0.05, 0.95)
    rows, labels, names, ds = load_rows(data, representation)
    if labels is None or not {LABEL_TOP, LABEL_W} <= set(np.unique(labels).tolist()):
        raise ValueError(f"{ds.source}: the study needs labelled jets of both classes (0 = top, 1 = W)")
    obs = _observable(observable, names, representation, model)
    train_idx, held_idx = _split(rows.shape[0], labels, holdout, seed)
    kwargs = surrogate_kwargs(representation, names, kind, flow)
    ensemble: list[Surrogate] = train_ensemble(
        lambda: make_surrogate(kind, **kwargs),
        rows[train_idx],
        labels[train_idx],
        n_members=members,
        seed=seed,
        config=config,
    )
    fit_seconds = [float(m.fit_seconds_) for m in ensemble]
    t0 = time.perf_counter()
    generated: dict[int, list[FloatArray]] = {
        label: [
            obs(m.sample(n_gen, label, seed=seed + 1000 * (label + 1) + k)) for k, m in enumerate(ensemble)
        ]
        for label in (LABEL_TOP, LABEL_W)
    }
    sample_seconds = time.perf_counter() - t0
    held_obs = {label: obs(rows[held_idx][labels[held_idx] == label]) for label in (LABEL_TOP, LABEL_W)}
    n_train = {label: int(np.sum(labels[train_idx] == label)) for label in (LABEL_TOP, LABEL_W)}
    checks: list[Check] = []
    amp_results: dict[str, AmplificationResult] = {}
    if amplification:
        for label in (LABEL_TOP, LABEL_W):
            res = amplification_from_samples(
                generated[label],
                truth=held_obs[label],
                n_train=n_train[label],
                bins=bins,
                observable=f"{observable} ({LABEL_NAMES[label]})",
                fit_seconds=fit_seconds,
            )
            amp_results[LABEL_NAMES[label]] = res
            for c in res.checks(needed_events):
                checks.append(dataclasses.replace(c, name=f"{c.name}:{LABEL_NAMES[label]}"))
    closure_result = None
    if closure:
        pool_s, pool_b = held_obs[LABEL_TOP], held_obs[LABEL_W]
        e_s = expected_signal if expected_signal is not None else min(100.0, pool_s.shape[0] / 20)
        e_b = expected_background if expected_background is not None else min(1000.0, pool_b.shape[0] / 10)
        closure_result = closure_test(
            generated[LABEL_TOP],
            generated[LABEL_W],
            pool_s,
            pool_b,
            bins=closure_bins,
            expected_signal=e_s,
            expected_background=e_b,
            n_toys=closure_toys,
            pool_bootstraps=closure_pool_bootstraps,
            model_nuisance=True,
            seed=seed,
            observable=observable,
            baseline_signal=obs(rows[train_idx][labels[train_idx] == LABEL_TOP]),
            baseline_background=obs(rows[train_idx][labels[train_idx] == LABEL_W]),
        )
        checks.extend(closure_result.checks(bias_tolerance))
    study = SurrogateStudy(
        kind=kind,
        representation=representation,
        observable=observable,
        members=members,
        epochs=config.epochs,
        n_train={LABEL_NAMES[k]: v for k, v in n_train.items()},
        n_holdout={LABEL_NAMES[k]: int(v.shape[0]) for k, v in held_obs.items()},
        fit_seconds=fit_seconds,
        sample_seconds=sample_seconds,
        amplification=amp_results,
        closure=closure_result,
        checks=checks,
    )
    if out is not None:
        outp = Path(out)
        study.paths = {"study": str(outp / "study.json"), "report": str(outp / "report.html")}
        write_run(
            study,
            outp,
            title="aalearn surrogate study",
            subtitle=f"{kind} ensemble of {members} on {representation} rows",
            json_name="study.json",
        )
    return study


# --------------------------------------------------------------------------------------
# validation of a candidate file against a reference file
# --------------------------------------------------------------------------------------
def validate_files(
    reference: PathLike,
    candidate: PathLike,
    *,
    out: PathLike | None = None,
    **options: Any,
) -> tuple[SurrogateValidation, dict[str, str]]:
    """:func:`~aalearn.surrogates.validate.validate_samples` on two jet files; optionally write the run.

    The files are read with :func:`aalearn.data.io.load_dataset` (aalearn HDF5, Feather,
    Parquet, ROOT); both must hold the same feature columns. With ``out``,
    ``results.json`` (the validation's ``to_dict()`` plus the two file names) and
    ``report.html`` are written through :func:`aalearn.report.write_run`.

    Args:
        reference: Reference jet file (full simulation).
        candidate: The surrogate's jet file.
        out: Directory for ``results.json`` and ``report.html`` (created); nothing is written when ``None``.
        **options: Keyword arguments of :func:`~aalearn.surrogates.validate.validate_samples`.

    Returns:
        The validation and the paths written (``{"results": ..., "report": ...}``).

    Raises:
        ValueError: For missing or unreadable files and everything ``validate_samples`` rejects.

    Example:
        >>> result, paths = validate_files("ref.feather", "cand.feather", out="val/")  # doctest: +SKIP
        >>> sorted(paths)  # doctest: +SKIP
        ['report', 'results']
    """
    ref = load_dataset(reference)
    cand = load_dataset(candidate)
    result = validate_samples(ref, cand, **options)
    paths: dict[str, str] = {}
    if out is not None:
        payload = result.to_dict()
        payload.update({"reference": str(reference), "candidate": str(candidate)})
        paths = write_run(
            result,
            out,
            title="Surrogate validation",
            subtitle=f"{Path(candidate).name} against {Path(reference).name}",
            metadata={"reference": str(reference), "candidate": str(candidate), "seed": result.seed},
            payload=payload,
        ).to_dict()
    return result, paths
