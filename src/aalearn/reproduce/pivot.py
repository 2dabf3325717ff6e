r"""Reproduction: the 2-D toy of "Learning to Pivot with Adversarial Networks" (arXiv:1611.01046).

The toy of Louppe, Kagan and Cranmer (Sec. 5.1; notebook ``code/Toy.ipynb`` of
github.com/glouppe/paper-learning-to-pivot), with equal class priors:

* class 0: :math:`x \sim N((0, 0), \Sigma_0)` with
  :math:`\Sigma_0 = \bigl[\begin{smallmatrix}1 & -0.5\\ -0.5 & 1\end{smallmatrix}\bigr]`;
* class 1: :math:`x \mid z \sim N((1, 1 + z), I)` with the nuisance :math:`z \sim N(0, 1)`
  (it affects class 1 only; class-0 rows carry a :math:`z` drawn from the same prior,
  as in the notebook);
* classifier :math:`f`: ``2 → 20 tanh → 20 ReLU → 1 sigmoid``; adversary: a 5-component
  Gaussian mixture density network on :math:`f(x)` (:class:`~aalearn.training.pivot.MixtureDensityNetwork`);
  :math:`\lambda = 50`.

Procedure (all through :func:`aalearn.training.train_classifier`): the **plain**
classifier is trained on the binary cross-entropy alone (the paper's pre-training of
:math:`f`); the **pivoted** classifier starts from it and is trained with
``strategy="pivot"`` (adversary pre-trained on the frozen plain classifier, then
``adversary_steps`` adversary updates per classifier step, Algorithm 1), with early
stopping on the validation value function :math:`\mathcal L_f - \lambda\mathcal L_r`.
For both classifiers, a fresh adversary is then trained on the frozen classifier and
its loss measured on an independent test set (``adversary_loss``), and the outputs at
fixed :math:`z = -1` and :math:`z = +1` (both classes, as in the paper's Fig. 2) are
compared with the two-sample Kolmogorov–Smirnov distance (``ks``). ``auc`` is the ROC
AUC on a test set at :math:`z = 0`.

Acceptance (the issue): the pivoted classifier has ``ks`` < 0.05 and ``adversary_loss``
within 0.01 of :math:`H(Z) = \ln\sqrt{2\pi e} = 1.4189`, while the plain classifier
fails both (``plain_fails`` = 1). A constant classifier would also be pivotal, so the
pivoted classifier's AUC must stay within [0.75, 0.80] (the project notes' JAX
reproduction of the paper's recipe reached 0.765/0.775; the ideal classifier that ignores
:math:`x_1` has AUC :math:`\Phi(1/\sqrt 2) = 0.760` at :math:`z = 0`).

The paper used 125 000 samples, SGD and a full adversary epoch per classifier step;
this reproduction uses fewer samples, Adam and a shorter schedule (:class:`PivotToyConfig`)
so that it runs in well under two minutes on one CPU core. It is seeded and deterministic.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from aalearn.evaluation import evaluate_scores
from aalearn.models.predict import predict_proba
from aalearn.reproduce.registry import Reproduction, register
from aalearn.training import train_classifier
from aalearn.training.pivot import PivotStrategy, fit_adversary, gaussian_entropy

__all__ = ["PivotToyConfig", "ToyClassifier", "make_toy", "pivot_toy", "run_pivot_toy"]

#: Covariance of class 0 in the toy.
_COV0 = np.array([[1.0, -0.5], [-0.5, 1.0]])
#: Thresholds of the issue's acceptance test.
KS_MAX = 0.05
ADVERSARY_TOLERANCE = 0.01


def make_toy(
    n: int, rng: np.random.Generator, *, z: float | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    r"""Draw ``n`` rows of the pivot toy: half class 0, half class 1, shuffled.

    Args:
        n: Number of rows (≥ 2).
        rng: NumPy generator.
        z: Fix the nuisance to this value (a test set "at :math:`Z = z`"); default
            :math:`z \sim N(0, 1)` per row.

    Returns:
        ``(X, y, z)`` with ``X`` of shape ``(n, 2)``.

    Example:
        >>> X, y, z = make_toy(1000, np.random.default_rng(0), z=1.0)
        >>> X.shape, int(y.sum()), float(z[0])
        ((1000, 2), 500, 1.0)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer ≥ 2, got {n!r}")
    n0 = n // 2
    n1 = n - n0
    zz = rng.normal(size=n) if z is None else np.full(n, float(z))
    x0 = rng.multivariate_normal([0.0, 0.0], _COV0, size=n0)
    x1 = rng.normal(size=(n1, 2)) + np.array([1.0, 1.0])
    x1[:, 1] += zz[n0:]
    X = np.vstack([x0, x1]).astype(np.float32)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    order = rng.permutation(n)
    return X[order], y[order], zz[order]


class ToyClassifier(nn.Module):
    """The paper's toy classifier ``2 → 20 tanh → 20 ReLU → 1``, returning the logit (the sigmoid is f).

    Example:
        >>> ToyClassifier()(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    n_features = 2

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 20), nn.Tanh(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B,)``."""
        out: Tensor = self.net(x)[:, 0]
        return out


@dataclass(frozen=True)
class PivotToyConfig:
    """Sample sizes and schedule of the toy reproduction (defaults: the registered run).

    Attributes:
        n_train: Training rows.
        n_val: Validation rows (early stopping).
        n_test: Rows of each test set (z = −1, z = +1, z = 0, and z from the prior).
        lam: λ of the pivot (paper: 50).
        pretrain_epochs: Epochs of the plain classifier (also the pivot's pre-training).
        pretrain_lr: Adam learning rate of the plain classifier.
        epochs: Epochs of adversarial training.
        lr: Adam learning rate of the classifier during adversarial training.
        batch_size: Classifier batch size.
        adversary_steps: Adversary updates per classifier step (the paper's K).
        adversary_pretrain_steps: Adversary updates on the frozen plain classifier first.
        adversary_lr: Adam learning rate of the adversary.
        adversary_batch_size: Rows per adversary update.
        eval_adversary_steps: Updates of the fresh adversary that measures ``adversary_loss``.
        seed: Seed of the data, initialisations and training.
    """

    n_train: int = 20_000
    n_val: int = 5_000
    n_test: int = 200_000
    lam: float = 50.0
    pretrain_epochs: int = 5
    pretrain_lr: float = 1e-2
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 128
    adversary_steps: int = 20
    adversary_pretrain_steps: int = 500
    adversary_lr: float = 1e-2
    adversary_batch_size: int = 256
    eval_adversary_steps: int = 1000
    seed: int = 0


def _scores(model: nn.Module, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:

    return predict_proba(model, X, batch_size=65536)


def _measure(
    model: nn.Module,
    config: PivotToyConfig,
    tests: dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float64]]],
    train: tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]],
) -> dict[str, float]:
    """KS(f | z=−1, f | z=+1), fresh-adversary loss and AUC at z = 0 of a frozen classifier."""
    from scipy.stats import ks_2samp

    ks = float(ks_2samp(_scores(model, tests["minus"][0]), _scores(model, tests["plus"][0])).statistic)
    adversary = fit_adversary(
        model,
        train[0],
        train[1],
        steps=config.eval_adversary_steps,
        batch_size=config.adversary_batch_size,
        lr=config.adversary_lr,
        seed=config.seed + 1,
    )
    x_p, _, z_p = tests["prior"]
    adversary_loss = adversary.adversary_loss(model, x_p, z_p)
    x0, y0, _ = tests["zero"]
    auc = evaluate_scores(y0, _scores(model, x0), signal_label=1).auc
    return {"ks": ks, "adversary_loss": adversary_loss, "auc": float(auc) if auc is not None else math.nan}


def run_pivot_toy(config: PivotToyConfig | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    r"""Train the plain and the pivoted toy classifier and measure the acceptance quantities.

    Args:
        config: Sizes and schedule (default :class:`PivotToyConfig`).

    Returns:
        ``(values, details)``: ``ks``, ``adversary_loss``, ``auc`` of the pivoted
        classifier, the same with prefix ``plain_`` for the plain one, ``entropy_z``
        (:math:`H(Z)`), ``entropy_z_test`` (the empirical :math:`-\overline{\log N(z)}`
        of the test set's :math:`z`, what an ideal adversary would score) and
        ``plain_fails`` (1.0 when the plain classifier fails both acceptance criteria);
        details hold the configuration, training histories and timings.

    Example:
        >>> cfg = PivotToyConfig(n_train=2000, n_val=500, n_test=2000, pretrain_epochs=1, epochs=1,
        ...                      adversary_steps=1, adversary_pretrain_steps=10, eval_adversary_steps=10)
        >>> values, _ = run_pivot_toy(cfg)  # doctest: +SKIP
        >>> sorted(values)[:3]  # doctest: +SKIP
        ['adversary_loss', 'auc', 'entropy_z']
    """

    cfg = config or PivotToyConfig()
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the networks are tiny: extra threads only add overhead
    try:
        rng = np.random.default_rng(cfg.seed)
        x_tr, y_tr, z_tr = make_toy(cfg.n_train, rng)
        x_va, y_va, z_va = make_toy(cfg.n_val, rng)
        tests = {
            "minus": make_toy(cfg.n_test, rng, z=-1.0),
            "plus": make_toy(cfg.n_test, rng, z=1.0),
            "zero": make_toy(cfg.n_test, rng, z=0.0),
            "prior": make_toy(cfg.n_test, rng),
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            plain = ToyClassifier()
        common: dict[str, Any] = {"batch_size": cfg.batch_size, "seed": cfg.seed, "progress": False}
        t_plain = time.perf_counter()
        plain_hist = train_classifier(
            plain,
            x_tr,
            y_tr,
            x_va,
            y_va,
            epochs=cfg.pretrain_epochs,
            lr=cfg.pretrain_lr,
            patience=cfg.pretrain_epochs,
            **common,
        )
        t_pivot = time.perf_counter()
        pivoted = copy.deepcopy(plain)
        strategy = PivotStrategy(
            lam=cfg.lam,
            aux_key="z",
            adversary_steps=cfg.adversary_steps,
            adversary_pretrain_steps=cfg.adversary_pretrain_steps,
            adversary_lr=cfg.adversary_lr,
            adversary_batch_size=cfg.adversary_batch_size,
        )
        pivot_hist = train_classifier(
            pivoted,
            x_tr,
            y_tr,
            x_va,
            y_va,
            strategy=strategy,
            aux_train={"z": z_tr},
            aux_val={"z": z_va},
            epochs=cfg.epochs,
            lr=cfg.lr,
            patience=cfg.epochs,
            monitor="pivot_val_objective",
            **common,
        )
        t_measure = time.perf_counter()
        train = (x_tr, z_tr)
        pivot_values = _measure(pivoted, cfg, tests, train)
        plain_values = _measure(plain, cfg, tests, train)
    finally:
        torch.set_num_threads(threads)
    entropy = gaussian_entropy(1.0)
    z_test = tests["prior"][2]
    values: dict[str, float] = {
        **pivot_values,
        "entropy_z": entropy,
        "entropy_z_test": float(np.mean(0.5 * z_test**2 + 0.5 * math.log(2.0 * math.pi))),
        **{f"plain_{k}": v for k, v in plain_values.items()},
    }
    plain_fails = (
        values["plain_ks"] >= KS_MAX and abs(values["plain_adversary_loss"] - entropy) >= ADVERSARY_TOLERANCE
    )
    values["plain_fails"] = 1.0 if plain_fails else 0.0
    details = {
        "config": asdict(cfg),
        "plain_history": plain_hist.summary(),
        "pivot_history": {
            "best_epoch": pivot_hist.best_epoch,
            "val_loss": pivot_hist.val_loss,
            **pivot_hist.extra,
        },
        "seconds": {
            "plain_training": t_pivot - t_plain,
            "pivot_training": t_measure - t_pivot,
            "measurements": time.perf_counter() - t_measure,
            "total": time.perf_counter() - t0,
        },
        "acceptance": (
            f"pivoted ks < {KS_MAX} and |adversary_loss - H(Z)| < {ADVERSARY_TOLERANCE}; "
            "plain classifier fails both (plain_fails = 1); pivoted auc in [0.75, 0.80]"
        ),
    }
    return values, details


def pivot_toy() -> tuple[dict[str, float], dict[str, Any]]:
    """Runner of the registered reproduction (default :class:`PivotToyConfig`)."""
    return run_pivot_toy(PivotToyConfig())


_H_Z = 0.5 * math.log(2.0 * math.pi * math.e)

register(
    Reproduction(
        name="pivot-toy",
        description=(
            "Learning to pivot, 2-D toy: pivoted classifier independent of Z (KS, adversary loss = H(Z)), "
            "plain classifier not"
        ),
        source=(
            "G. Louppe, M. Kagan, K. Cranmer, 'Learning to Pivot with Adversarial Networks', NeurIPS 2017, "
            "arXiv:1611.01046 (Sec. 5.1, Fig. 2); acceptance per aalearn issue 4; AUC band from the "
            "project notes' reproduction"
        ),
        expected={
            "ks": 0.0,
            "adversary_loss": _H_Z,
            "auc": 0.775,
            "plain_fails": 1.0,
        },
        tolerance={
            "ks": KS_MAX,
            "adversary_loss": ADVERSARY_TOLERANCE,
            "auc": 0.025,
            "plain_fails": 0.5,
        },
        runner=pivot_toy,
    )
)
