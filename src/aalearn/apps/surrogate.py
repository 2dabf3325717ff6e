r"""Train surrogates on jet files, write candidate samples, run amplification and closure.

Behind ``aalearn surrogate train`` (:func:`train_surrogate_file`) and the amplification and
closure commands (:func:`surrogate_study`).

**Representations.** A surrogate learns either

* ``"jet"`` (default): five jet-level observables computed from the 87 challenge features
  (constituents in GeV after the TopoDNN preprocessing, so every observable is invariant
  under its translation and rotation):

  - ``jet_mass``, ``jet_pt`` [GeV] and ``width`` (girth) as defined in
    :mod:`aalearn.surrogates.features` (the validation suite's own jet features, so that
    candidate and reference columns match by name);
  - ``e2``: energy-correlation function :math:`e_2^{(1)} = \sum_{i<j} z_i z_j \Delta R_{ij}`
    with :math:`z_i = p_{T,i}/\sum p_T`;
  - ``d2``: :math:`D_2^{(1)} = e_3^{(1)}/(e_2^{(1)})^3` with
    :math:`e_3^{(1)} = \sum_{i<j<k} z_i z_j z_k \Delta R_{ij}\Delta R_{ik}\Delta R_{jk}`
    (Larkoski, Moult, Neill, arXiv:1409.6298), which separates three-prong top jets from
    two-prong W jets.

  All five are positive, unbounded above and smooth, and are modelled in log space, so
  generated values are positive. (The validation suite's other features are less suited
  to a flow: the multiplicity is discrete, the momentum fractions and N-subjettiness
  ratios are bounded with mass piled up at the bound.)
  A 5-D conditional flow trains on 10⁴ jets in well under a minute on 2 CPU cores; this
  is the documented default.
* ``"features"``: the 87 challenge features themselves (pT columns in log space with an
  offset of 10⁻⁵ in units of the 1679 GeV scale, so that zero-padded constituents are
  allowed; η and φ as they are). Slower and, with a few thousand training jets, much
  less accurate; its samples are in the reference's own format (TopoDNN can score them).

Files written by :func:`train_surrogate_file` in ``out``: ``surrogate.safetensors``,
``candidate.feather`` (generated jets with labels, readable by
:func:`aalearn.data.io.load_dataset`), ``reference.feather`` (the held-out real jets in the
same representation, not used for training) and ``summary.json``.

Example:
    >>> import numpy as np
    >>> from aalearn.physics import challenge_feature_names
    >>> x = np.abs(np.random.default_rng(0).normal(0.01, 0.005, size=(4, 87)))
    >>> jet_observables(x).shape
    (4, 5)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aalearn.core.jsonutil import to_jsonable
from aalearn.core.validation import check_array
from aalearn.data.dataset import LABEL_NAMES, LABEL_TOP, LABEL_W, JetDataset
from aalearn.physics.jets import energy_correlations
from aalearn.surrogates.models import Surrogate, make_surrogate

__all__ = [
    "JET_OBSERVABLES",
    "jet_observables",
    "load_rows",
    "surrogate_study",
    "train_surrogate_file",
]

FloatArray = npt.NDArray[np.float64]
PathLike = str | os.PathLike[str]

JET_OBSERVABLES: tuple[str, ...] = ("jet_mass", "jet_pt", "width", "e2", "d2")
"""Names of the jet-level observables of the ``"jet"`` representation."""
JET_LOG_OFFSET = 1e-6
FEATURES_LOG_OFFSET = 1e-5
_CHUNK = 4096


def jet_observables(features: npt.ArrayLike, *, pt_scale: float | None = None) -> FloatArray:
    r"""The five jet-level observables of the ``"jet"`` representation from the 87 challenge features.

    ``jet_mass``, ``jet_pt`` and ``width`` are those of
    :func:`aalearn.surrogates.features.jet_features`; ``e2`` and ``d2`` are the
    energy-correlation functions of the module doc.

    Args:
        features: ``(N, 87)`` features in the challenge layout.
        pt_scale: GeV per feature pT unit (default: the challenge's 1679.1593 GeV).

    Returns:
        ``(N, 5)`` float64 columns :data:`JET_OBSERVABLES`.

    Raises:
        ValueError: For another shape or non-finite values.
    """
    from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV
    from aalearn.physics.preprocessing import features_to_constituents
    from aalearn.surrogates.features import JET_FEATURES, jet_features

    x = check_array(features, name="features", ndim=2, dtype=np.float64)
    if x.shape[1] != 87:
        raise ValueError(
            f"jet observables need the 87 challenge features (30 constituents), got {x.shape[1]} columns"
        )
    scale = CHALLENGE_PT_SCALE_GEV if pt_scale is None else float(pt_scale)
    base = jet_features(x, pt_scale=scale)
    out = np.empty((x.shape[0], len(JET_OBSERVABLES)), dtype=np.float64)
    for k, name in enumerate(JET_OBSERVABLES[:3]):
        out[:, k] = base[:, JET_FEATURES.index(name)]
    for start in range(0, x.shape[0], _CHUNK):
        c = features_to_constituents(x[start : start + _CHUNK], pt_scale=scale)
        e2, d2 = energy_correlations(c)
        out[start : start + _CHUNK, 3] = e2
        out[start : start + _CHUNK, 4] = d2
    return out


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def _load(paths: PathLike | JetDataset | Sequence[PathLike | JetDataset]) -> JetDataset:
    from aalearn.data.io import load_dataset

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
    from aalearn.physics.features import challenge_feature_names

    ds = _load(paths)
    challenge = tuple(challenge_feature_names())
    if representation == "jet":
        if ds.feature_names == JET_OBSERVABLES:
            rows = ds.features.astype(np.float64)
        elif ds.feature_names == challenge:
            rows = jet_observables(ds.features)
        else:
            raise ValueError(
                f"{ds.source}: the 'jet' representation needs the 87 challenge features or the columns "
                f"{list(JET_OBSERVABLES)}; got {list(ds.feature_names)[:6]}..."
            )
        names = JET_OBSERVABLES
    elif representation == "features":
        if ds.feature_names != challenge:
            raise ValueError(f"{ds.source}: the 'features' representation needs the 87 challenge features")
        rows, names = ds.features.astype(np.float64), challenge
    else:
        raise ValueError(f"representation must be 'jet' or 'features', got {representation!r}")
    return rows, ds.labels, names, ds


def _surrogate_kwargs(representation: str, names: Sequence[str], kind: str, flow: str) -> dict[str, Any]:
    if representation == "jet":
        kwargs: dict[str, Any] = {"log_features": list(range(len(names))), "log_offset": JET_LOG_OFFSET}
    else:
        kwargs = {
            "log_features": [i for i, n in enumerate(names) if n.startswith("ConstPT")],
            "log_offset": FEATURES_LOG_OFFSET,
        }
    if kind == "flow":
        kwargs["flow"] = flow
    return kwargs


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


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=2) + "\n")
    os.replace(tmp, path)


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
    from aalearn.data.io import save_dataset

    if kind not in ("flow", "flow-matching"):
        raise ValueError(f"kind must be 'flow' or 'flow-matching', got {kind!r}")
    holdout = _check_fraction(holdout, "holdout", 0.0, 0.9)
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    rows, labels, names, ds = load_rows(data, representation)
    train_idx, ref_idx = _split(rows.shape[0], labels, holdout, seed)
    if samples is None and ref_idx.shape[0] == 0:
        raise ValueError("holdout = 0 leaves no reference; pass samples= to say how many jets to generate")
    model = make_surrogate(kind, **_surrogate_kwargs(representation, names, kind, flow))
    y_train = None if labels is None else labels[train_idx]
    model.fit(
        rows[train_idx],
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        val_fraction=val_fraction,
        progress=progress,
    )
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
    _write_json(outp / "summary.json", summary)
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
        from aalearn.physics.features import CHALLENGE_PT_SCALE_GEV
        from aalearn.physics.kinematics import features_mass

        return lambda rows: np.asarray(features_mass(rows, pt_scale=CHALLENGE_PT_SCALE_GEV), dtype=np.float64)
    if observable == "score":
        if model is None:
            raise ValueError("observable 'score' needs a classifier: pass model=")
        if representation != "features":
            raise ValueError(
                "observable 'score' needs representation='features' (the classifier reads 87 features)"
            )
        from aalearn.models import load_model, predict_proba

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
) -> dict[str, Any]:
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

    Returns:
        ``fit_seconds`` (per member), ``sample_seconds``, ``amplification`` (per class name),
        ``closure``, ``checks`` (Check dicts) and the paths written.

    Raises:
        ValueError: For unlabelled data, a missing class, bad options or an unknown observable.

    Example:
        >>> res = surrogate_study(["top.h5", "w.h5"], kind="flow", members=5, out="study/")  # doctest: +SKIP
        >>> [c["name"] for c in res["checks"] if not c["passed"]][:2]  # doctest: +SKIP
        ['amplification:n_equiv:top', 'amplification:n_equiv:w']
    """
    from aalearn.surrogates.amplification import amplification_from_samples, train_ensemble
    from aalearn.surrogates.closure import closure_test

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
    kwargs = _surrogate_kwargs(representation, names, kind, flow)
    ensemble: list[Surrogate] = train_ensemble(
        lambda: make_surrogate(kind, **kwargs),
        rows[train_idx],
        labels[train_idx],
        n_members=members,
        seed=seed,
        fit_kwargs={"epochs": epochs, "batch_size": batch_size, "progress": progress},
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
    result: dict[str, Any] = {
        "kind": kind,
        "representation": representation,
        "observable": observable,
        "members": members,
        "epochs": epochs,
        "n_train": {LABEL_NAMES[k]: v for k, v in n_train.items()},
        "n_holdout": {LABEL_NAMES[k]: int(v.shape[0]) for k, v in held_obs.items()},
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
    }
    checks: list[Any] = []
    amp_results = {}
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
        result["amplification"] = {k: v.to_dict() for k, v in amp_results.items()}
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
        result["closure"] = closure_result.to_dict()
        checks.extend(closure_result.checks(bias_tolerance))
    result["checks"] = [c.to_dict() for c in checks]
    if out is not None:
        outp = Path(out)
        outp.mkdir(parents=True, exist_ok=True)
        result["study"] = str(outp / "study.json")
        result["report"] = str(
            _write_report(outp / "report.html", result, amp_results, closure_result, checks)
        )
        _write_json(outp / "study.json", result)
    return result


def _write_report(
    path: Path, result: dict[str, Any], amp_results: dict[str, Any], closure_result: Any, checks: list[Any]
) -> Path:
    from aalearn.report import Report
    from aalearn.surrogates.amplification import plot_amplification
    from aalearn.surrogates.closure import plot_closure

    report = Report(
        "aalearn surrogate study",
        subtitle=f"{result['kind']} ensemble of {result['members']} on {result['representation']} rows",
    )
    report.add_section(
        "Training",
        text="Each ensemble member is trained on its own bootstrap resample of the training jets.",
        table=[{"member": k, "fit seconds": s} for k, s in enumerate(result["fit_seconds"])],
    )
    for name, res in amp_results.items():
        d = res.to_dict()
        report.add_section(
            f"Amplification ({name})",
            text=(
                "Equivalent events n_equiv = p(1-p)/MSE per equal-probability bin of the held-out jets "
                "(Butter et al., arXiv:2008.06545)."
            ),
            table={
                k: d[k] for k in ("n_equiv", "n_equiv_limit", "amplification", "n_gen_saturation", "n_train")
            },
            figures=[plot_amplification(res)],
        )
    if closure_result is not None:
        report.add_section(
            "Closure",
            text="Fit of the top-jet signal strength: surrogate templates, resampled held-out jets as data.",
            table=[v.to_dict() for v in closure_result.variants],
            figures=[plot_closure(closure_result)],
        )
    if checks:
        report.add_section(
            "Checks",
            table=[
                {"check": c.name, "passed": c.passed, "value": c.value, "detail": c.detail} for c in checks
            ],
        )
    return report.write(path)
