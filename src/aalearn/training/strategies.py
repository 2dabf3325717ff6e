r"""Robust-training strategies: adversarial training and RDSA augmentation.

Both are :class:`~aalearn.training.strategy.Strategy` subclasses for the one training
loop :func:`aalearn.training.train_classifier`, and both minimise a mixture of the clean
and the perturbed binary cross-entropy,

.. math::

    \ell_B = (1 - w)\,\mathrm{BCE}\bigl(f(x_B), y_B\bigr) + w\,\mathrm{BCE}\bigl(f(\tilde x_B), y_B\bigr),

with the mixing weight :math:`w` (``mix``) in [0, 1] and the perturbed jets
:math:`\tilde x` keeping their clean labels. The clean and the perturbed half go through
the model in one forward pass (batch normalisation sees both). With sample weights
(``train_classifier(..., sample_weight=...)``, e.g. spectrum weights) both BCE terms are
weighted means and a perturbed jet carries its clean jet's weight; the attacks and RDSA's
marginals do not use the weights.

* :class:`AdversarialTraining` (``"adversarial"``): :math:`\tilde x` is a gradient
  attack of :mod:`aalearn.attacks` (PGD by default) run against the current model on
  every batch, with the budget in units of each feature's experimental resolution σ and
  the physics constraints of the attack framework (Madry et al., arXiv:1706.06083;
  Goodfellow et al., arXiv:1412.6572 for the clean/adversarial mixture; for jet taggers
  Stein et al., arXiv:2203.13890).
* :class:`RDSAAugmentation` (``"rdsa"``): :math:`\tilde x` re-draws random features of
  each jet from the training set's per-feature marginals, the proposal of the Random
  Distribution Shuffle Attack (arXiv:2501.05588). It keeps every marginal and breaks the
  correlations, so the model learns not to rely on correlations an RDSA adversary
  destroys. Plain resampling (``only_successful=False``) is the RDSA-derived
  augmentation of the challenge's winning solution (arXiv:2510.16443);
  ``only_successful=True`` keeps, as RDSA does, only candidates that fool the current
  model.

Example:
    >>> import numpy as np
    >>> from aalearn.models import TopoDNN
    >>> from aalearn.training import train_classifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> X = rng.normal(size=(200, 4)) + y[:, None]
    >>> hist = train_classifier(TopoDNN(4, (8,)), X[:150], y[:150], X[150:], y[150:], epochs=2,
    ...                         strategy="adversarial", strategy_options={"sigma": 0.5, "steps": 3},
    ...                         progress=False)
    >>> sorted(hist.extra)
    ['adv_accuracy', 'adv_loss', 'clean_loss']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aalearn.attacks import ATTACKS, AttackSetup, GradientAttack, ModelAdapter, get_attack
from aalearn.attacks.base import resolve_constraints, resolve_features, resolve_sigma
from aalearn.attacks.rdsa import Marginals, rdsa_search
from aalearn.constraints import ConstraintSet
from aalearn.training.strategy import (
    Batch,
    Strategy,
    TrainingData,
    logits_of,
    register_strategy,
    weighted_bce,
)

__all__ = ["AdversarialTraining", "RDSAAugmentation", "gradient_attack_names"]

ConstraintSpec = ConstraintSet | Sequence[str] | str | None


# --------------------------------------------------------------------------- shared helpers
def _check_mix(mix: Any) -> float:
    if isinstance(mix, bool) or not isinstance(mix, numbers.Real) or not 0.0 <= float(mix) <= 1.0:
        raise ValueError(
            f"mix (the weight of the adversarial loss) must lie in [0, 1], got {mix!r}; "
            "0 is clean training, 1 adversarial samples only"
        )
    return float(mix)


def _check_int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _constraint_config(constraints: ConstraintSpec) -> Any:
    if constraints is None:
        return "default"
    if isinstance(constraints, ConstraintSet):
        return list(constraints.names)
    if isinstance(constraints, str):
        return constraints
    if isinstance(constraints, Sequence):
        return [str(c) for c in constraints]
    raise TypeError(
        "constraints must be a ConstraintSet, constraint names, 'none' or None, "
        f"got {type(constraints).__name__}"
    )


def _resolve_features(features: Any, sigma: Any, n_features: int, *, who: str) -> Any:
    """The FeatureSet to use (see :func:`aalearn.attacks.base.resolve_features`); adversarial needs units."""
    resolved = resolve_features(features, sigma, n_features, data="the training data")
    if resolved is None and sigma is None and who == "adversarial":
        raise ValueError(
            f"adversarial training on {n_features}-feature inputs needs the budget's units: pass "
            "strategy_options={'sigma': ...} (a number or one σ per feature) or features=FeatureSet(...)"
        )
    return resolved


class _SigmaOf:
    """``features.sigma(x)`` with the per-column lookups done once.

    :meth:`aalearn.physics.FeatureSet.sigma` rebuilds its per-column tables (pT column and
    pT unit of every feature, O(F²)) on every call: about 35 ms for the 87 challenge
    features, several times a training step. The same formula with the tables built once,
    from the feature set's public description; :meth:`check` compares it with
    ``features.sigma`` so the two cannot drift apart.
    """

    def __init__(self, features: Any) -> None:
        self.features = features
        self.pt_col = features.pt_column_of()
        self.scales = np.array([features[int(c)].scale_gev for c in self.pt_col], dtype=np.float64)
        self.is_pt = features.kind_mask("pt")

    def __call__(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        pt_gev = x[:, self.pt_col] * self.scales
        res = self.features.resolution
        out: npt.NDArray[np.float64] = np.where(
            self.is_pt, res.sigma_pt(pt_gev) / self.scales, res.sigma_angle(pt_gev)
        )
        return out

    def check(self, x: npt.NDArray[np.float64]) -> bool:
        """Whether this agrees with ``features.sigma`` on ``x``."""
        return bool(np.allclose(self(x), self.features.sigma(x), rtol=1e-12, atol=0.0))


class _MixedLossMetrics:
    """Per-epoch sums of the clean and perturbed BCE and the perturbed accuracy (on the device)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, value: Tensor, count: int) -> None:
        v = value.detach().to(torch.float64) * count
        self.sums[key] = self.sums[key] + v if key in self.sums else v
        self.counts[key] = self.counts.get(key, 0) + count

    def means(self) -> dict[str, float]:
        return {k: float(self.sums[k]) / self.counts[k] for k in self.sums if self.counts[k] > 0}


def _bce(logits: Tensor, y: Tensor, weight: Tensor | None) -> Tensor:
    """Mean BCE of logits, or the weighted mean with per-row sample weights."""
    if weight is None:
        return F.binary_cross_entropy_with_logits(logits, y)
    return weighted_bce(logits, y, weight)


def _clean_loss(model: nn.Module, batch: Batch, metrics: _MixedLossMetrics) -> Tensor:
    """The (weighted) clean BCE of a warm-up batch, recorded as ``clean_loss``."""
    loss = _bce(logits_of(model, batch.x), batch.y, batch.weight)
    metrics.add("clean_loss", loss, batch.x.shape[0])
    return loss


def _mixed_loss(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    mix: float,
    metrics: _MixedLossMetrics,
    weight: Tensor | None = None,
) -> Tensor:
    """``(1 - mix) BCE(clean) + mix BCE(perturbed)``, one forward pass for both halves.

    With sample weights both halves are weighted means, a perturbed jet carrying its clean
    jet's weight; the recorded ``adv_accuracy`` is then the weighted accuracy.
    """
    b = x.shape[0]
    if mix >= 1.0:
        logits_adv = logits_of(model, x_adv)
        loss_adv = _bce(logits_adv, y, weight)
        loss = loss_adv
    else:
        logits = logits_of(model, torch.cat([x, x_adv]))
        loss_clean = _bce(logits[:b], y, weight)
        logits_adv = logits[b:]
        loss_adv = _bce(logits_adv, y, weight)
        loss = (1.0 - mix) * loss_clean + mix * loss_adv
        metrics.add("clean_loss", loss_clean, b)
    metrics.add("adv_loss", loss_adv, b)
    hit = ((logits_adv.detach() >= 0).to(y.dtype) == y).to(torch.float64)
    if weight is None:
        acc = hit.mean()
    else:
        w = weight.detach().to(torch.float64)
        acc = (w * hit).sum() / w.sum().clamp_min(torch.finfo(torch.float64).tiny)
    metrics.add("adv_accuracy", acc, b)
    return loss


def gradient_attack_names() -> list[str]:
    """Names of the registered attacks that are gradient attacks (usable for adversarial training).

    Example:
        >>> "pgd" in gradient_attack_names() and "rdsa" not in gradient_attack_names()
        True
    """

    out = []
    for name, info in ATTACKS.items():
        try:
            atk = info.factory()
        except Exception:  # an attack that cannot be built with defaults is not offered
            continue
        if isinstance(atk, GradientAttack):
            out.append(name)
    return out


# --------------------------------------------------------------------------- adversarial training
@register_strategy
class AdversarialTraining(Strategy):
    r"""Adversarial training with any gradient attack of the attack framework.

    On every batch the attack runs against the current model (eval mode, weights frozen,
    then back to the caller's modes: :meth:`aalearn.attacks.ModelAdapter.evaluating`),
    inside the σ-unit budget and with the enabled physics constraints, exactly as
    :meth:`aalearn.attacks.Attack.run` would attack the same jets: the adversaries come
    from the attack's own per-batch search (:class:`~aalearn.attacks.GradientAttack`'s
    initialiser, objective, step, projection, constraint repair and best-feasible
    selection). Only the framework's per-call preparation and result metrics are left
    out (see :meth:`adversaries`). Every row is attacked with its label as the target,
    also rows the model already gets wrong. The first ``start_epoch`` epochs are clean
    warm-up epochs. Per epoch the history gets ``clean_loss``, ``adv_loss`` and
    ``adv_accuracy`` (on the training batches' adversaries) and, with ``val_rows``,
    ``val_adv_loss`` and ``val_adv_accuracy`` (attack on the first ``val_rows``
    validation jets, usable as ``monitor``).

    Reference: A. Madry et al., "Towards Deep Learning Models Resistant to Adversarial
    Attacks", arXiv:1706.06083; I. Goodfellow, J. Shlens, C. Szegedy, arXiv:1412.6572.

    Args:
        attack: Registered gradient attack (:func:`gradient_attack_names`: ``"pgd"``,
            ``"fgsm"``, ``"pgd-l2"``, ``"pgd-chi2"``, ``"mifgsm"``, ...).
        eps: Budget in σ units (default 1.0) for attacks with an ``eps`` strength;
            ``None`` for the others (``sparse``, ``minifool``).
        steps: Attack iterations; ``None`` gives 7 (Madry et al.'s training setting) for
            multi-step attacks and the attack's own value for FGSM.
        mix: Weight :math:`w` of the adversarial loss, in [0, 1].
        features: Feature specification defining σ and the constraints; default the
            87-column challenge layout when the data has 87 columns and no ``sigma`` is
            given.
        sigma: Explicit σ (a number or one per feature), for generic inputs; overrides
            the feature specification's σ.
        constraints: A :class:`~aalearn.constraints.ConstraintSet`, constraint names,
            ``"none"``, or ``None`` for the attack framework's default physics
            constraints (none for generic inputs without ``features``).
        start_epoch: Number of clean warm-up epochs before adversarial training.
        val_rows: Validation jets attacked after every epoch for ``val_adv_*`` metrics
            (0 = off).
        attack_options: Further keyword settings of the attack's factory (``restarts``,
            ``alpha``, ``norm``...).

    Raises:
        ValueError: For an unknown or non-gradient attack (the message lists the usable
            ones), ``mix`` outside [0, 1], a negative or non-finite ``eps``, bad
            ``steps``/``start_epoch``/``val_rows``, or attack settings it rejects.

    Example:
        >>> AdversarialTraining(eps=0.5, steps=3).config()["attack_params"]["eps"]
        0.5
    """

    name: ClassVar[str] = "adversarial"
    supports_sample_weight: ClassVar[bool] = True

    def __init__(
        self,
        attack: str = "pgd",
        eps: float | None = 1.0,
        steps: int | None = None,
        mix: float = 0.5,
        features: Any = None,
        sigma: float | npt.ArrayLike | None = None,
        constraints: ConstraintSpec = None,
        start_epoch: int = 0,
        val_rows: int = 0,
        attack_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.mix = _check_mix(mix)
        if eps is not None and (
            isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0
        ):
            raise ValueError(f"eps (the budget in σ units) must be a finite number ≥ 0, got {eps!r}")
        if steps is not None:
            steps = _check_int(steps, name="steps", minimum=1)
        self.start_epoch_ = _check_int(start_epoch, name="start_epoch", minimum=0)
        self.val_rows = _check_int(val_rows, name="val_rows", minimum=0)
        if not isinstance(attack, str) or attack not in ATTACKS:
            raise ValueError(
                f"unknown attack {attack!r} for adversarial training; gradient attacks: "
                f"{', '.join(gradient_attack_names())}"
            )
        info = ATTACKS[attack]
        if not isinstance(info.factory(), GradientAttack):
            raise ValueError(
                f"attack {attack!r} is not a gradient attack and cannot generate adversaries per batch; "
                f"gradient attacks: {', '.join(gradient_attack_names())} "
                "(RDSA augmentation is the 'rdsa' strategy)"
            )
        kwargs: dict[str, Any] = dict(attack_options or {})
        if info.strength == "eps":
            kwargs["eps"] = 1.0 if eps is None else float(eps)
        elif eps is not None and eps != 1.0:
            raise ValueError(f"attack {attack!r} has no eps budget; pass eps=None")
        if attack != "fgsm":
            kwargs["steps"] = 7 if steps is None else steps
        elif steps is not None and steps != 1:
            raise ValueError("fgsm takes exactly one step; use attack='pgd' for several steps")
        atk = get_attack(attack, **kwargs)
        assert isinstance(atk, GradientAttack)  # the factory built one above
        self.attack: GradientAttack = atk
        self.attack_name = attack
        self.eps = kwargs.get("eps")
        self.steps = atk.steps
        self.features = features
        self.sigma = sigma
        self.constraints = constraints
        _constraint_config(constraints)  # type check now, not at setup
        if sigma is not None:
            s = np.asarray(sigma, dtype=np.float64)
            if s.ndim > 1 or not np.all(np.isfinite(s)) or np.any(s <= 0):
                raise ValueError(
                    "sigma must be a positive number or a 1-D array of positive numbers (one per feature)"
                )
        self._metrics = _MixedLossMetrics()
        self._epoch = 0
        self._ready = False

    # ------------------------------------------------------------------ hooks
    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Resolve σ, the feature specification and the constraints for the training data."""
        n_features = data.X.shape[1]
        self._features = _resolve_features(self.features, self.sigma, n_features, who="adversarial")
        if self.sigma is not None:
            s = np.asarray(self.sigma, dtype=np.float64)
            if s.ndim == 1 and s.shape[0] != n_features:
                raise ValueError(f"sigma has {s.shape[0]} entries but the data has {n_features} features")
            self._sigma: npt.NDArray[np.float64] | None = np.broadcast_to(s, (n_features,)).copy()
        else:
            self._sigma = None
        self._sigma_of: Any = None
        if self._features is not None and self._sigma is None:
            fast = _SigmaOf(self._features)
            probe = np.asarray(data.X[:64], dtype=np.float64)
            self._sigma_of = fast if fast.check(probe) else self._features.sigma
        self._cs = resolve_constraints(self._features, self.constraints)
        self._periodic = (
            self._features.periodic_mask if self._features is not None else np.zeros(n_features, dtype=bool)
        )
        self._mutable = np.ones(n_features, dtype=bool)
        self._model = model
        self._val = (data.X_val[: self.val_rows], data.y_val[: self.val_rows])
        self._seed = data.seed
        self._ready = True

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Reset the epoch's metrics."""
        self._epoch = epoch
        self._metrics.reset()

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mixed clean/adversarial BCE (clean BCE during the warm-up epochs)."""
        if self._epoch < self.start_epoch_ or self.mix == 0.0:
            return _clean_loss(model, batch, self._metrics)
        x_adv = self.adversaries(model, batch.x, batch.y)
        return _mixed_loss(model, batch.x, x_adv, batch.y, self.mix, self._metrics, batch.weight)

    def epoch_metrics(self) -> dict[str, float]:
        """``clean_loss``, ``adv_loss``, ``adv_accuracy``; with ``val_rows`` also ``val_adv_*``."""
        out = self._metrics.means()
        if self.val_rows > 0 and self._ready and len(self._val[0]):
            out.update(self._validation_metrics())
        return out

    def config(self) -> dict[str, Any]:
        """The settings, with the attack's full parameters."""
        sigma = None if self.sigma is None else np.asarray(self.sigma, dtype=np.float64).tolist()
        features = None
        if self.features is not None:
            features = {"n_features": len(self.features), "resolution": self.features.resolution.to_dict()}
        return {
            "strategy": self.name,
            "attack": self.attack_name,
            "eps": self.eps,
            "steps": self.steps,
            "mix": self.mix,
            "start_epoch": self.start_epoch_,
            "features": features,
            "sigma": sigma,
            "constraints": _constraint_config(self.constraints),
            "val_rows": self.val_rows,
            "attack_params": self.attack.params(),
        }

    # ------------------------------------------------------------------ adversaries
    def adversaries(
        self, model: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Adversarial versions of the rows ``x`` (labels ``y``) against ``model``, as a tensor like ``x``.

        The thin tensor-level entry point into the attack framework for per-batch use:
        it builds the :class:`~aalearn.attacks.AttackSetup` of the batch directly (σ from
        the feature specification or ``sigma``, the constraint set, every row attacked
        with its label as target) and runs the attack's own batch search
        (``GradientAttack._run_batch``: initialiser, objective, step, budget projection,
        constraint repair, best-feasible selection). What :meth:`Attack.run` adds on top,
        per call, is left out because it would triple the cost of a training step: the
        input validation and float64 copy of the whole input, a clean forward pass to
        decide which rows to attack, and the result metrics (distances, violations,
        success flags, a second forward pass). Every returned row lies within the budget
        and satisfies the enabled constraints (the search keeps only feasible iterates,
        else the clean row).

        Args:
            model: The classifier (its train/eval flags and ``requires_grad`` are restored).
            x: Clean rows ``(B, F)`` on the model's device.
            y: Labels ``(B,)`` (float or int, 0/1).
            generator: Torch generator for the random start (default: torch's global RNG,
                which the training loop seeds and checkpoints).

        Returns:
            Adversarial rows ``(B, F)``, detached, in ``x``'s dtype and device.
        """

        if not self._ready:
            raise RuntimeError("call setup(model, data) before generating adversaries")
        b, f = x.shape
        adapter = ModelAdapter(model)
        x64 = x.detach().to("cpu", torch.float64).numpy()
        target = y.detach().to("cpu").round().to(torch.int64).numpy()
        sig = self._sigma_of(x64) if self._sigma_of is not None else resolve_sigma(x64, None, self._sigma)
        setup = AttackSetup(
            adapter,
            x64,
            self._features,
            self._cs,
            sig,
            self._periodic,
            self._mutable,
            target,
            target,
            target,
            None,
            np.ones(b, dtype=bool),
            b,
            False,
        )
        rows = np.arange(b)
        iterations = np.zeros(b, dtype=np.int64)
        atk = self.attack
        best: dict[str, Tensor] | None = None
        with adapter.evaluating():
            for _ in range(atk.restarts):
                # one uniform per entry, drawn in float64 as GradientAttack._noise does
                noise = torch.rand((b, f), generator=generator, dtype=torch.float64).to(adapter.dtype)
                best = atk._run_batch(setup, rows, noise, best, iterations)
        assert best is not None  # restarts >= 1 (validated by GradientAttack)
        return best["x"].detach().to(device=x.device, dtype=x.dtype)

    def _validation_metrics(self) -> dict[str, float]:
        model = self._model
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        xv = torch.as_tensor(self._val[0], device=device, dtype=dtype)
        yv = torch.as_tensor(self._val[1], device=device, dtype=dtype)
        # a generator of its own: the validation attack does not shift the training's RNG stream
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self._seed, self._epoch, 7]).generate_state(1)[0])
        )
        x_adv = self.adversaries(model, xv, yv, generator=gen)

        with ModelAdapter(model).evaluating(), torch.no_grad():
            logits = logits_of(model, x_adv)
        return {
            "val_adv_loss": float(F.binary_cross_entropy_with_logits(logits, yv)),
            "val_adv_accuracy": float(((logits >= 0).to(yv.dtype) == yv).to(torch.float64).mean()),
        }


# --------------------------------------------------------------------------- RDSA augmentation
@register_strategy
class RDSAAugmentation(Strategy):
    r"""Augmentation with RDSA's marginal-preserving resampling (arXiv:2501.05588).

    In :meth:`setup` the per-feature marginals of the training set are fitted
    (:meth:`aalearn.attacks.rdsa.Marginals.fit`). A perturbed jet re-draws
    ``n_features`` randomly chosen features from their marginals
    (:func:`aalearn.attacks.rdsa.rdsa_search`), then the enabled physics constraints
    repair it (default: the attack framework's constraints for the 87-column challenge
    layout, none for generic inputs); it keeps its clean label.

    * ``mode="epoch"``: at the start of every epoch one perturbed version of every
      training jet is drawn, seeded from ``(seed, epoch)``.
    * ``mode="pool"``: ``pool_size`` perturbed versions of every training jet are drawn
      once in :meth:`setup`; each batch uses one of them per jet, chosen at random.

    With ``only_successful=False`` (default) every draw is used: plain resampling
    augmentation, the RDSA-derived ("antiRDSA") augmentation of the challenge's winning
    solution (arXiv:2510.16443). With ``only_successful=True`` only candidates that fool
    the current model are used, as RDSA does: in epoch mode the RDSA search runs against
    the model at the start of the epoch with ``max_tries`` tries; in pool mode each batch
    picks at random among the pool candidates that fool the model at that step. A jet
    without a fooling candidate is used unchanged (RDSA returns failures unchanged).

    Per epoch the history gets ``clean_loss``, ``adv_loss`` and ``adv_accuracy`` (on the
    perturbed training jets) and, with ``only_successful``, ``rdsa_success`` (fraction of
    jets with a fooling candidate).

    Args:
        mode: ``"epoch"`` or ``"pool"``.
        pool_size: Perturbed versions per jet in pool mode (≥ 1).
        mix: Weight :math:`w` of the perturbed loss, in [0, 1].
        only_successful: Use only candidates that fool the current model.
        n_features: Features re-drawn per candidate (RDSA's default 15; at most the
            number of features).
        max_tries: RDSA tries per jet with ``only_successful`` in epoch mode.
        bins: Histogram bins of a continuous feature's marginal.
        discrete_threshold: Features with fewer unique values are drawn from their values.
        features: Feature specification for the constraints (default: the challenge
            layout for 87 columns).
        constraints: A :class:`~aalearn.constraints.ConstraintSet`, names, ``"none"``, or
            ``None`` for the default physics constraints.
        start_epoch: Clean warm-up epochs before the augmentation starts.

    Raises:
        ValueError: For a bad ``mode``, ``mix`` outside [0, 1] or out-of-range sizes.

    Example:
        >>> RDSAAugmentation(mode="pool", pool_size=2).config()["mode"]
        'pool'
    """

    name: ClassVar[str] = "rdsa"
    supports_sample_weight: ClassVar[bool] = True

    def __init__(
        self,
        mode: Literal["epoch", "pool"] = "epoch",
        pool_size: int = 4,
        mix: float = 0.5,
        only_successful: bool = False,
        n_features: int = 15,
        max_tries: int = 25,
        bins: int = 100,
        discrete_threshold: int = 50,
        features: Any = None,
        constraints: ConstraintSpec = None,
        start_epoch: int = 0,
    ) -> None:
        if mode not in ("epoch", "pool"):
            raise ValueError(
                f"mode must be 'epoch' (re-drawn every epoch) or 'pool' (pre-generated), got {mode!r}"
            )
        self.mode = mode
        self.pool_size = _check_int(pool_size, name="pool_size", minimum=1)
        self.mix = _check_mix(mix)
        if not isinstance(only_successful, (bool, np.bool_)):
            raise ValueError(f"only_successful must be True or False, got {only_successful!r}")
        self.only_successful = bool(only_successful)
        self.n_features = _check_int(n_features, name="n_features", minimum=1)
        self.max_tries = _check_int(max_tries, name="max_tries", minimum=1)
        self.bins = _check_int(bins, name="bins", minimum=2)
        self.discrete_threshold = _check_int(discrete_threshold, name="discrete_threshold", minimum=0)
        self.features = features
        self.constraints = constraints
        _constraint_config(constraints)
        self.start_epoch_ = _check_int(start_epoch, name="start_epoch", minimum=0)
        self._metrics = _MixedLossMetrics()
        self._epoch = 0
        self._adv: Tensor | None = None
        self._pool: Tensor | None = None
        self._success = math.nan
        self._success_sum = 0
        self._success_n = 0

    def config(self) -> dict[str, Any]:
        """The settings (JSON-serialisable)."""
        features = None
        if self.features is not None:
            features = {"n_features": len(self.features), "resolution": self.features.resolution.to_dict()}
        return {
            "strategy": self.name,
            "mode": self.mode,
            "pool_size": self.pool_size,
            "mix": self.mix,
            "only_successful": self.only_successful,
            "n_features": self.n_features,
            "max_tries": self.max_tries,
            "bins": self.bins,
            "discrete_threshold": self.discrete_threshold,
            "features": features,
            "constraints": _constraint_config(self.constraints),
            "start_epoch": self.start_epoch_,
        }

    # ------------------------------------------------------------------ hooks
    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Fit the marginals on the training set; in pool mode draw the pool."""

        n_cols = data.X.shape[1]
        features = _resolve_features(self.features, None, n_cols, who="rdsa")
        cs = resolve_constraints(features, self.constraints)
        self._repair = (lambda cand, orig: cs.repair_numpy(cand, orig)) if cs.constraints else None
        self._k = min(self.n_features, n_cols)
        self._x = data.X
        self._y = data.y
        self._seed = data.seed
        self._marginals = Marginals.fit(data.X, bins=self.bins, discrete_threshold=self.discrete_threshold)
        param = next(model.parameters())
        self._device, self._dtype = param.device, param.dtype
        self._adv = None
        self._pool = None
        if self.mode == "pool" and self.mix > 0:
            pool = [
                self._draw(None, np.random.SeedSequence([self._seed, 1, j])) for j in range(self.pool_size)
            ]
            self._pool = torch.stack(pool)  # (P, N, F)

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Reset the metrics; in epoch mode re-draw the perturbed training set."""
        self._epoch = epoch
        self._metrics.reset()
        self._success = math.nan
        self._success_sum = 0
        self._success_n = 0
        if self.mode == "epoch" and self._active():
            ss = np.random.SeedSequence([self._seed, 2, epoch])
            self._adv = self._draw(model if self.only_successful else None, ss)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mixed clean/perturbed BCE (clean BCE during the warm-up epochs)."""
        if not self._active():
            return _clean_loss(model, batch, self._metrics)
        if self.mode == "epoch":
            assert self._adv is not None  # drawn in start_epoch
            x_adv = self._adv[batch.index]
        else:
            x_adv = self._from_pool(model, batch)
        return _mixed_loss(model, batch.x, x_adv, batch.y, self.mix, self._metrics, batch.weight)

    def epoch_metrics(self) -> dict[str, float]:
        """``clean_loss``, ``adv_loss``, ``adv_accuracy`` (and ``rdsa_success`` with ``only_successful``)."""
        out = self._metrics.means()
        if self.only_successful and self._active():
            out["rdsa_success"] = (
                self._success if self.mode == "epoch" else self._success_sum / max(self._success_n, 1)
            )
        return out

    # ------------------------------------------------------------------ internals
    def _active(self) -> bool:
        return self.mix > 0 and self._epoch >= self.start_epoch_

    def _draw(self, model: nn.Module | None, ss: np.random.SeedSequence) -> Tensor:
        """One RDSA candidate per training jet (``model``: keep only fooling ones, RDSA's search)."""

        if model is None:

            def accept(cand: np.ndarray, rows: np.ndarray) -> np.ndarray:
                return np.ones(len(rows), dtype=bool)

            out = rdsa_search(
                self._x, accept, n_features=self._k, max_tries=1, marginals=self._marginals,
                repair=self._repair, seed=ss, batch_size=8192,
            )  # fmt: skip
        else:
            adapter = ModelAdapter(model)

            def fooled(cand: np.ndarray, rows: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    logits = adapter.logits(torch.as_tensor(cand, device=self._device, dtype=self._dtype))
                dec: np.ndarray = (logits >= 0).to("cpu").numpy()
                return np.asarray(dec != self._y[rows].astype(bool))

            with adapter.evaluating():
                out = rdsa_search(
                    self._x, fooled, n_features=self._k, max_tries=self.max_tries, marginals=self._marginals,
                    repair=self._repair, seed=ss, batch_size=8192,
                )  # fmt: skip
            self._success = float(out.success.mean())
        return torch.as_tensor(np.ascontiguousarray(out.x_adv), device=self._device, dtype=self._dtype)

    def _from_pool(self, model: nn.Module, batch: Batch) -> Tensor:
        assert self._pool is not None  # drawn in setup
        cand = self._pool[:, batch.index]  # (P, B, F)
        p, b, f = cand.shape
        arange = torch.arange(b, device=cand.device)
        # random numbers from torch's global RNG (seeded and checkpointed by the training loop)
        u = torch.rand((p, b), dtype=torch.float64).to(cand.device)
        if not self.only_successful:
            return cand[u[0].mul(p).long().clamp(max=p - 1), arange]

        with ModelAdapter(model).evaluating(), torch.no_grad():
            logits = logits_of(model, cand.reshape(p * b, f)).reshape(p, b)
        fooled = (logits >= 0).to(batch.y.dtype) != batch.y[None, :]
        pick = torch.where(fooled, u, torch.full_like(u, -1.0)).argmax(dim=0)
        has = fooled.any(dim=0)
        self._success_sum += int(has.sum())
        self._success_n += b
        return torch.where(has[:, None], cand[pick, arange], batch.x)
