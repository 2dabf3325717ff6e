r"""Learning to pivot: a classifier whose output carries no information on a nuisance parameter.

Louppe, Kagan and Cranmer (arXiv:1611.01046) train a classifier :math:`f` together
with an adversary :math:`r` that predicts the nuisance parameter :math:`Z` from the
classifier's output :math:`s = f(X)` (the sigmoid output, as in the paper). With the
classifier's loss :math:`\mathcal L_f` (binary cross-entropy) and the adversary's
negative log-likelihood :math:`\mathcal L_r = -\mathbb E\,\log p_r(z \mid f(x))`, the
value function is

.. math::

    E_\lambda(\theta_f, \theta_r) = \mathcal L_f(\theta_f) - \lambda\,\mathcal L_r(\theta_f, \theta_r),
    \qquad \hat\theta_f, \hat\theta_r = \arg\min_{\theta_f}\max_{\theta_r} E_\lambda .

At the optimum the adversary can do no better than the prior of :math:`Z`, so
:math:`\mathcal L_r \to H(Z)` and :math:`f(X) \perp Z` (a *pivotal* classifier). The
paper's Algorithm 1 alternates ``K`` adversary steps (classifier fixed) with one
classifier step on :math:`E_\lambda` (adversary fixed); :class:`PivotStrategy` does the
same inside :func:`aalearn.training.train_classifier`: :meth:`PivotStrategy.loss` is
:math:`\mathcal L_f - \lambda \mathcal L_r` on the batch, and
:meth:`PivotStrategy.after_step` runs ``adversary_steps`` updates of the adversary with
its own Adam optimiser on fresh mini-batches of the training set. The paper pre-trains
both networks; ``pretrain_epochs`` epochs train the classifier alone and
``adversary_pretrain_steps`` steps train the adversary alone on the pre-trained,
frozen classifier before the adversarial phase.

Adversaries:

* ``nuisance="continuous"``: :class:`MixtureDensityNetwork`, a Gaussian mixture with
  ``n_components`` components (paper: 5) whose means, widths and weights come from a
  ``1 → hidden → hidden`` ReLU network (paper: 20 units);
* ``nuisance="categorical"``: :class:`CategoricalAdversary`, a softmax classifier over the
  distinct values of :math:`Z` (for a nuisance with a few discrete values, such as the
  −1/0/+1 labels of modelling variations, where a continuous density would diverge on
  the atoms; the paper's categorical example).

Reference:
    G. Louppe, M. Kagan, K. Cranmer, "Learning to Pivot with Adversarial Networks",
    NeurIPS 2017, arXiv:1611.01046; code github.com/glouppe/paper-learning-to-pivot.

Example:
    >>> import numpy as np
    >>> from aalearn.models import TopoDNN
    >>> from aalearn.training.strategy import Batch, TrainingData
    >>> rng = np.random.default_rng(0)
    >>> X, y, z = rng.normal(size=(64, 2)).astype(np.float32), rng.integers(0, 2, 64), rng.normal(size=64)
    >>> data = TrainingData(X, y, {"z": z}, X, y, {"z": z})
    >>> model, strategy = TopoDNN(2, (8,), batchnorm=False), PivotStrategy(lam=10.0)
    >>> strategy.setup(model, data)
    >>> xt, yt, zt = torch.from_numpy(X), torch.from_numpy(y).float(), torch.from_numpy(z)
    >>> batch = Batch(xt, yt, torch.arange(64), {"z": zt})
    >>> strategy.loss(model, batch).ndim
    0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, MixtureSameFamily, Normal

from aalearn.training.strategy import Batch, Strategy, TrainingData, logits_of, register_strategy

__all__ = [
    "CategoricalAdversary",
    "MixtureDensityNetwork",
    "PivotStrategy",
    "fit_adversary",
    "gaussian_entropy",
]

Nuisance = Literal["continuous", "categorical"]


def gaussian_entropy(sigma: float = 1.0) -> float:
    r"""Differential entropy :math:`\ln(\sigma\sqrt{2\pi e})` of a normal distribution (nats).

    The value an ideal adversary reaches for :math:`Z \sim N(0, \sigma^2)` when the
    classifier is pivotal (arXiv:1611.01046, Sec. 5).

    Example:
        >>> round(gaussian_entropy(), 4)
        1.4189
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite positive number, got {sigma}")
    return math.log(sigma * math.sqrt(2.0 * math.pi * math.e))


def _check_int(value: Any, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_float(value: Any, *, name: str, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        kind = "positive" if strict else "non-negative (≥ 0)"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")
    return v


class MixtureDensityNetwork(nn.Module):
    r"""Conditional density :math:`p(z \mid s) = \sum_k \pi_k(s)\,N(z; \mu_k(s), \sigma_k(s)^2)`.

    The adversary of learning to pivot (arXiv:1611.01046, Sec. 5: ``1 → 20 ReLU → 20
    ReLU`` then linear means, exponential widths and softmax weights of 5 Gaussians).
    The density is a :class:`torch.distributions.MixtureSameFamily`.

    Args:
        n_components: Number of Gaussian components :math:`K` (≥ 1).
        hidden: Width of the two hidden ReLU layers (≥ 1).
        n_inputs: Number of conditioning inputs (1: the classifier's output).

    Example:
        >>> mdn = MixtureDensityNetwork(n_components=3)
        >>> mdn.nll(torch.rand(8), torch.randn(8)).shape
        torch.Size([8])
    """

    def __init__(self, n_components: int = 5, hidden: int = 20, n_inputs: int = 1) -> None:
        super().__init__()
        self.n_components = _check_int(n_components, name="n_components", minimum=1)
        self.hidden = _check_int(hidden, name="hidden", minimum=1)
        self.n_inputs = _check_int(n_inputs, name="n_inputs", minimum=1)
        self.body = nn.Sequential(
            nn.Linear(self.n_inputs, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.hidden, 3 * self.n_components)

    def distribution(self, s: Tensor) -> MixtureSameFamily:
        """The mixture :math:`p(\\cdot \\mid s)` for inputs ``s`` of shape ``(B,)`` or ``(B, n_inputs)``."""
        h = self.head(self.body(s.reshape(s.shape[0], self.n_inputs)))
        mu, log_sigma, logit_pi = h.split(self.n_components, dim=1)
        return MixtureSameFamily(
            Categorical(logits=logit_pi, validate_args=False),
            Normal(mu, log_sigma.exp(), validate_args=False),
            validate_args=False,
        )

    def nll(self, s: Tensor, z: Tensor) -> Tensor:
        r"""Per-row negative log-likelihood :math:`-\log p(z_i \mid s_i)`, shape ``(B,)``."""
        return -self.distribution(s).log_prob(z.reshape(-1))


class CategoricalAdversary(nn.Module):
    r"""Softmax classifier :math:`p(z = c_j \mid s)` over the distinct values of a discrete nuisance.

    The categorical adversary of learning to pivot (arXiv:1611.01046, categorical
    nuisance example): ``1 → hidden ReLU → hidden ReLU → n_classes`` logits. Targets are
    class indices ``0 … n_classes − 1``.

    Example:
        >>> adv = CategoricalAdversary(n_classes=3)
        >>> adv.nll(torch.rand(4), torch.tensor([0, 1, 2, 1])).shape
        torch.Size([4])
    """

    def __init__(self, n_classes: int, hidden: int = 20, n_inputs: int = 1) -> None:
        super().__init__()
        self.n_classes = _check_int(n_classes, name="n_classes", minimum=2)
        self.hidden = _check_int(hidden, name="hidden", minimum=1)
        self.n_inputs = _check_int(n_inputs, name="n_inputs", minimum=1)
        self.net = nn.Sequential(
            nn.Linear(self.n_inputs, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.n_classes),
        )

    def nll(self, s: Tensor, z: Tensor) -> Tensor:
        """Per-row cross-entropy :math:`-\\log p(z_i \\mid s_i)`, shape ``(B,)``."""
        logits = self.net(s.reshape(s.shape[0], self.n_inputs))
        return F.cross_entropy(logits, z.reshape(-1).long(), reduction="none")


def _scores(model: nn.Module, x: Tensor) -> Tensor:
    """Classifier output :math:`f(x) = \\sigma(\\text{logit})`, ``(B,)``."""
    return torch.sigmoid(logits_of(model, x))


@torch.no_grad()
def _frozen_scores(model: nn.Module, x: Tensor, batch_size: int = 65536) -> Tensor:
    """Eval-mode scores without gradients; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([_scores(model, x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    finally:
        model.train(was_training)


def _adam(params: Any, lr: float) -> torch.optim.Optimizer:
    """Adam, fused where torch supports it (3x faster steps for the small adversary on CPU)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch or an unsupported device/dtype
        return torch.optim.Adam(params, lr=lr)


class PivotStrategy(Strategy):
    r"""Adversarial training against a nuisance parameter (registered as ``"pivot"``).

    Per batch the classifier minimises :math:`\mathcal L_f - \lambda\,\mathcal L_r`
    (arXiv:1611.01046, Algorithm 1); after each classifier step the adversary takes
    ``adversary_steps`` Adam steps on :math:`\mathcal L_r` with the classifier frozen.
    :math:`\mathcal L_r` is the adversary's mean negative log-likelihood of the nuisance
    (``Batch.aux[aux_key]``) given the classifier's output :math:`\sigma(\text{logit})`,
    over all rows or over the rows of ``adversary_class`` only (the paper's physics
    example uses the background class). The adversary's own updates see the classifier's
    eval-mode output (the output the deployed classifier gives; it differs from the
    train-mode output only for dropout or batch normalisation).

    The minimax game only works while the adversary stays close to its optimum for the
    current classifier: if ``adversary_loss`` sits at :math:`H(Z)` while the classifier's
    output still depends on :math:`Z`, the classifier is outrunning the adversary; raise
    ``adversary_steps`` or ``adversary_lr``, or lower the classifier's learning rate (the
    toy reproduction, :mod:`aalearn.reproduce.pivot`, uses 20 adversary steps per
    classifier step at a classifier learning rate of 10⁻³).

    Args:
        lam: :math:`\lambda \ge 0`; 0 trains the plain classifier (the adversary still
            learns, so its loss measures the dependence on :math:`Z`). Paper toy: 50.
        aux_key: Name of the per-row nuisance array in ``aux_train`` / ``Batch.aux``.
        nuisance: ``"continuous"`` (Gaussian-mixture adversary) or ``"categorical"``
            (softmax adversary over the distinct values of the nuisance).
        n_components: Gaussian components of the mixture (paper: 5).
        hidden: Hidden width of the adversary (paper: 20).
        adversary_lr: Adam learning rate of the adversary.
        adversary_steps: Adversary updates per classifier step (the paper's ``K``).
        adversary_batch_size: Rows per adversary step (default: the classifier batch's size).
        pretrain_epochs: First epochs in which the classifier trains alone on
            :math:`\mathcal L_f` (no adversary).
        adversary_pretrain_steps: Adversary steps on the frozen classifier at the start
            of the first adversarial epoch.
        adversary_class: Use only rows with this label for :math:`\mathcal L_r`
            (0 or 1), or ``None`` for all rows.

    Raises:
        ValueError: For :math:`\lambda < 0`, an unknown ``nuisance``, a bad class or
            non-positive sizes.

    Example:
        >>> s = PivotStrategy(lam=50.0, adversary_steps=5)
        >>> s.config()["lam"], s.name
        (50.0, 'pivot')
        >>> PivotStrategy(lam=-1.0)
        Traceback (most recent call last):
        ...
        ValueError: lam (λ) must be a finite non-negative (≥ 0) number, got -1.0
    """

    name: ClassVar[str] = "pivot"

    def __init__(
        self,
        lam: float = 50.0,
        *,
        aux_key: str = "z",
        nuisance: Nuisance = "continuous",
        n_components: int = 5,
        hidden: int = 20,
        adversary_lr: float = 1e-2,
        adversary_steps: int = 10,
        adversary_batch_size: int | None = None,
        pretrain_epochs: int = 0,
        adversary_pretrain_steps: int = 200,
        adversary_class: int | None = None,
    ) -> None:
        self.lam = _check_float(lam, name="lam (λ)", strict=False)
        if not isinstance(aux_key, str) or not aux_key:
            raise ValueError(f"aux_key must be a non-empty string, got {aux_key!r}")
        self.aux_key = aux_key
        if nuisance not in ("continuous", "categorical"):
            raise ValueError(f"nuisance must be 'continuous' or 'categorical', got {nuisance!r}")
        self.nuisance: Nuisance = nuisance
        self.n_components = _check_int(n_components, name="n_components", minimum=1)
        self.hidden = _check_int(hidden, name="hidden", minimum=1)
        self.adversary_lr = _check_float(adversary_lr, name="adversary_lr", strict=True)
        self.adversary_steps = _check_int(adversary_steps, name="adversary_steps", minimum=0)
        self.adversary_batch_size = (
            None
            if adversary_batch_size is None
            else _check_int(adversary_batch_size, name="adversary_batch_size", minimum=2)
        )
        self.pretrain_epochs = _check_int(pretrain_epochs, name="pretrain_epochs", minimum=0)
        self.adversary_pretrain_steps = _check_int(
            adversary_pretrain_steps, name="adversary_pretrain_steps", minimum=0
        )
        if adversary_class is not None and (
            isinstance(adversary_class, bool) or adversary_class not in (0, 1)
        ):
            raise ValueError(f"adversary_class must be 0, 1 or None (all rows), got {adversary_class!r}")
        self.adversary_class = adversary_class
        self.adversary: MixtureDensityNetwork | CategoricalAdversary | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._generator: torch.Generator | None = None
        self._model: nn.Module | None = None
        self._x: Tensor | None = None
        self._z: Tensor | None = None
        self._x_val: Tensor | None = None
        self._z_val: Tensor | None = None
        self._classes: Tensor | None = None  # sorted distinct values of a categorical nuisance
        self._epoch = 0
        self._adversary_pretrained = False
        self._pending_state: dict[str, Any] | None = None
        self._y: Tensor | None = None
        self._y_val: Tensor | None = None
        self._batch_size_seen: int | None = None
        self._reset_accumulators()

    # ------------------------------------------------------------------ helpers
    def _reset_accumulators(self) -> None:
        self._sum_adv = 0.0
        self._n_adv = 0
        self._sum_lf: Tensor | float = 0.0
        self._n_batches = 0

    @property
    def adversarial(self) -> bool:
        """Whether the current epoch is past the classifier's pre-training."""
        return self._epoch >= self.pretrain_epochs

    def _nuisance_array(self, aux: Mapping[str, Any], where: str) -> np.ndarray:
        if self.aux_key not in aux:
            known = ", ".join(sorted(aux)) or "none"
            raise ValueError(
                f"the pivot strategy needs the nuisance as auxiliary array {self.aux_key!r} in {where} "
                f"(pass aux_train={{{self.aux_key!r}: z}}); available: {known}"
            )
        z = np.asarray(aux[self.aux_key])
        if z.ndim != 1 or not np.issubdtype(z.dtype, np.number) or not np.all(np.isfinite(z)):
            raise ValueError(f"auxiliary array {self.aux_key!r} must be a finite numeric 1-D array")
        return z.astype(np.float64)

    def _targets(self, z: Tensor) -> Tensor:
        """Nuisance values as adversary targets (class indices for a categorical nuisance)."""
        if self.nuisance == "continuous":
            return z.float()
        assert self._classes is not None  # set in setup
        zc = z.to(self._classes.dtype)
        idx = torch.searchsorted(self._classes, zc).clamp(max=self._classes.numel() - 1)
        if not bool((self._classes[idx] == zc).all()):
            raise ValueError(
                f"nuisance {self.aux_key!r} has a value not seen in the training set; "
                f"the categorical adversary knows {self._classes.tolist()}"
            )
        return idx

    def _build_adversary(self, device: torch.device, n_classes: int) -> None:
        if self.nuisance == "continuous":
            self.adversary = MixtureDensityNetwork(self.n_components, self.hidden)
        else:
            self.adversary = CategoricalAdversary(n_classes, self.hidden)
        self.adversary.to(device)
        self._optimizer = _adam(self.adversary.parameters(), self.adversary_lr)

    def _subset(self, s: Tensor, y: Tensor | None, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.adversary_class is None or y is None:
            return s, z
        keep = y == self.adversary_class
        return s[keep], z[keep]

    # ------------------------------------------------------------------ hooks
    def setup(self, model: nn.Module, data: TrainingData) -> None:
        """Check the nuisance array, build the adversary and its optimiser (seeded from ``data.seed``)."""
        z = self._nuisance_array(data.aux, "aux_train")
        if z.shape[0] != data.X.shape[0]:
            raise ValueError(
                f"nuisance {self.aux_key!r} has {z.shape[0]} rows, X_train has {data.X.shape[0]}"
            )
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        n_classes = 0
        if self.nuisance == "categorical":
            # float32: the training loop hands auxiliary arrays to the batches in the model's dtype.
            classes = np.unique(z.astype(np.float32))
            if classes.size < 2:
                raise ValueError(
                    f"a categorical nuisance needs at least 2 distinct values, got {classes.tolist()}"
                )
            if classes.size > 1000:
                raise ValueError(
                    f"nuisance {self.aux_key!r} has {classes.size} distinct values; use nuisance='continuous'"
                )
            self._classes = torch.as_tensor(classes, device=device)
            n_classes = int(classes.size)
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        self._model = model
        self._x = torch.as_tensor(np.asarray(data.X), device=device, dtype=dtype)
        self._z = torch.as_tensor(z, device=device)
        self._y = torch.as_tensor(np.asarray(data.y), device=device)
        self._x_val = self._z_val = None
        if self.aux_key in data.aux_val and len(data.X_val) > 0:
            z_val = self._nuisance_array(data.aux_val, "aux_val")
            self._x_val = torch.as_tensor(np.asarray(data.X_val), device=device, dtype=dtype)
            self._z_val = torch.as_tensor(z_val, device=device)
            self._y_val = torch.as_tensor(np.asarray(data.y_val), device=device)
        if self.adversary_class is not None and not bool((self._y == self.adversary_class).any()):
            raise ValueError(f"adversary_class={self.adversary_class} but no training row has that label")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(data.seed) + 7919)  # the adversary's own, reproducible initialisation
            self._build_adversary(device, n_classes)
        self._generator = torch.Generator().manual_seed(int(data.seed) + 104729)
        self._epoch = 0
        self._adversary_pretrained = False
        self._reset_accumulators()
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Track the phase; pre-train the adversary at the start of the first adversarial epoch."""
        self._epoch = int(epoch)
        self._reset_accumulators()
        if self.adversarial and not self._adversary_pretrained:
            self._adversary_pretrained = True
            self.train_adversary(model, self.adversary_pretrain_steps)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        r""":math:`\mathcal L_f - \lambda\,\mathcal L_r` on the batch.

        Only :math:`\mathcal L_f` during the classifier's pre-training epochs or with λ = 0.
        """
        logits = logits_of(model, batch.x)
        l_f = F.binary_cross_entropy_with_logits(logits, batch.y)
        self._n_batches += 1
        self._sum_lf = self._sum_lf + l_f.detach()
        if self._batch_size_seen is None:
            self._batch_size_seen = int(batch.x.shape[0])
        if not self.adversarial or self.lam == 0.0:
            return l_f
        if self.adversary is None:
            raise ValueError("PivotStrategy.setup(model, data) must be called before loss()")
        if self.aux_key not in batch.aux:
            raise ValueError(f"the batch has no auxiliary array {self.aux_key!r} (the pivot's nuisance)")
        s, z = self._subset(torch.sigmoid(logits), batch.y, batch.aux[self.aux_key])
        if s.shape[0] == 0:
            return l_f
        l_r = self.adversary.nll(s, self._targets(z)).mean()
        return l_f - self.lam * l_r

    def after_step(self, model: nn.Module, batch: Batch) -> None:
        """``adversary_steps`` adversary updates on fresh mini-batches, classifier frozen."""
        if self.adversarial:
            self.train_adversary(model, self.adversary_steps)

    def train_adversary(self, model: nn.Module, steps: int) -> float:
        """Run ``steps`` adversary updates with the classifier frozen (eval-mode scores).

        Each step draws a mini-batch (``adversary_batch_size`` rows, default the
        classifier's batch size) of the training set with the strategy's seeded
        generator. Returns the mean adversary loss of the steps (NaN for 0 steps).
        """
        if steps <= 0:
            return float("nan")
        if self.adversary is None or self._optimizer is None or self._x is None or self._z is None:
            raise ValueError("PivotStrategy.setup(model, data) must be called before training the adversary")
        assert self._generator is not None
        assert self._y is not None
        n = self._x.shape[0]
        bs = min(self.adversary_batch_size or self._batch_size_seen or 256, n)
        # Scores of several steps' batches in one forward pass, at most ~64k rows at a time.
        chunk = max(1, 65536 // bs)
        self.adversary.train()
        total = torch.zeros((), device=self._x.device)
        used = 0
        for first in range(0, steps, chunk):
            k_steps = min(chunk, steps - first)
            idx = torch.randint(0, n, (k_steps, bs), generator=self._generator).to(self._x.device)
            s_all = _frozen_scores(model, self._x[idx.reshape(-1)]).reshape(k_steps, bs)
            z_all, y_all = self._z[idx], self._y[idx]
            for k in range(k_steps):
                s, z = self._subset(s_all[k], y_all[k], z_all[k])
                if s.shape[0] < 2:
                    continue
                loss = self.adversary.nll(s, self._targets(z)).mean()
                self._optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._optimizer.step()
                total += loss.detach()
                used += 1
        mean = float(total) / used if used else float("nan")
        if used:
            self._sum_adv += mean * used
            self._n_adv += used
        return mean

    @torch.no_grad()
    def adversary_loss(self, model: nn.Module, X: Any, z: Any, y: Any | None = None) -> float:
        """Mean adversary NLL of ``z`` given the frozen classifier's output on ``X`` (eval mode).

        With ``adversary_class`` set, ``y`` selects the rows of that class.
        """
        if self.adversary is None:
            raise ValueError("the adversary does not exist yet: call setup() (or train) first")
        device = next(self.adversary.parameters()).device
        dtype = next((p.dtype for p in model.parameters()), torch.float32)
        x_t = torch.as_tensor(np.asarray(X), device=device, dtype=dtype)
        z_t = torch.as_tensor(np.asarray(z, dtype=np.float64), device=device)
        s = _frozen_scores(model, x_t)
        y_t = None if y is None else torch.as_tensor(np.asarray(y), device=device)
        s, z_t = self._subset(s, y_t, z_t)
        self.adversary.eval()
        return float(self.adversary.nll(s, self._targets(z_t)).mean())

    def epoch_metrics(self) -> dict[str, float]:
        """Per-epoch numbers for the training history.

        ``adversary_loss`` (mean over the epoch's adversary steps), ``classifier_bce``
        (mean :math:`\\mathcal L_f` of the batches) and, when ``aux_val`` has the
        nuisance, ``adversary_val_loss`` (:math:`\\mathcal L_r` on the validation set)
        and ``pivot_val_objective`` (:math:`\\mathcal L_f - \\lambda\\mathcal L_r` on the
        validation set: the value function, a sensible ``monitor`` for early stopping,
        since the validation BCE alone rises as the classifier becomes pivotal; it is
        ``inf`` before the adversary has been trained, so pre-training epochs count
        towards ``patience``).
        """
        out: dict[str, float] = {}
        if self._n_batches:
            out["classifier_bce"] = float(self._sum_lf) / self._n_batches
        if self._n_adv:
            out["adversary_loss"] = self._sum_adv / self._n_adv
        if self._x_val is not None and self._z_val is not None and self._model is not None:
            if not (self.adversarial and self._adversary_pretrained) or self.adversary is None:
                # No trained adversary yet: its loss would be meaningless (and would win early stopping).
                out["pivot_val_objective"] = math.inf
                return out
            assert self._y_val is not None
            p = _frozen_scores(self._model, self._x_val)
            s, z = self._subset(p, self._y_val, self._z_val)
            was = self.adversary.training
            self.adversary.eval()
            with torch.no_grad():
                l_r = float(self.adversary.nll(s, self._targets(z)).mean()) if s.shape[0] else math.nan
                l_f = float(F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), self._y_val.to(p.dtype)))
            self.adversary.train(was)
            out["adversary_val_loss"] = l_r
            out["pivot_val_objective"] = l_f - self.lam * l_r
        return out

    def state_dict(self) -> dict[str, Any]:
        """Adversary weights, its optimiser, its RNG and the phase (all ``weights_only``-loadable)."""
        if self.adversary is None or self._optimizer is None or self._generator is None:
            return {}
        return {
            "adversary": {k: v.detach().clone() for k, v in self.adversary.state_dict().items()},
            "optimizer": self._optimizer.state_dict(),
            "generator": self._generator.get_state(),
            "adversary_pretrained": self._adversary_pretrained,
            "epoch": self._epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (kept until :meth:`setup` when the adversary does not exist yet)."""
        if not state:
            return
        if self.adversary is None or self._optimizer is None or self._generator is None:
            self._pending_state = dict(state)
            return
        self.adversary.load_state_dict(state["adversary"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"])
        self._adversary_pretrained = bool(state["adversary_pretrained"])
        self._epoch = int(state["epoch"])

    def config(self) -> dict[str, Any]:
        """The settings (JSON-serialisable)."""
        return {
            "strategy": self.name,
            "lam": self.lam,
            "aux_key": self.aux_key,
            "nuisance": self.nuisance,
            "n_components": self.n_components,
            "hidden": self.hidden,
            "adversary_lr": self.adversary_lr,
            "adversary_steps": self.adversary_steps,
            "adversary_batch_size": self.adversary_batch_size,
            "pretrain_epochs": self.pretrain_epochs,
            "adversary_pretrain_steps": self.adversary_pretrain_steps,
            "adversary_class": self.adversary_class,
        }


register_strategy(PivotStrategy)


def fit_adversary(
    model: nn.Module,
    X: Any,
    z: Any,
    *,
    y: Any | None = None,
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    **settings: Any,
) -> PivotStrategy:
    """Train a fresh adversary on a frozen classifier; how much the output tells about ``z``.

    The measurement behind the pivot's acceptance test (arXiv:1611.01046): an adversary
    trained to convergence on a pivotal classifier reaches only :math:`H(Z)`, while on a
    plain classifier it does better. The classifier is not changed.

    Args:
        model: Frozen classifier returning logits.
        X: Features ``(N, F)``.
        z: Nuisance ``(N,)``.
        y: Labels ``(N,)`` (needed with ``adversary_class``; default all zeros).
        steps: Adversary updates.
        batch_size: Rows per update.
        lr: Adam learning rate.
        seed: Seed of the adversary's initialisation and batches.
        settings: Further :class:`PivotStrategy` settings (``nuisance``, ``n_components``,
            ``hidden``, ``adversary_class``).

    Returns:
        The :class:`PivotStrategy` holding the trained adversary (use
        :meth:`PivotStrategy.adversary_loss` on held-out data).

    Example:
        >>> from aalearn.models import TopoDNN
        >>> X = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
        >>> z = np.random.default_rng(1).normal(size=256)
        >>> model = TopoDNN(2, (4,), batchnorm=False)
        >>> adv = fit_adversary(model, X, z, steps=20)
        >>> adv.adversary_loss(model, X, z) > 0
        True
    """
    x_np = np.asarray(X, dtype=np.float32)
    y_np = np.zeros(x_np.shape[0], dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
    strategy = PivotStrategy(
        lam=0.0, adversary_lr=lr, adversary_batch_size=batch_size, adversary_steps=1, **settings
    )
    data = TrainingData(x_np, y_np, {strategy.aux_key: np.asarray(z)}, x_np[:0], y_np[:0], {}, seed=seed)
    strategy.setup(model, data)
    strategy.train_adversary(model, _check_int(steps, name="steps", minimum=1))
    return strategy
