r"""Reproduction: the 3-D synthetic benchmark of INFERNO (de Castro & Dorigo, arXiv:1806.04743, Table 1).

The toy as in the paper's code (github.com/pablodecm/paper-inferno; the project notes
explain why the code's definitions, not the paper's text, are the ones behind Table 1):

* signal: :math:`x_0, x_1 \sim N(0, 1)`, :math:`x_2 \sim \mathrm{Exp}(\text{rate } 2)`;
* background: :math:`x_0 \sim N(r, 5)`, :math:`x_1 \sim N(0, 9)` (variances),
  :math:`x_2 \sim \mathrm{Exp}(\text{rate } \lambda)`, nominal :math:`r = 2`, :math:`\lambda = 3`;
* :math:`s = 50` signal and :math:`b = 1000` background events expected.

Benchmarks: 0 no nuisance; 1 :math:`r` free; 2 :math:`r, \lambda` free; 3 :math:`r \sim N(2, 0.4)`,
:math:`\lambda \sim N(3, 1)`; 4 as 3 and :math:`b \sim N(1000, 100)`. The nuisances enter
INFERNO's loss as differentiable transforms of the background rows (shift of :math:`x_0`
by :math:`r - 2`, :math:`x_2 \to x_2\,\lambda_0/\lambda`), :class:`~aalearn.training.inferno.InfernoStrategy`.

Measured (``details`` has the lists ``inferno_sigma``, ``cross_entropy_sigma`` and
``analytic_sigma`` over benchmarks 0–4; ``values`` the same numbers as ``*_sigma_k``):

* ``inferno_sigma_k``: expected uncertainty on :math:`s` after profiling (Asimov, Fisher
  information of the hard arg-max histogram, derivatives in :math:`r, \lambda` by central
  finite differences on the same events) of the INFERNO network trained on benchmark
  :math:`k`, evaluated on benchmark :math:`k` (median over the initialisations);
* ``cross_entropy_sigma_k``: the same for a cross-entropy classifier binned in 10
  equal-width bins of its probability;
* ``analytic_sigma_k``: :math:`\sqrt{[I^{-1}]_{ss}}` of the unbinned likelihood (Monte
  Carlo over the exact densities).

Training uses Adam (not the paper's SGD with lr 10⁻⁶ for 200 epochs) and early stopping on
the validation :math:`\sigma_\mu`; the paper used 100 initialisations, the default here
uses few (``InfernoToyConfig.seeds``) because it runs on a CPU.

Measured with the default config (3 initialisations, about 7.5 CPU-minutes): INFERNO
15.01, 16.30, 16.86, 16.63, 18.71 (spread over the seeds 0.09-0.45); cross-entropy 14.99,
19.36, 23.36, 21.42, 26.47; analytic 14.71, 15.50, 15.63, 15.60, 16.87. Everything is within
tolerance. The INFERNO row is compared one-sidedly: a value passes up to 3 % above the paper's
median and down to the analytic (unbinned Cramér–Rao) bound, since a better-trained network
may come closer to that bound than the paper's median did — on benchmark 0 the measured 15.01
is 3.2 % below the paper's 15.51, at the paper's own optimal-classifier value 14.97.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from aalearn.reproduce.registry import Reproduction, register
from aalearn.training import train_classifier
from aalearn.training.inferno import asimov_fisher, inferno_mlp

__all__ = [
    "BENCHMARK_NUISANCES",
    "PAPER_TABLE",
    "InfernoToyConfig",
    "analytic_sigma",
    "binned_sigma",
    "inferno_toy",
    "make_inferno_toy",
    "run_inferno_toy",
]

SIGNAL, BACKGROUND = 50.0, 1000.0
R0, LAMBDA0 = 2.0, 3.0
_SHIFT = {"name": "r", "kind": "shift", "column": 0, "nominal": R0}
_RATE = {"name": "lambda", "kind": "rate", "column": 2, "nominal": LAMBDA0}

#: Nuisances of benchmarks 0–4 in :class:`~aalearn.training.inferno.Nuisance` dict form.
BENCHMARK_NUISANCES: tuple[tuple[dict[str, Any], ...], ...] = (
    (),
    (_SHIFT,),
    (_SHIFT, _RATE),
    ({**_SHIFT, "sigma": 0.4}, {**_RATE, "sigma": 1.0}),
    (
        {**_SHIFT, "sigma": 0.4},
        {**_RATE, "sigma": 1.0},
        {"name": "b", "kind": "norm", "nominal": BACKGROUND, "sigma": 100.0},
    ),
)

#: arXiv:1806.04743 Table 1 (median expected uncertainty on s over 100 initialisations).
PAPER_TABLE: dict[str, tuple[float, ...]] = {
    "cross_entropy": (14.99, 18.94, 23.94, 21.54, 26.71),
    "inferno": (15.51, 16.79, 16.95, 16.89, 18.68),  # diagonal: INFERNO k on benchmark k
    "analytic": (14.71, 15.52, 15.65, 15.62, 16.89),
}


def make_inferno_toy(
    n: int, rng: np.random.Generator, *, signal: bool, r: float = R0, lam: float = LAMBDA0
) -> npt.NDArray[np.float32]:
    r"""Draw ``n`` rows of the signal or the background of the INFERNO toy (the paper code's definitions).

    Example:
        >>> x = make_inferno_toy(100_000, np.random.default_rng(0), signal=False)
        >>> [round(float(v), 1) for v in x.mean(axis=0)[[0, 2]]]  # x0 ~ N(r = 2, 5), x2 ~ Exp(rate 3)
        [2.0, 0.3]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if signal:
        x01 = rng.normal(size=(n, 2))
        x2 = rng.exponential(1.0 / 2.0, size=n)
    else:
        x01 = rng.normal(size=(n, 2)) * np.array([math.sqrt(5.0), 3.0]) + np.array([r, 0.0])
        x2 = rng.exponential(1.0 / lam, size=n)
    return np.column_stack([x01, x2]).astype(np.float32)


def _densities(x: npt.NDArray[np.float64], r: float, lam: float) -> tuple[npt.NDArray[np.float64], ...]:
    """Signal and background densities and the background's derivatives in r and λ."""
    x0, x1, x2 = x[:, 0], x[:, 1], x[:, 2]
    fs = np.exp(-0.5 * (x0**2 + x1**2)) / (2 * math.pi) * 2.0 * np.exp(-2.0 * x2)
    fb = (
        np.exp(-0.5 * ((x0 - r) ** 2 / 5.0 + x1**2 / 9.0))
        / (2 * math.pi * math.sqrt(5.0) * 3.0)
        * lam
        * np.exp(-lam * x2)
    )
    return fs, fb, fb * (x0 - r) / 5.0, fb * (1.0 / lam - x2)


def analytic_sigma(benchmark: int, n_events: int = 1_000_000, seed: int = 0) -> float:
    r"""Expected :math:`\sigma_s` of the unbinned likelihood (Monte Carlo over the exact densities).

    :math:`I_{jk} = \int \partial_j\nu\,\partial_k\nu/\nu\,dx` + constraints, with
    :math:`\nu(x) = s f_s(x) + b f_b(x \mid r, \lambda)`, estimated with ``n_events`` draws of
    the mixture; the Monte Carlo error is about :math:`0.5/\sqrt{n}` relative.

    Example:
        >>> round(analytic_sigma(0, 200_000), 1)
        14.7
    """
    rng = np.random.default_rng(seed)
    n_sig = round(n_events * SIGNAL / (SIGNAL + BACKGROUND))
    x = np.vstack(
        [
            make_inferno_toy(n_sig, rng, signal=True).astype(np.float64),
            make_inferno_toy(n_events - n_sig, rng, signal=False).astype(np.float64),
        ]
    )
    fs, fb, dfb_r, dfb_l = _densities(x, R0, LAMBDA0)
    nu = SIGNAL * fs + BACKGROUND * fb
    grads = [fs, BACKGROUND * dfb_r, BACKGROUND * dfb_l, fb]  # d nu / d (s, r, lambda, b)
    names = ["s", "r", "lambda", "b"]
    used = [0] + [names.index(n["name"]) for n in BENCHMARK_NUISANCES[benchmark]]
    g = np.stack([grads[i] / nu for i in used], axis=1)
    info = (SIGNAL + BACKGROUND) * (g.T @ g) / x.shape[0]
    for k, nuis in enumerate(BENCHMARK_NUISANCES[benchmark], start=1):
        if nuis.get("sigma") is not None:
            info[k, k] += 1.0 / nuis["sigma"] ** 2
    return float(math.sqrt(np.linalg.inv(info)[0, 0]))


def binned_sigma(
    bins: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.int64]],
    n_bins: int,
    benchmark: int,
    x_sig: npt.NDArray[np.float32],
    x_bkg: npt.NDArray[np.float32],
    *,
    steps: Sequence[float] = (0.1, 0.1),
) -> float:
    r"""Expected :math:`\sigma_s` after profiling for a hard binning ``bins(x) -> bin index``.

    Asimov Fisher information (:func:`~aalearn.training.inferno.asimov_fisher`) of the
    counts :math:`\mu S_i + B_i(r, \lambda)`; :math:`\partial B_i/\partial r` and
    :math:`\partial B_i/\partial\lambda` by central differences (``steps``) of the
    histograms of the same background events transformed as in the toy's definition.
    """

    def hist(x: npt.NDArray[np.float32], total: float) -> npt.NDArray[np.float64]:
        return np.bincount(bins(x), minlength=n_bins).astype(np.float64) * total / x.shape[0]

    def shifted(r: float = R0, lam: float = LAMBDA0) -> npt.NDArray[np.float32]:
        x = x_bkg.copy()
        x[:, 0] += np.float32(r - R0)
        x[:, 2] *= np.float32(LAMBDA0 / lam)
        return x

    s_h, b_h = hist(x_sig, SIGNAL), hist(x_bkg, BACKGROUND)
    cols = [s_h]
    precision = [0.0]
    for nuis in BENCHMARK_NUISANCES[benchmark]:
        if nuis["name"] == "r":
            h = steps[0]
            cols.append((hist(shifted(r=R0 + h), BACKGROUND) - hist(shifted(r=R0 - h), BACKGROUND)) / (2 * h))
        elif nuis["name"] == "lambda":
            h = steps[1]
            up, down = hist(shifted(lam=LAMBDA0 + h), BACKGROUND), hist(shifted(lam=LAMBDA0 - h), BACKGROUND)
            cols.append((up - down) / (2 * h))
        else:  # b: the background normalisation
            cols.append(b_h / BACKGROUND)
        precision.append(0.0 if nuis.get("sigma") is None else 1.0 / nuis["sigma"] ** 2)
    info = asimov_fisher(
        torch.from_numpy(s_h + b_h),
        torch.from_numpy(np.stack(cols, axis=1)),
        torch.tensor(precision, dtype=torch.float64),
    )
    return float(SIGNAL * math.sqrt(torch.linalg.inv(info)[0, 0]))


@dataclass(frozen=True)
class InfernoToyConfig:
    """Settings of the reproduction (the paper: 200k training events, 1M evaluation, 100 initialisations).

    Attributes:
        n_train: Training rows per class.
        n_val: Validation rows per class (early stopping on the validation σ_μ).
        n_eval: Evaluation rows per class (hard histograms).
        benchmarks: Benchmarks to train INFERNO on (each evaluated on itself).
        seeds: One initialisation per seed (INFERNO and the cross-entropy classifier).
        epochs: Maximum INFERNO epochs.
        batch_size: INFERNO batch (the code: 5000 rows, signal and background).
        lr: Adam learning rate of INFERNO.
        tau: Softmax temperature (the paper: 0.1).
        n_bins: Number of INFERNO outputs (bins).
        patience: Early-stopping patience (epochs) on the validation σ_μ.
        ce_epochs: Maximum epochs of the cross-entropy classifier.
        ce_batch_size: Its batch size.
        ce_lr: Its Adam learning rate (the paper: 10⁻³).
        analytic_events: Monte Carlo draws of the analytic-likelihood values.
        hidden: Hidden layer widths (the paper: 100, 100).
    """

    n_train: int = 25_000
    n_val: int = 10_000
    n_eval: int = 300_000
    benchmarks: tuple[int, ...] = (0, 1, 2, 3, 4)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 20
    batch_size: int = 2000
    lr: float = 1e-3
    tau: float = 0.1
    n_bins: int = 10
    patience: int = 5
    ce_epochs: int = 15
    ce_batch_size: int = 512
    ce_lr: float = 1e-3
    analytic_events: int = 1_000_000
    hidden: tuple[int, ...] = field(default=(100, 100))


def _mlp(hidden: Sequence[int], n_out: int) -> nn.Module:
    layers: list[nn.Module] = []
    width = 3
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _data(n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    x = np.vstack([make_inferno_toy(n, rng, signal=True), make_inferno_toy(n, rng, signal=False)])
    y = np.concatenate([np.ones(n, np.int64), np.zeros(n, np.int64)])
    order = rng.permutation(2 * n)
    return x[order], y[order]


def _predict_bins(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[npt.NDArray[np.float32]], Any]:
    @torch.no_grad()
    def bins(x: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        t = torch.from_numpy(x)
        return torch.cat([fn(t[i : i + 262_144]) for i in range(0, t.shape[0], 262_144)]).numpy()

    return bins


def run_inferno_toy(cfg: InfernoToyConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Train and evaluate as the module docstring says; returns ``(values, details)``."""
    t0 = time.perf_counter()
    x_tr, y_tr = _data(cfg.n_train, 1_000)
    x_va, y_va = _data(cfg.n_val, 2_000)
    rng = np.random.default_rng(3_000)
    x_sig = make_inferno_toy(cfg.n_eval, rng, signal=True)
    x_bkg = make_inferno_toy(cfg.n_eval, rng, signal=False)
    ce_runs: list[list[float]] = []
    inferno_runs: dict[int, list[float]] = {k: [] for k in cfg.benchmarks}
    epochs_run: dict[str, list[int]] = {}
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        ce = _mlp(cfg.hidden, 1)
        train_classifier(
            ce, x_tr, y_tr, x_va, y_va, epochs=cfg.ce_epochs, batch_size=cfg.ce_batch_size, lr=cfg.ce_lr,
            patience=3, seed=seed, progress=False,
        )  # fmt: skip
        ce_bins = _predict_bins(lambda t: (torch.sigmoid(ce(t)[:, 0]) * 10).long().clamp(0, 9))  # noqa: B023
        ce_runs.append([binned_sigma(ce_bins, 10, k, x_sig, x_bkg) for k in range(5)])
        for k in cfg.benchmarks:
            torch.manual_seed(seed)
            net = inferno_mlp(3, cfg.n_bins, cfg.hidden)
            hist = train_classifier(
                net, x_tr, y_tr, x_va, y_va, strategy="inferno",
                strategy_options={
                    "signal_expected": SIGNAL, "background_expected": BACKGROUND,
                    "nuisances": list(BENCHMARK_NUISANCES[k]), "tau": cfg.tau, "signal_label": 1,
                },
                epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=cfg.patience,
                seed=seed, progress=False, monitor="val_sigma_mu",
            )  # fmt: skip
            epochs_run.setdefault(f"inferno_{k}", []).append(hist.epochs_run)
            inf_bins = _predict_bins(lambda t: net.bin_logits(t).argmax(dim=1))  # noqa: B023
            inferno_runs[k].append(binned_sigma(inf_bins, cfg.n_bins, k, x_sig, x_bkg))
    t_train = time.perf_counter() - t0
    analytic = [analytic_sigma(k, cfg.analytic_events) for k in range(5)]
    ce_med = np.median(np.asarray(ce_runs), axis=0)
    values: dict[str, float] = {}
    for k in range(5):
        if k in inferno_runs:
            values[f"inferno_sigma_{k}"] = float(np.median(inferno_runs[k]))
    for k in range(5):
        values[f"cross_entropy_sigma_{k}"] = float(ce_med[k])
    for k in range(5):
        values[f"analytic_sigma_{k}"] = analytic[k]
    details = {
        "inferno_sigma": [values.get(f"inferno_sigma_{k}", math.nan) for k in range(5)],
        "cross_entropy_sigma": [float(v) for v in ce_med],
        "analytic_sigma": analytic,
        "inferno_sigma_per_seed": {str(k): v for k, v in inferno_runs.items()},
        "inferno_sigma_std": {
            str(k): float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for k, v in inferno_runs.items()
        },
        "cross_entropy_sigma_per_seed": ce_runs,
        "paper_table_1": {k: list(v) for k, v in PAPER_TABLE.items()},
        "seeds": list(cfg.seeds),
        "n_initialisations": len(cfg.seeds),
        "epochs_run": epochs_run,
        "config": asdict(cfg),
        "seconds": {"training_and_evaluation": t_train, "total": time.perf_counter() - t0},
    }
    return values, details


def inferno_toy() -> tuple[dict[str, float], dict[str, Any]]:
    """Runner of the registered reproduction (default :class:`InfernoToyConfig`)."""
    return run_inferno_toy(InfernoToyConfig())


def _expected() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    expected: dict[str, float] = {}
    tolerance: dict[str, float] = {}
    floor: dict[str, float] = {}
    for k in range(5):
        expected[f"inferno_sigma_{k}"] = PAPER_TABLE["inferno"][k]
        tolerance[f"inferno_sigma_{k}"] = round(0.03 * PAPER_TABLE["inferno"][k], 3)  # the 3 %
        # One-sided: "within 3 % or better", but never below the analytic bound (less its MC tolerance).
        floor[f"inferno_sigma_{k}"] = round(PAPER_TABLE["analytic"][k] - 0.1, 3)
    for k in range(5):
        expected[f"cross_entropy_sigma_{k}"] = PAPER_TABLE["cross_entropy"][k]
        # The paper's spread of the CE classifier on benchmark 2 over 10 initialisations is ±0.36
        # (24.01 ± 0.36); ±3 of those (about 4.5 %) per benchmark, relative.
        tolerance[f"cross_entropy_sigma_{k}"] = round(3 * 0.36 / 24.01 * PAPER_TABLE["cross_entropy"][k], 3)
    for k in range(5):
        expected[f"analytic_sigma_{k}"] = PAPER_TABLE["analytic"][k]
        tolerance[f"analytic_sigma_{k}"] = 0.1  # Monte Carlo (1M draws) and the table's rounding
    return expected, tolerance, floor


_EXPECTED, _TOLERANCE, _FLOOR = _expected()

register(
    Reproduction(
        name="inferno",
        description=(
            "INFERNO 3-D synthetic benchmark: expected uncertainty on s after profiling, INFERNO k on "
            "benchmark k, the cross-entropy classifier (10 bins) and the analytic likelihood, benchmarks 0-4"
        ),
        source=(
            "P. de Castro, T. Dorigo, 'INFERNO: Inference-Aware Neural Optimisation', Comput. Phys. Commun. "
            "244 (2019) 170, arXiv:1806.04743, Table 1 (medians of 100 initialisations; CE spread from the "
            "text, 24.01 ± 0.36 on benchmark 2); toy definitions of the paper's code "
            "(pablodecm/paper-inferno)"
        ),
        expected=_EXPECTED,
        tolerance=_TOLERANCE,
        runner=inferno_toy,
        floor=_FLOOR,
    )
)
