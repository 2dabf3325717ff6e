"""The workflow behind ``aalearn explain``: explanations of a tagger on a data file.

Reads the model (:func:`aalearn.models.load_model`: aalearn checkpoints, the challenge's
Keras ``.hdf5``, shipped models) and the jets (:func:`aalearn.data.io.load_dataset`),
runs :func:`aalearn.explain.explainer.explain_model` on the whole file (or its first
``n_max`` jets; explanations are measurements, no split is needed) and, with ``out``,
writes ``results.json`` and ``report.html`` through :func:`aalearn.report.write_run`.

Example:
    >>> from aalearn.core.paths import find_challenge_data
    >>> d = find_challenge_data()
    >>> res = explain_file(d / "best_model.hdf5", d / "Clean_Test_Public.feather", n_max=20,
    ...                    steps=8) if d else None
    >>> res.n_jets if res else 20
    20
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aalearn.data.io import load_dataset
from aalearn.explain.attributions import DEFAULT_STEPS, check_method
from aalearn.explain.explainer import explain_model
from aalearn.explain.result import ExplanationResult
from aalearn.models import load_model
from aalearn.report import write_run

__all__ = ["explain_file"]

PathLike = str | os.PathLike[str]


def explain_file(
    model: PathLike,
    data: PathLike,
    *,
    method: str = "integrated-gradients",
    baseline: str = "zeros",
    n_max: int | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    adversarial: PathLike | None = None,
    out: PathLike | None = None,
) -> ExplanationResult:
    """Explain the tagger ``model`` on the jets of ``data``.

    Args:
        model: Model file or ``aalearn:NAME``.
        data: Jets (Feather, Parquet, ROOT, aalearn HDF5); labels are used when present.
        method: ``integrated-gradients`` (default), ``gradient-shap``, ``deeplift`` or ``saliency``.
        baseline: ``"zeros"``, ``"mean"`` (the mean jet of ``data``) or a data file whose
            jets are the baseline (their mean for the path methods, their distribution for
            gradient-SHAP).
        n_max: Use only the first ``n_max`` jets (of ``data``, the adversarial file and the
            baseline file).
        steps: Path points of Integrated Gradients (samples of gradient-SHAP).
        seed: Seed.
        adversarial: Adversarial jets row-paired with ``data`` (for example the challenge's
            ``Adversaries_Test_Public.feather``): adds the attack explanation.
        out: Output directory for ``results.json`` and ``report.html``.

    Returns:
        The :class:`~aalearn.explain.result.ExplanationResult`.

    Raises:
        ValueError: Unknown method or baseline, data width differing from the model's,
            bad ``n_max``.
        FileNotFoundError: A missing file.
    """
    check_method(method)
    if n_max is not None and (isinstance(n_max, bool) or not isinstance(n_max, int) or n_max < 1):
        raise ValueError(f"n_max must be a positive integer, got {n_max!r}")
    net = load_model(model)
    ds = load_dataset(data)
    if n_max is not None:
        ds = ds.subset(np.arange(min(n_max, len(ds))))
    base: str | np.ndarray = baseline
    base_name = baseline
    if baseline not in ("zeros", "mean"):
        path = Path(baseline)
        if not path.suffix:
            raise ValueError(f"unknown baseline {baseline!r}; use 'zeros', 'mean' or a data file")
        ref = load_dataset(path, feature_names=ds.feature_names)
        base = ref.features[: n_max or len(ref)].astype(np.float64)
        base_name = str(path)
    adv = None
    if adversarial is not None:
        adv_ds = load_dataset(adversarial, feature_names=ds.feature_names)
        if n_max is not None:
            adv_ds = adv_ds.subset(np.arange(min(n_max, len(adv_ds))))
        adv = {Path(adversarial).stem: adv_ds.features}
    result = explain_model(
        net,
        ds.features,
        ds.labels,
        feature_names=ds.feature_names,
        method=method,
        baseline=base,
        baseline_name=base_name,
        steps=steps,
        seed=seed,
        adversarial=adv,
    )
    if out is not None:
        write_run(
            result,
            out,
            title="Explanations",
            subtitle=f"{method} on {Path(data).name}",
            metadata={"model": str(model), "data": str(data), "method": method, "seed": seed},
        )
    return result
