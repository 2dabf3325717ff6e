r"""Per-feature attributions of a binary tagger's logit, computed with captum.

Four methods, all explaining the **logit** :math:`z(x)` of :math:`P(\text{label}=1)`
(probabilities saturate, logits do not):

* ``"integrated-gradients"`` -- Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep
  Networks", arXiv:1703.01365:
  :math:`A_i = (x_i - b_i)\int_0^1 \partial_i z(b + \alpha (x - b))\,d\alpha`, evaluated
  with the midpoint rule on ``steps`` points. It satisfies *completeness*,
  :math:`\sum_i A_i = z(x) - z(b)`, up to the quadrature error. The midpoint rule is
  used rather than Gauss-Legendre because ReLU networks have kinks along the path, where
  Gauss-Legendre loses its high order (measured on the challenge model: midpoint 2.6 %
  completeness error at 64 steps against 3.4 % for Gauss-Legendre; the error falls as
  1/steps, so the default of 256 steps gives about 0.7 %).
* ``"gradient-shap"`` -- Lundberg and Lee, "A Unified Approach to Interpreting Model
  Predictions", arXiv:1705.07874: expected gradients over baselines drawn from a
  baseline distribution and random points on the path (captum's ``GradientShap``).
* ``"deeplift"`` -- Shrikumar, Greenside, Kundaje, "Learning Important Features Through
  Propagating Activation Differences", arXiv:1704.02685 (Rescale rule, captum's
  ``DeepLift``; needs the non-linearities as modules, as in aalearn's models).
* ``"saliency"`` -- Simonyan, Vedaldi, Zisserman, "Deep Inside Convolutional Networks",
  arXiv:1312.6034: the gradient :math:`\partial_i z(x)`. aalearn keeps its sign (captum's
  ``abs=False``); rankings use :math:`|A_i|` anyway.

captum is the maintained PyTorch attribution library (``pip install "aalearn[explain]"``);
it is imported only when attributions are computed.

Importance in σ units: :func:`sigma_importance` gives :math:`|\partial_i z(x)|\,\sigma_i(x)`,
the change of the logit when feature :math:`i` moves by one standard deviation of the
detector resolution (:meth:`aalearn.physics.features.FeatureSet.sigma`), whatever the
attribution method: which features matter at the scale the detector cannot resolve.

Example:
    >>> import numpy as np, torch
    >>> model = torch.nn.Linear(3, 1)
    >>> x = np.ones((4, 3))
    >>> attr = attribute(model, x, method="integrated-gradients", steps=8)
    >>> attr.values.shape
    (4, 3)
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from aalearn.core.optional import require
from aalearn.core.seeding import seeded
from aalearn.core.validation import check_array
from aalearn.models.predict import model_n_features
from aalearn.physics.features import FeatureSet

__all__ = [
    "DEFAULT_STEPS",
    "METHODS",
    "Attributions",
    "LogitModel",
    "attribute",
    "feature_groups",
    "input_gradients",
    "logits_of",
    "make_baseline",
    "mean_abs_by_class",
    "randomized_copy",
    "sigma_importance",
]

FloatArray = npt.NDArray[np.float64]

#: Attribution methods, in the order the CLI lists them.
METHODS: tuple[str, ...] = ("integrated-gradients", "gradient-shap", "deeplift", "saliency")
#: Default number of path points of Integrated Gradients (completeness error ≈ 0.7 % on TopoDNN).
DEFAULT_STEPS: int = 256
#: Named baselines.
BASELINES: tuple[str, ...] = ("zeros", "mean")
#: Rows (× path points) per model call inside captum.
_BATCH_ROWS = 65536
_FEATURE_NAME = re.compile(r"^Const(PT|Eta|Phi)_(\d+)$")


class LogitModel(nn.Module):
    """Wrap a binary classifier so that it returns the logit with shape ``(N,)``.

    ``(N,)`` and ``(N, 1)`` outputs are read as the logit of :math:`P(\\text{label}=1)`;
    ``(N, 2)`` outputs as two-class logits, explained through :math:`z_1 - z_0`.

    Args:
        model: The classifier (put in eval mode, weights frozen on a private copy of the flags).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        """The logit, shape ``(N,)``."""
        out = self.model(x)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        elif out.ndim == 2 and out.shape[1] == 2:
            out = out[:, 1] - out[:, 0]
        elif out.ndim != 1:
            raise ValueError(
                "explanations need a binary classifier (output (N,), (N, 1) or (N, 2)), "
                f"got {tuple(out.shape)}"
            )
        return out


@dataclass
class Attributions:
    """Attributions of every jet and the logits they explain.

    Attributes:
        values: ``(N, F)`` attributions (logit units).
        logits: ``(N,)`` logits :math:`z(x)`.
        baseline_logits: ``(N,)`` logits :math:`z(b)` of each row's baseline (``NaN`` for
            saliency and gradient-SHAP, whose baseline is not one point).
        method: The method name.
        steps: Path points (Integrated Gradients) or samples (gradient-SHAP).
    """

    values: FloatArray
    logits: FloatArray
    baseline_logits: FloatArray
    method: str
    steps: int

    def mean_abs(self) -> FloatArray:
        """Mean :math:`|A_i|` over jets, shape ``(F,)``."""
        out: FloatArray = (
            np.abs(self.values).mean(axis=0) if len(self.values) else np.zeros(self.values.shape[1])
        )
        return out


def check_method(method: str) -> str:
    """Return ``method`` or raise a one-line ``ValueError`` naming the known methods."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def check_model_input(model: nn.Module, n_features: int) -> None:
    """``ValueError`` when the model's input width differs from the data's."""
    expected = model_n_features(model)
    if expected is not None and expected != n_features:
        raise ValueError(
            f"the model expects {expected} input features but the data have {n_features} columns"
        )


def make_baseline(x: npt.ArrayLike, baseline: str | npt.ArrayLike = "zeros") -> FloatArray:
    """The reference point(s) of the path methods.

    Args:
        x: Inputs ``(N, F)``.
        baseline: ``"zeros"`` (the origin: no constituents), ``"mean"`` (the mean jet of
            ``x``), an array of shape ``(F,)`` (one reference jet) or ``(M, F)`` (a
            baseline distribution; path methods other than gradient-SHAP use its mean).

    Returns:
        float64 baseline rows ``(M, F)`` (``M = 1`` for a single reference jet).

    Raises:
        ValueError: For an unknown name or a wrong width.

    Example:
        >>> make_baseline(np.ones((2, 3)), "mean")
        array([[1., 1., 1.]])
    """
    arr = check_array(x, name="x", ndim=2, dtype=np.float64)
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros((1, arr.shape[1]))
        if baseline == "mean":
            return arr.mean(axis=0, keepdims=True)
        raise ValueError(f"unknown baseline {baseline!r}; use 'zeros', 'mean' or a data file")
    b = np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    if b.ndim != 2 or b.shape[1] != arr.shape[1] or b.shape[0] < 1:
        raise ValueError(f"baseline must have {arr.shape[1]} columns, got shape {np.shape(baseline)}")
    if not np.all(np.isfinite(b)):
        raise ValueError("baseline holds NaN or inf")
    return b


def _summed_gradients(
    forward_fn: Any, inputs: Any, target_ind: Any = None, additional_forward_args: Any = None
) -> tuple[Tensor, ...]:
    """Drop-in for captum's ``compute_gradients`` that differentiates the *sum* of the outputs.

    captum unbinds the ``(N·steps,)`` outputs into scalars before ``autograd.grad``, whose
    per-scalar seeding cost 16 of 59 s on the 5000 challenge jets; the gradient of the sum
    is the same because every row's logit depends on its own input only (models in eval
    mode, batch normalisation with running statistics).
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    extra = additional_forward_args if isinstance(additional_forward_args, tuple) else ()
    if target_ind is not None:
        raise ValueError("explanations of binary classifiers take no target")
    with torch.autograd.set_grad_enabled(True):
        out = forward_fn(*inputs, *extra)
        return tuple(torch.autograd.grad(out.sum(), inputs))


def _prepare(model: nn.Module) -> LogitModel:
    wrapped = LogitModel(copy.deepcopy(model).cpu()).eval()
    for p in wrapped.parameters():
        p.requires_grad_(False)
    return wrapped


def _dtype_of(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        return p.dtype
    return torch.float32


@torch.no_grad()
def _logits(model: LogitModel, x: FloatArray, dtype: torch.dtype, batch: int = _BATCH_ROWS) -> FloatArray:
    outs = [model(torch.as_tensor(x[i : i + batch], dtype=dtype)).double() for i in range(0, len(x), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros(0)


def attribute(
    model: nn.Module,
    x: npt.ArrayLike,
    *,
    method: str = "integrated-gradients",
    baseline: str | npt.ArrayLike = "zeros",
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 1024,
) -> Attributions:
    """Attributions of the logit of ``model`` to each input feature.

    Args:
        model: Binary classifier returning logits (see :class:`LogitModel`).
        x: Inputs ``(N, F)``.
        method: One of :data:`METHODS`.
        baseline: See :func:`make_baseline`; ignored by saliency.
        steps: Integrated Gradients: path points (midpoint rule); gradient-SHAP: samples
            per jet (capped at 64).
        seed: Seed of gradient-SHAP's sampling.
        batch_size: Jets per captum call.

    Returns:
        The attributions.

    Raises:
        ValueError: Unknown method or baseline, wrong input width, non-finite inputs.

    Example:
        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[2.0, -1.0]]))
        >>> attribute(lin, np.array([[1.0, 3.0]]), steps=4).values.round(6)
        array([[ 2., -3.]])
    """
    check_method(method)
    arr = check_array(x, name="x", ndim=2, dtype=np.float64)
    check_model_input(model, arr.shape[1])
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}")
    base = make_baseline(arr, baseline)
    captum_attr = require("captum.attr", purpose="attributions (aalearn explain)")
    wrapped = _prepare(model)
    dtype = _dtype_of(wrapped)
    n = arr.shape[0]
    logits = _logits(wrapped, arr, dtype)
    point = base.mean(axis=0, keepdims=True)
    if method in ("integrated-gradients", "deeplift"):
        baseline_logits = np.full(n, _logits(wrapped, point, dtype)[0]) if n else np.zeros(0)
    else:
        baseline_logits = np.full(n, np.nan)
    values = np.zeros_like(arr)
    n_samples = min(steps, 64)
    if method == "integrated-gradients":
        explainer: Any = captum_attr.IntegratedGradients(wrapped)
        explainer.gradient_func = _summed_gradients
        rows = max(1, min(batch_size, _BATCH_ROWS // steps))
    elif method == "gradient-shap":
        explainer = captum_attr.GradientShap(wrapped)
        rows = max(1, min(batch_size, _BATCH_ROWS // n_samples))
    elif method == "deeplift":
        explainer = captum_attr.DeepLift(wrapped)
        rows = batch_size
    else:
        explainer = captum_attr.Saliency(wrapped)
        explainer.gradient_func = _summed_gradients
        rows = batch_size
    base_t = torch.as_tensor(base if method == "gradient-shap" else point, dtype=dtype)
    with seeded(seed), warnings.catch_warnings():
        # DeepLift announces the hooks it sets on the non-linearities on every call
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        for i in range(0, n, rows):
            xi = torch.as_tensor(arr[i : i + rows], dtype=dtype).requires_grad_(True)
            if method == "integrated-gradients":
                a = explainer.attribute(
                    xi,
                    baselines=base_t.expand_as(xi),
                    n_steps=steps,
                    method="riemann_middle",
                )
            elif method == "gradient-shap":
                a = explainer.attribute(xi, baselines=base_t, n_samples=n_samples, stdevs=0.0)
            elif method == "deeplift":
                a = explainer.attribute(xi, baselines=base_t.expand_as(xi))
            else:
                a = explainer.attribute(xi, abs=False)
            values[i : i + rows] = a.detach().double().numpy()
    return Attributions(values, logits, baseline_logits, method, steps)


def logits_of(model: nn.Module, x: npt.ArrayLike) -> FloatArray:
    """Logits :math:`z(x)` of the model (see :class:`LogitModel`), float64 ``(N,)``.

    Example:
        >>> logits_of(torch.nn.Linear(2, 1), np.zeros((3, 2))).shape
        (3,)
    """
    arr = check_array(x, name="x", ndim=2, dtype=np.float64)
    check_model_input(model, arr.shape[1])
    wrapped = _prepare(model)
    return _logits(wrapped, arr, _dtype_of(wrapped))


def input_gradients(model: nn.Module, x: npt.ArrayLike, *, batch_size: int = 8192) -> FloatArray:
    """Gradients :math:`\\partial_i z(x)` of the logit, shape ``(N, F)``.

    Example:
        >>> input_gradients(torch.nn.Linear(2, 1), np.zeros((3, 2))).shape
        (3, 2)
    """
    arr = check_array(x, name="x", ndim=2, dtype=np.float64)
    wrapped = _prepare(model)
    dtype = _dtype_of(wrapped)
    out = np.zeros_like(arr)
    for i in range(0, len(arr), batch_size):
        xi = torch.as_tensor(arr[i : i + batch_size], dtype=dtype).requires_grad_(True)
        (g,) = torch.autograd.grad(wrapped(xi).sum(), xi)
        out[i : i + batch_size] = g.double().numpy()
    return out


def sigma_importance(model: nn.Module, x: npt.ArrayLike, sigma: npt.ArrayLike) -> FloatArray:
    """Per-jet importance in σ units, :math:`|\\partial_i z(x)|\\,\\sigma_i(x)`, shape ``(N, F)``.

    Args:
        model: Binary classifier returning logits.
        x: Inputs ``(N, F)``.
        sigma: Per-entry resolution σ, broadcastable to ``(N, F)``.

    Returns:
        The logit change per 1σ move of each feature (first order).

    Example:
        >>> lin = torch.nn.Linear(2, 1)
        >>> sigma_importance(lin, np.zeros((1, 2)), [1.0, 0.0]).shape
        (1, 2)
    """
    g = input_gradients(model, x)
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), g.shape)
    out: FloatArray = np.abs(g) * s
    return out


def mean_abs_by_class(values: npt.ArrayLike, classes: npt.ArrayLike) -> dict[str, FloatArray]:
    """Mean :math:`|A_i|` per class: ``{"0": (F,), "1": (F,)}`` for the classes present.

    Example:
        >>> mean_abs_by_class([[1.0, -2.0], [3.0, 0.0]], [0, 1])["1"]
        array([3., 0.])
    """
    v = np.abs(np.asarray(values, dtype=np.float64))
    c = np.asarray(classes)
    return {str(int(k)): v[c == k].mean(axis=0) for k in np.unique(c)}


def feature_groups(feature_names: Sequence[str], features: FeatureSet | None = None) -> list[tuple[str, int]]:
    """``(kind, constituent rank)`` of every column (``("other", -1)`` when it cannot be told).

    Uses the :class:`FeatureSet` when given, else the challenge naming
    ``ConstPT_i / ConstEta_i / ConstPhi_i``.

    Example:
        >>> feature_groups(["ConstPT_0", "ConstPhi_1", "mass"])
        [('pt', 0), ('phi', 1), ('other', -1)]
    """
    if features is not None and len(features) == len(feature_names):
        return [(s.kind, s.constituent) for s in features]
    out: list[tuple[str, int]] = []
    for name in feature_names:
        m = _FEATURE_NAME.match(name)
        out.append((m.group(1).lower(), int(m.group(2))) if m else ("other", -1))
    return out


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (the Adebayo et al. randomisation).

    Every submodule with ``reset_parameters`` (linear, convolution, normalisation layers)
    draws fresh weights, and batch-normalisation running statistics are reset, as in
    the "full randomisation" of Adebayo et al., "Sanity Checks for Saliency Maps",
    arXiv:1810.03292.

    Example:
        >>> lin = torch.nn.Linear(3, 1)
        >>> bool(torch.equal(randomized_copy(lin).weight, lin.weight))
        False
    """
    clone = copy.deepcopy(model)
    with seeded(seed):
        for module in clone.modules():
            reset_stats = getattr(module, "reset_running_stats", None)
            if callable(reset_stats):
                reset_stats()
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return clone.eval()
