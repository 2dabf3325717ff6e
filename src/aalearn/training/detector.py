r"""Adversarial-sample detection: a classifier of clean jets versus successful adversaries.

The mitigation studied with CONSERVAttack ("Shapes are not enough", Bechtle et al.,
arXiv:2603.13970): besides the tagger, train a binary **detector** on clean jets
(label 0) and on adversarial jets that fooled the tagger (label 1), and discard jets the
detector flags. Its threshold is set so that a chosen fraction of clean jets is flagged
(the false-positive rate, default 5 %, measured on clean validation jets). The attack
then only counts where it fools the tagger *and* escapes the detector:

.. math::

    \mathrm{FR} = \frac{\#\{\text{correct on } x \wedge \text{wrong on } x_\text{adv}\}}
        {\#\{\text{correct on } x\}},
    \qquad
    \mathrm{FR}_\text{corr} = \frac{\#\{\text{correct on } x \wedge \text{wrong on } x_\text{adv}
        \wedge \neg\,\text{flagged}(x_\text{adv})\}}{\#\{\text{correct on } x\}}.

A detector learns the attack it was trained on; the **cross-run test** (also from the
CONSERVAttack study) trains it on the adversaries of one attack run and tests it on
another run of the same attack with a different seed and on other attacks
(:func:`cross_run_test`).

Defaults follow the detector of the CONSERVAttack code: an MLP 128-64-32 with ReLU and
batch normalisation (here :class:`~aalearn.models.TopoDNN` with those widths) trained with
class-balanced binary cross-entropy and early stopping, by the one training loop
:func:`aalearn.training.train_classifier`.

References:
    P. Bechtle, L. Flek, P. Jung, A. Karimi, T. Saala et al., "Shapes are not enough:
    CONSERVAttack ...", arXiv:2603.13970.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aalearn.core.config import TrainConfig
from aalearn.core.validation import check_array, check_labels, check_positive, check_probability
from aalearn.data.split import split_indices
from aalearn.models.checkpoint import load_checkpoint, save_checkpoint
from aalearn.models.factory import build_tagger
from aalearn.models.predict import predict_logits
from aalearn.models.topodnn import TopoDNN
from aalearn.training.configs import DETECTOR_CONFIG
from aalearn.training.trainer import TrainingHistory, train_classifier

__all__ = [
    "AdversarialDetector",
    "DetectionResult",
    "Detector",
    "cross_run_test",
    "detection_metrics",
    "fooled_mask",
    "threshold_at_fpr",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_METADATA_KEY = "aalearn_detector"


class Detector(Protocol):
    """What :func:`detection_metrics` needs from a detector."""

    def score(self, x: npt.ArrayLike) -> FloatArray:
        """P(adversarial) per row, shape ``(N,)``."""

    def predict(self, x: npt.ArrayLike, threshold: float | None = None) -> BoolArray:
        """Whether each row is flagged as adversarial, shape ``(N,)``."""


def _check_int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_open_fraction(value: float, *, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not 0.0 < float(value) < 1.0
    ):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)


def threshold_at_fpr(clean_scores: npt.ArrayLike, target_fpr: float) -> float:
    """Smallest observed score ``t`` with at most ``target_fpr`` of clean scores strictly above it.

    Flagging ``score > t`` then has a false-positive rate ≤ ``target_fpr`` on these jets
    (the largest such rate the sample allows when there are no ties).

    Example:
        >>> threshold_at_fpr([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.2)
        0.8
    """
    s = np.sort(check_array(clean_scores, name="clean_scores", ndim=1, dtype=np.float64))[::-1]
    if s.size == 0:
        raise ValueError("no clean scores to set the threshold from")
    target = _check_open_fraction(target_fpr, name="target_fpr")
    k = int(np.floor(target * s.size + 1e-9))
    return float(s[min(k, s.size - 1)])


class AdversarialDetector:
    r"""Binary classifier of clean jets (0) versus successful adversarial jets (1).

    Scikit-learn-like: :meth:`fit`, :meth:`score` (:math:`P(\text{adversarial})`),
    :meth:`predict` (flag where the score exceeds the threshold), :meth:`save` and
    :meth:`load`. The network is a :class:`~aalearn.models.TopoDNN` MLP (default widths
    128-64-32 with batch normalisation, as the detector of the CONSERVAttack study,
    arXiv:2603.13970) on the tagger's input features, optionally with the tagger's logit
    as one more input. It is trained by :func:`aalearn.training.train_classifier` with
    class-balanced BCE (positive weight :math:`n_\text{clean}/n_\text{adv}`), and its
    threshold is chosen on the clean validation jets so that a fraction ``target_fpr`` of
    them is flagged.

    Args:
        tagger: The attacked classifier; needed only with ``include_logit``.
        include_logit: Append the tagger's logit to the detector's inputs.
        hidden: Hidden widths of the detector MLP.
        dropout: Dropout after each hidden block.
        epochs: Maximum training epochs (early stopping on the validation loss).
        batch_size: Mini-batch size.
        lr: Adam learning rate.
        l1: L1 penalty on the weights (the CONSERVAttack detector used 3e-3).
        patience: Early-stopping patience in epochs.
        target_fpr: False-positive rate on clean validation jets that sets the threshold.
        balance: Weight the classes to equal total weight in the loss.
        progress: Show a progress bar while training.

    Attributes:
        threshold_: Decision threshold on :meth:`score` (after :meth:`fit`).
        val_fpr_: False-positive rate of that threshold on the clean validation jets.
        val_detection_rate_: Fraction of validation adversaries flagged.
        history_: The :class:`~aalearn.training.TrainingHistory` of the fit (``None`` after :meth:`load`).
        net_: The fitted network.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> clean = rng.normal(size=(400, 3))
        >>> adv = rng.normal(size=(400, 3)) + [3.0, 0.0, 0.0]
        >>> det = AdversarialDetector(hidden=(8,), epochs=20, batch_size=32).fit(clean, adv, seed=0)
        >>> bool(det.predict(adv).mean() > 0.9), bool(det.predict(clean).mean() < 0.1)
        (True, True)
    """

    def __init__(
        self,
        tagger: nn.Module | None = None,
        *,
        include_logit: bool = False,
        hidden: Sequence[int] = (128, 64, 32),
        dropout: float = 0.0,
        epochs: int = DETECTOR_CONFIG.epochs,
        batch_size: int = DETECTOR_CONFIG.batch_size,
        lr: float = DETECTOR_CONFIG.lr,
        l1: float = DETECTOR_CONFIG.l1,
        patience: int = DETECTOR_CONFIG.patience,
        target_fpr: float = 0.05,
        balance: bool = True,
        progress: bool = DETECTOR_CONFIG.progress,
    ) -> None:
        if tagger is not None and not isinstance(tagger, nn.Module):
            raise TypeError(f"tagger must be a torch.nn.Module or None, got {type(tagger).__name__}")
        if include_logit and tagger is None:
            raise ValueError(
                "include_logit=True needs the tagger: AdversarialDetector(tagger, include_logit=True)"
            )
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or not hidden:
            raise ValueError(f"hidden must be a non-empty sequence of layer widths, got {hidden!r}")
        self.tagger = tagger
        self.include_logit = bool(include_logit)
        self.hidden = tuple(_check_int(h, name="each hidden width", minimum=1) for h in hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.epochs = _check_int(epochs, name="epochs", minimum=1)
        self.batch_size = _check_int(batch_size, name="batch_size", minimum=2)
        self.patience = _check_int(patience, name="patience", minimum=1)
        self.lr = check_positive(lr, name="lr")
        self.l1 = check_positive(l1, name="l1", strict=False)
        self.target_fpr = _check_open_fraction(target_fpr, name="target_fpr")
        self.balance = bool(balance)
        self.progress = bool(progress)
        self.net_: TopoDNN | None = None
        self.n_features_: int | None = None
        self.threshold_: float | None = None
        self.val_fpr_: float | None = None
        self.val_detection_rate_: float | None = None
        self.history_: TrainingHistory | None = None

    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (``AdversarialDetector(**config)`` rebuilds an unfitted one)."""
        return {
            "include_logit": self.include_logit,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "l1": self.l1,
            "patience": self.patience,
            "target_fpr": self.target_fpr,
            "balance": self.balance,
        }

    def train_config(self, seed: int = 0) -> TrainConfig:
        """The :class:`~aalearn.core.config.TrainConfig` of :meth:`fit` with ``seed``.

        Example:
            >>> AdversarialDetector(epochs=7).train_config(seed=2).epochs
            7
        """
        return DETECTOR_CONFIG.replace(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            l1=self.l1,
            patience=self.patience,
            seed=seed,
            progress=self.progress,
        )

    def _inputs(self, x: npt.ArrayLike, *, name: str) -> npt.NDArray[np.float32]:
        arr = check_array(x, name=name, ndim=2, dtype=np.float32)
        if self.n_features_ is not None and arr.shape[1] != self.n_features_:
            raise ValueError(
                f"{name} has {arr.shape[1]} feature columns but the detector was fitted on {self.n_features_}"
            )
        if not self.include_logit:
            return arr
        assert self.tagger is not None  # checked in __init__ and load
        logit = predict_logits(self.tagger, arr)
        return np.concatenate([arr, logit[:, None]], axis=1)

    def fit(
        self, x_clean: npt.ArrayLike, x_adv: npt.ArrayLike, *, seed: int = 0, val_fraction: float = 0.25
    ) -> AdversarialDetector:
        """Train on clean jets (label 0) and successful adversaries (label 1); set the threshold.

        Args:
            x_clean: Clean jets ``(N, F)``.
            x_adv: Adversarial jets that fooled the tagger ``(M, F)`` (pass only the
                successful ones, for example ``result.x_adv[result.success]``).
            seed: Seed of the split, the initialisation and the training order.
            val_fraction: Fraction of each class held out for early stopping and for
                choosing the threshold.

        Returns:
            ``self``.

        Raises:
            ValueError: For mismatched feature counts, too few jets, NaN/inf or a bad
                ``val_fraction``.
        """
        seed = _check_int(seed, name="seed", minimum=0)
        val_fraction = _check_open_fraction(val_fraction, name="val_fraction")
        self.n_features_ = None
        xc = check_array(x_clean, name="x_clean", ndim=2, dtype=np.float32)
        xa = check_array(x_adv, name="x_adv", ndim=2, dtype=np.float32)
        if xc.shape[1] != xa.shape[1]:
            raise ValueError(f"x_clean has {xc.shape[1]} feature columns but x_adv has {xa.shape[1]}")
        for name, arr in (("x_clean", xc), ("x_adv", xa)):
            if arr.shape[0] < 4:
                raise ValueError(
                    f"{name} has {arr.shape[0]} rows; the detector needs at least 4 of each class"
                )
        x = self._inputs(np.concatenate([xc, xa]), name="features")
        y = np.concatenate([np.zeros(len(xc), np.int64), np.ones(len(xa), np.int64)])
        split = split_indices(y, fractions=(1.0 - val_fraction, val_fraction, 0.0), seed=seed)
        tr, va = split["train"], split["val"]
        if not (y[va] == 0).any() or not (y[va] == 1).any():
            raise ValueError("too few jets to hold out clean and adversarial validation jets; give more rows")

        net = build_tagger("topodnn", x.shape[1], seed, fit_x=x[tr], hidden=self.hidden, dropout=self.dropout)
        assert isinstance(net, TopoDNN)
        n_pos = int(y[tr].sum())
        pos_weight = torch.tensor((len(tr) - n_pos) / n_pos if self.balance else 1.0)

        def balanced_bce(model: nn.Module, xb: Tensor, yb: Tensor) -> Tensor:
            logits = model(xb)
            return F.binary_cross_entropy_with_logits(logits, yb, pos_weight=pos_weight.to(logits))

        self.history_ = train_classifier(
            net,
            x[tr],
            y[tr],
            x[va],
            y[va],
            config=self.train_config(seed),
            batch_loss=balanced_bce,
        )
        self.net_ = net.eval()
        self.n_features_ = int(xc.shape[1])
        scores = self._score_inputs(x[va])
        clean_val, adv_val = scores[y[va] == 0], scores[y[va] == 1]
        self.threshold_ = threshold_at_fpr(clean_val, self.target_fpr)
        self.val_fpr_ = float(np.mean(clean_val > self.threshold_))
        self.val_detection_rate_ = float(np.mean(adv_val > self.threshold_))
        return self

    def _score_inputs(self, inputs: npt.NDArray[np.float32]) -> FloatArray:
        assert self.net_ is not None
        logits = predict_logits(self.net_, inputs).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logits))

    def _check_fitted(self) -> None:
        if self.net_ is None or self.threshold_ is None:
            raise ValueError(
                "the detector is not fitted yet; call fit(x_clean, x_adv) or AdversarialDetector.load"
            )

    def score(self, x: npt.ArrayLike) -> FloatArray:
        r""":math:`P(\text{adversarial} \mid x)` per jet, shape ``(N,)`` (float64).

        Raises:
            ValueError: If the detector is not fitted or ``x`` has the wrong shape.
        """
        self._check_fitted()
        return self._score_inputs(self._inputs(x, name="x"))

    def predict(self, x: npt.ArrayLike, threshold: float | None = None) -> BoolArray:
        """Flag jets whose score exceeds ``threshold`` (default: the fitted :attr:`threshold_`)."""
        self._check_fitted()
        t = self.threshold_ if threshold is None else check_probability(threshold, name="threshold")
        assert t is not None  # _check_fitted
        flagged: BoolArray = self.score(x) > t
        return flagged

    def save(self, path: str | Path) -> Path:
        """Write the detector to one safetensors file; settings and threshold go into its JSON header.

        The tagger is not stored: pass it again to :meth:`load` when ``include_logit`` is set.

        Returns:
            The path written.
        """
        self._check_fitted()
        assert self.net_ is not None
        meta = {
            _METADATA_KEY: {
                "config": self.config,
                "n_features": self.n_features_,
                "threshold": self.threshold_,
                "val_fpr": self.val_fpr_,
                "val_detection_rate": self.val_detection_rate_,
                "history": None if self.history_ is None else self.history_.to_dict(),
            }
        }
        return save_checkpoint(self.net_, path, metadata=meta)

    @classmethod
    def load(cls, path: str | Path, tagger: nn.Module | None = None) -> AdversarialDetector:
        """Read a detector written by :meth:`save` (no pickle: safetensors and JSON only).

        Args:
            path: The ``.safetensors`` file.
            tagger: The tagger, required when the detector was fitted with ``include_logit``.

        Raises:
            ValueError: If the file is not a saved detector, or the tagger is missing.
        """
        net, metadata = load_checkpoint(path)
        info = metadata.get(_METADATA_KEY)
        if not isinstance(info, dict) or not isinstance(net, TopoDNN):
            raise ValueError(f"{path} is an aalearn checkpoint but not a saved AdversarialDetector")
        config = dict(info["config"])
        if config.get("include_logit") and tagger is None:
            raise ValueError(f"{path} was fitted with the tagger's logit as input; pass tagger= to load it")
        det = cls(tagger, **config)
        det.net_ = net.eval()
        det.n_features_ = int(info["n_features"])
        det.threshold_ = float(info["threshold"])
        det.val_fpr_ = info.get("val_fpr")
        det.val_detection_rate_ = info.get("val_detection_rate")
        return det


@dataclass
class DetectionResult:
    """Tagger and detector figures on row-paired clean and adversarial jets.

    Attributes:
        n: Number of jets.
        n_correct: Jets the tagger classifies correctly when clean.
        n_fooled: Of those, jets whose adversary the tagger gets wrong.
        n_fooled_undetected: Of those, adversaries the detector does not flag.
        fooling_ratio: ``n_fooled / n_correct``.
        corrected_fooling_ratio: ``n_fooled_undetected / n_correct``.
        detection_rate: Flagged fraction of the successful adversaries (``None`` without any).
        false_positive_rate: Flagged fraction of the clean jets.
        detector_auc: ROC AUC of the detector score, successful adversaries versus clean
            jets (``None`` without successful adversaries).
        threshold: The detector threshold used (``None`` if the detector does not expose one).
    """

    n: int
    n_correct: int
    n_fooled: int
    n_fooled_undetected: int
    fooling_ratio: float
    corrected_fooling_ratio: float
    detection_rate: float | None
    false_positive_rate: float
    detector_auc: float | None
    threshold: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of all fields."""
        return asdict(self)


def _check_paired(
    x_clean: npt.ArrayLike, x_adv: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    xc = check_array(x_clean, name="x_clean", ndim=2, dtype=np.float32)
    xa = check_array(x_adv, name="x_adv", ndim=2, dtype=np.float32)
    if xc.shape != xa.shape:
        raise ValueError(
            f"x_clean {xc.shape} and x_adv {xa.shape} must be row-paired arrays of the same shape "
            "(the adversary of each clean jet in the same row)"
        )
    if xc.shape[0] == 0:
        raise ValueError("x_clean is empty")
    return xc, xa, check_labels(y, name="y", n=xc.shape[0])


def fooled_mask(
    model: nn.Module, x_clean: npt.ArrayLike, x_adv: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[BoolArray, BoolArray]:
    r"""Which jets the tagger gets right when clean, and which of those its adversary fools.

    The decision is label 1 where :math:`P(\text{label}=1) > 0.5` (logit > 0), the rule of
    :func:`aalearn.evaluation.evaluate_scores`.

    Returns:
        ``(correct, fooled)``, boolean arrays of shape ``(N,)``; ``fooled`` implies ``correct``.

    Example:
        >>> lin = nn.Linear(1, 1)
        >>> with torch.no_grad():
        ...     _ = lin.weight.fill_(1.0), lin.bias.fill_(0.0)
        >>> fooled_mask(lin, [[1.0], [-1.0]], [[-1.0], [-1.0]], [1, 1])
        (array([ True, False]), array([ True, False]))
    """
    xc, xa, labels = _check_paired(x_clean, x_adv, y)
    correct = (predict_logits(model, xc) > 0).astype(np.int64) == labels
    fooled = correct & ((predict_logits(model, xa) > 0).astype(np.int64) != labels)
    return correct, fooled


def detection_metrics(
    model: nn.Module,
    detector: Detector,
    x_clean: npt.ArrayLike,
    x_adv: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    threshold: float | None = None,
) -> DetectionResult:
    r"""Fooling ratio with and without the detector, detection and false-positive rates, AUC.

    Args:
        model: The tagger (logits of :math:`P(\text{label}=1)`).
        detector: A fitted :class:`AdversarialDetector` (or anything with ``score`` and
            ``predict(x, threshold)``).
        x_clean: Clean jets ``(N, F)``.
        x_adv: Their adversaries, row-paired ``(N, F)`` (rows the attack left unchanged
            are fine: they are simply not fooled).
        y: True labels ``(N,)``.
        threshold: Detector threshold; default the detector's own.

    Returns:
        The :class:`DetectionResult`.

    Raises:
        ValueError: For arrays that are not row-paired, bad labels or NaN/inf.

    Example:
        >>> class FlagNothing:
        ...     def score(self, x): return np.zeros(len(x))
        ...     def predict(self, x, threshold=None): return np.zeros(len(x), dtype=bool)
        >>> lin = nn.Linear(1, 1)
        >>> with torch.no_grad():
        ...     _ = lin.weight.fill_(1.0), lin.bias.fill_(0.0)
        >>> res = detection_metrics(lin, FlagNothing(), [[1.0], [2.0]], [[-1.0], [2.0]], [1, 1])
        >>> res.fooling_ratio, res.corrected_fooling_ratio
        (0.5, 0.5)
    """
    from sklearn.metrics import roc_auc_score

    xc, xa, labels = _check_paired(x_clean, x_adv, y)
    correct, fooled = fooled_mask(model, xc, xa, labels)
    flagged_adv = np.asarray(detector.predict(xa, threshold), dtype=bool)
    flagged_clean = np.asarray(detector.predict(xc, threshold), dtype=bool)
    if flagged_adv.shape != (len(xa),) or flagged_clean.shape != (len(xc),):
        raise ValueError("the detector's predict must return one boolean per row")
    n_correct, n_fooled = int(correct.sum()), int(fooled.sum())
    undetected = int((fooled & ~flagged_adv).sum())
    auc: float | None = None
    if n_fooled:
        s_clean = np.asarray(detector.score(xc), dtype=np.float64)
        s_adv = np.asarray(detector.score(xa[fooled]), dtype=np.float64)
        auc = float(roc_auc_score(np.r_[np.zeros(len(s_clean)), np.ones(len(s_adv))], np.r_[s_clean, s_adv]))
    used = threshold if threshold is not None else getattr(detector, "threshold_", None)
    return DetectionResult(
        n=len(xc),
        n_correct=n_correct,
        n_fooled=n_fooled,
        n_fooled_undetected=undetected,
        fooling_ratio=n_fooled / n_correct if n_correct else 0.0,
        corrected_fooling_ratio=undetected / n_correct if n_correct else 0.0,
        detection_rate=float(flagged_adv[fooled].mean()) if n_fooled else None,
        false_positive_rate=float(flagged_clean.mean()),
        detector_auc=auc,
        threshold=None if used is None else float(used),
    )


def cross_run_test(
    model: nn.Module,
    detector_factory: Callable[[], AdversarialDetector],
    runs: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]],
    *,
    train_on: str,
    holdout: float = 0.5,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train a detector on one attack run's adversaries and test it on every run (cross-run test).

    The rows of ``runs[train_on]`` are split at random: a fraction ``1 − holdout`` trains
    the detector (its clean jets against its successful adversaries), the rest is held
    out. A run whose clean jets are the same as the training run's (the usual case:
    several attacks on one test set) is evaluated on the held-out rows only, so that no
    jet the detector saw in training is scored; other runs are evaluated on all rows.

    Args:
        model: The attacked tagger.
        detector_factory: Zero-argument callable returning an unfitted detector, for
            example ``lambda: AdversarialDetector(hidden=(64, 32))``.
        runs: Run name → ``(x_clean, x_adv, y)``, row-paired arrays, for example other
            seeds of the same attack and other attacks.
        train_on: Name of the run whose adversaries train the detector.
        holdout: Fraction of the training run's rows held out for testing.
        seed: Seed of the row split and of the detector's fit.

    Returns:
        One row per run, in the order of ``runs``: ``run``, ``trained_on`` (bool),
        ``rows`` (``"held-out"`` or ``"all"``) and the fields of :class:`DetectionResult`.

    Raises:
        ValueError: For an unknown ``train_on``, badly shaped runs, or a training part
            without successful adversaries.

    Example:
        >>> lin = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[0.0, 1.0]])), lin.bias.fill_(0.0)
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(400, 2)); y = (x[:, 1] > 0).astype(int)
        >>> adv = x * [1.0, -1.0] + [6.0, 0.0]   # flips every decision, shifts feature 0
        >>> rows = cross_run_test(lin, lambda: AdversarialDetector(hidden=(8,), epochs=20, batch_size=32),
        ...                       {"a": (x, adv, y)}, train_on="a")
        >>> rows[0]["corrected_fooling_ratio"] < 0.05
        True
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty mapping: run name -> (x_clean, x_adv, y)")
    if train_on not in runs:
        raise ValueError(f"train_on = {train_on!r} is not one of the runs: {', '.join(map(str, runs))}")
    holdout = _check_open_fraction(holdout, name="holdout")
    seed = _check_int(seed, name="seed", minimum=0)
    checked: dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]] = {}
    for name, run in runs.items():
        if not isinstance(run, tuple | list) or len(run) != 3:
            raise ValueError(f"run {name!r} must be a tuple (x_clean, x_adv, y)")
        try:
            checked[name] = _check_paired(*run)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"run {name!r}: {exc}") from None

    xc, xa, y = checked[train_on]
    perm = np.random.default_rng(seed).permutation(len(xc))
    n_test = round(holdout * len(xc))
    if n_test < 1 or n_test >= len(xc):
        raise ValueError(f"run {train_on!r} has too few rows ({len(xc)}) to hold out a fraction {holdout}")
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    _, fooled = fooled_mask(model, xc[train_rows], xa[train_rows], y[train_rows])
    if fooled.sum() < 4:
        raise ValueError(
            f"run {train_on!r} has {int(fooled.sum())} successful adversaries in its training part; "
            "the detector needs at least 4 (use a stronger attack or more jets)"
        )
    detector = detector_factory()
    if not hasattr(detector, "fit"):
        raise TypeError(f"detector_factory must return an unfitted detector with fit(), got {detector!r}")
    detector.fit(xc[train_rows], xa[train_rows][fooled], seed=seed)

    table: list[dict[str, Any]] = []
    for name, (rc, ra, ry) in checked.items():
        same_jets = rc.shape == xc.shape and np.array_equal(rc, xc)
        rows = test_rows if same_jets else np.arange(len(rc))
        result = detection_metrics(model, detector, rc[rows], ra[rows], ry[rows])
        table.append(
            {"run": name, "trained_on": name == train_on, "rows": "held-out" if same_jets else "all"}
            | result.to_dict()
        )
    return table
