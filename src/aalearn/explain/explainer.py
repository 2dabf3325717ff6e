r"""``explain_model``: every explanation of a binary tagger on an array of jets, in one call.

Runs the attribution method on all jets (:mod:`aalearn.explain.attributions`), the
importance in σ units of the detector resolution, the grouping per feature kind and
constituent rank, the physics-level explanation (:mod:`aalearn.explain.observables`),
the sanity checks (:mod:`aalearn.explain.sanity`: Integrated Gradients' completeness
on all jets, the Adebayo et al. model-randomisation test and the 0.1σ stability on a
seeded subsample of ``n_sanity`` jets) and, for adversarial samples, the attack
explanations (:mod:`aalearn.explain.attack`).

Example:
    >>> import numpy as np, torch
    >>> from aalearn.models import TopoDNN
    >>> model = TopoDNN(hidden=(8,)).eval()
    >>> x = np.abs(np.random.default_rng(0).normal(0.02, 0.01, (20, 87)))
    >>> res = explain_model(model, x, steps=16, n_sanity=10)
    >>> len(res.to_dict()["feature_importance"])
    87
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from torch import nn

from aalearn.core.seeding import check_seed, numpy_rng
from aalearn.core.validation import check_array, check_labels
from aalearn.data.dataset import LABEL_NAMES
from aalearn.explain.attack import AttackExplanation, explain_attack
from aalearn.explain.attributions import (
    DEFAULT_STEPS,
    attribute,
    check_method,
    check_model_input,
    feature_groups,
    logits_of,
    make_baseline,
    mean_abs_by_class,
    sigma_importance,
)
from aalearn.explain.observables import interpret_observables, jet_observables, observable_correlations
from aalearn.explain.result import ExplanationResult, JetImageData
from aalearn.explain.sanity import (
    SanityReport,
    completeness_error,
    completeness_error_median,
    randomization_test,
    stability,
)
from aalearn.physics.features import FeatureSet, challenge_features, is_challenge_layout
from aalearn.physics.preprocessing import features_to_constituents

__all__ = ["explain_model"]

FloatArray = npt.NDArray[np.float64]
#: Jets in the randomisation and stability checks (each costs one attribution pass on them).
DEFAULT_N_SANITY = 500


def _sigma(x: FloatArray, features: FeatureSet | None) -> tuple[FloatArray | None, FloatArray]:
    """Resolution σ (or ``None``) and the σ of the perturbations (resolution, else 10 % of the spread)."""
    if features is not None:
        s = np.asarray(features.sigma(x), dtype=np.float64)
        return s, s
    spread = x.std(axis=0) if len(x) > 1 else np.ones(x.shape[1])
    spread = np.where(spread > 0, spread, 1.0)
    return None, np.broadcast_to(0.1 * spread, x.shape).copy()


def _images(
    x: FloatArray, values: FloatArray, groups: Sequence[tuple[str, int]], classes: npt.NDArray[np.int64]
) -> JetImageData:
    c = np.asarray(features_to_constituents(x), dtype=np.float64)
    weight = np.zeros((c.shape[0], c.shape[1]))
    for i, (_, rank) in enumerate(groups):
        if 0 <= rank < weight.shape[1]:
            weight[:, rank] += np.abs(values[:, i])
    return JetImageData(c[..., 1], c[..., 2], weight, classes)


def explain_model(
    model: nn.Module,
    x: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    features: FeatureSet | None = None,
    method: str = "integrated-gradients",
    baseline: str | npt.ArrayLike = "zeros",
    baseline_name: str | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    n_sanity: int = DEFAULT_N_SANITY,
    adversarial: Mapping[str, npt.ArrayLike] | None = None,
    top_k: int = 10,
) -> ExplanationResult:
    """Explain a binary tagger on jets ``x``.

    Args:
        model: Binary classifier returning logits of :math:`P(\\text{label}=1)`.
        x: Jets ``(N, F)``.
        labels: Labels ``(N,)`` (0/1) for the per-class split; predictions are used without.
        feature_names: Column names (default: the challenge names for 87 columns, else ``f0 ...``).
        features: Feature set defining σ; default :func:`challenge_features` for the
            challenge layout, none otherwise (no σ-unit importance then).
        method: Attribution method (:data:`aalearn.explain.attributions.METHODS`).
        baseline: ``"zeros"``, ``"mean"`` or baseline rows (see
            :func:`aalearn.explain.attributions.make_baseline`).
        baseline_name: How to name the baseline in the output (default: its name or ``"array"``).
        steps: Integrated-Gradients path points (gradient-SHAP samples, capped at 64).
        seed: Seed of the sampling, the subsample and the re-initialisation.
        n_sanity: Jets in the randomisation and stability checks.
        adversarial: ``{name: adversarial jets (N, F)}`` row-paired with ``x`` for attack explanations.
        top_k: Size of the top-feature sets of the attack overlap.

    Returns:
        The :class:`ExplanationResult`.

    Raises:
        ValueError: Unknown method or baseline, model width differing from the data's,
            non-finite inputs, mismatched adversarial arrays.
    """
    t0 = time.perf_counter()
    check_method(method)
    seed = check_seed(seed)
    arr = check_array(x, name="x", ndim=2, dtype=np.float64)
    n, f = arr.shape
    if n == 0:
        raise ValueError("no jets to explain")
    check_model_input(model, f)
    names = list(feature_names) if feature_names is not None else None
    if names is None:
        names = list(challenge_features().names) if is_challenge_layout(f) else [f"f{i}" for i in range(f)]
    if len(names) != f:
        raise ValueError(f"{len(names)} feature names for {f} columns")
    if features is None and is_challenge_layout(f, names):
        features = challenge_features()
    if features is not None and len(features) != f:
        raise ValueError(f"the feature set has {len(features)} features, the data {f} columns")
    base = make_baseline(arr, baseline)
    base_label = baseline_name or (baseline if isinstance(baseline, str) else "array")
    # a single reference point for the path methods (gradient-SHAP keeps the distribution)
    path_base = base if method == "gradient-shap" else base.mean(axis=0, keepdims=True)

    attr = attribute(model, arr, method=method, baseline=path_base, steps=steps, seed=seed)
    classes_known = labels is not None
    classes = check_labels(labels, n=n) if labels is not None else (attr.logits >= 0).astype(np.int64)
    sigma, noise_sigma = _sigma(arr, features)
    imp_sigma = sigma_importance(model, arr, sigma).mean(axis=0) if sigma is not None else None
    groups = feature_groups(names, features)

    # sanity checks
    rng = numpy_rng(seed)
    sub = np.sort(rng.choice(n, size=min(n_sanity, n), replace=False))
    if method == "integrated-gradients":
        ig_vals, ig_logits, ig_base = attr.values, attr.logits, attr.baseline_logits
    else:
        ig = attribute(
            model, arr[sub], method="integrated-gradients", baseline=base.mean(axis=0), steps=steps, seed=seed
        )
        ig_vals, ig_logits, ig_base = ig.values, ig.logits, ig.baseline_logits
    rho, interpretation = randomization_test(
        model,
        arr[sub],
        method=method,
        baseline=path_base,
        steps=steps,
        seed=seed,
        reference=np.abs(attr.values[sub]).mean(axis=0),
    )
    stab = stability(
        model,
        arr[sub],
        noise_sigma[sub],
        method=method,
        baseline=path_base,
        steps=steps,
        seed=seed,
        reference=attr.values[sub],
    )
    sanity = SanityReport(
        completeness_error=completeness_error(ig_vals, ig_logits, ig_base),
        completeness_error_median=completeness_error_median(ig_vals, ig_logits, ig_base),
        completeness_method="integrated-gradients"
        + ("" if method == "integrated-gradients" else f" ({len(sub)} jets)"),
        randomization_rank_correlation=rho,
        randomization_interpretation=interpretation,
        stability=stab,
        n_jets=len(sub),
    )

    # physics-level explanation
    observables = jet_observables(arr, names)
    correlations = (
        observable_correlations(attr.logits, observables, classes, seed=seed) if observables else {}
    )
    obs_text = interpret_observables(correlations)

    # attack explanations
    attacks: list[AttackExplanation] = []
    for name, x_adv in (adversarial or {}).items():
        adv = check_array(x_adv, name=f"adversarial jets {name}", ndim=2, dtype=np.float64)
        if adv.shape != arr.shape:
            raise ValueError(f"adversarial jets {name!r} have shape {adv.shape}, the clean jets {arr.shape}")
        success = (logits_of(model, adv) >= 0).astype(np.int64) != classes
        resolution = sigma if sigma is not None else noise_sigma * 10.0
        attacks.append(
            explain_attack(
                arr,
                adv,
                resolution,
                success=success,
                feature_names=names,
                features=features,
                importance=attr.mean_abs(),
                top_k=top_k,
                name=name,
            )
        )

    images = _images(arr, attr.values, groups, classes) if is_challenge_layout(f, names) else None
    class_names = {str(i): n_ for i, n_ in enumerate(LABEL_NAMES)} if is_challenge_layout(f, names) else {}
    return ExplanationResult(
        method=method,
        baseline=str(base_label),
        steps=steps,
        n_jets=n,
        seconds=time.perf_counter() - t0,
        feature_names=names,
        importance=attr.mean_abs(),
        importance_sigma=imp_sigma,
        mean_attribution=attr.values.mean(axis=0),
        importance_by_class=mean_abs_by_class(attr.values, classes),
        groups=groups,
        observable_correlations=correlations,
        observable_interpretation=obs_text,
        sanity=sanity,
        attacks=attacks,
        class_source="labels" if classes_known else "predictions",
        class_names=class_names,
        images=images,
    )
