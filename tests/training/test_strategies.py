"""Adversarial training and RDSA augmentation: objective improves, outputs physical, bad settings fail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
import torch.nn.functional as F

from aalearn.attacks import get_attack
from aalearn.attacks.rdsa import Marginals, rdsa_search
from aalearn.constraints import ConstraintSet, scaled_delta
from aalearn.models import TopoDNN, predict_logits
from aalearn.physics import challenge_features
from aalearn.training import train_classifier
from aalearn.training.strategies import (
    AdversarialTraining,
    RDSAAugmentation,
    _mixed_loss,
    _MixedLossMetrics,
    gradient_attack_names,
)
from aalearn.training.strategy import STRATEGIES, Strategy, TrainingData, get_strategy

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FS = challenge_features()
Data = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]


def _robust_vs_fragile(n: int = 1600, seed: int = 0) -> Data:
    """10-D: one strongly separating feature and nine weak ones that together separate well too.

    With σ = 0.5 and a 1σ L∞ budget the nine weak features can be pushed against the label
    by 0.5 each, which undoes their whole signal: a model that leans on them is fragile, one
    that leans on feature 0 is robust.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 10))
    x[:, 0] += 3.0 * (y - 0.5)
    x[:, 1:] += 0.8 * (y[:, None] - 0.5)
    x = x.astype(np.float32)
    cut = n * 3 // 4
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _accuracy_under_pgd(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    res = get_attack("pgd", eps=1.0, steps=10).run(model, x, y, sigma=0.5, seed=1)
    return float(np.mean(res.decision_adv == y))


def _small(n_features: int, seed: int = 1, **kw: Any) -> TopoDNN:
    torch.manual_seed(seed)
    return TopoDNN(n_features=n_features, hidden=kw.pop("hidden", (16,)), batchnorm_momentum=0.1, **kw)


def _labelled_jets(
    challenge_jets: Callable[..., np.ndarray], n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Challenge-layout jets labelled by a smooth function of their leading pT and width (learnable)."""
    x = challenge_jets(n, seed=seed, pad_every=4)
    score = x[:, FS.index("ConstPT_0")] / 0.075 - 1 + 2 * np.abs(x[:, FS.index("ConstPhi_1")])
    return x.astype(np.float32), (score > np.median(score)).astype(np.int64)


# --------------------------------------------------------------------------- adversarial training
@pytest.mark.slow
def test_adversarial_training_raises_accuracy_under_pgd() -> None:
    x_tr, y_tr, x_va, y_va = _robust_vs_fragile()
    kw: dict[str, Any] = {"epochs": 5, "batch_size": 64, "lr": 3e-3, "seed": 0, "progress": False}
    nominal, robust = _small(10), _small(10)
    train_classifier(nominal, x_tr, y_tr, x_va, y_va, **kw)
    h = train_classifier(
        robust,
        x_tr,
        y_tr,
        x_va,
        y_va,
        strategy="adversarial",
        strategy_options={"sigma": 0.5, "eps": 1.0, "steps": 5, "mix": 0.5},
        **kw,
    )
    acc_nominal, acc_robust = (
        _accuracy_under_pgd(nominal, x_va, y_va),
        _accuracy_under_pgd(robust, x_va, y_va),
    )
    assert acc_robust > acc_nominal + 0.08, (acc_nominal, acc_robust)
    # its own objective: the adversarial training loss falls over the epochs
    assert h.extra["adv_loss"][-1] < h.extra["adv_loss"][0] - 0.1
    assert h.extra["adv_accuracy"][-1] > h.extra["adv_accuracy"][0]
    assert h.strategy["attack"] == "pgd"
    assert h.strategy["attack_params"]["steps"] == 5


def test_adversaries_respect_budget_constraints_and_restore_the_model(
    challenge_jets: Callable[..., np.ndarray],
) -> None:
    x, y = _labelled_jets(challenge_jets, 64)
    model = _small(87, hidden=(16, 8), dropout=0.1).fit_input_scaling(x)
    model.train()
    strategy = AdversarialTraining(eps=1.0, steps=3)
    strategy.setup(model, TrainingData(x, y, {}, x[:8], y[:8], {}, seed=0))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).float()
    x_adv = strategy.adversaries(model, xt, yt)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert x_adv.shape == xt.shape
    assert x_adv.dtype == xt.dtype
    assert not x_adv.requires_grad
    sigma = torch.from_numpy(FS.sigma(x.astype(np.float64)))
    z = scaled_delta(x_adv.double(), xt.double(), sigma, torch.from_numpy(FS.periodic_mask))
    assert float(z.abs().max()) <= 1.0 + 1e-4
    assert float(z.abs().max()) > 0.5  # the attack moved the jets
    for name, viol in ConstraintSet.from_names(FS).check_numpy(x_adv.double().numpy(), x).items():
        assert not viol.any(), f"{int(viol.sum())} training adversaries violate {name}"
    model.eval()
    with torch.no_grad():
        clean = F.binary_cross_entropy_with_logits(model(xt), yt)
        adv = F.binary_cross_entropy_with_logits(model(x_adv), yt)
    assert float(adv) > float(clean)
    # the same torch RNG state gives the same adversaries
    gen = torch.Generator().manual_seed(3)
    a1 = strategy.adversaries(model, xt, yt, generator=gen)
    a2 = strategy.adversaries(model, xt, yt, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)


def test_adversarially_trained_jet_tagger_passes_the_attack_conformance_invariants(
    challenge_jets: Callable[..., np.ndarray],
) -> None:
    x, y = _labelled_jets(challenge_jets, 320, seed=3)
    model = _small(87, hidden=(32, 16)).fit_input_scaling(x[:256])
    h = train_classifier(
        model,
        x[:256],
        y[:256],
        x[256:],
        y[256:],
        strategy="adversarial",
        strategy_options={"eps": 1.0, "steps": 3, "val_rows": 32},
        epochs=2,
        batch_size=64,
        lr=3e-3,
        progress=False,
    )
    assert len(h.extra["val_adv_accuracy"]) == 2
    assert h.strategy["constraints"] == "default"
    res = get_attack("pgd", eps=1.0, steps=5).run(model, x[256:], y[256:], seed=0)
    assert res.feasible.all()
    assert res.unphysical_fraction == 0.0
    assert not any(v.any() for v in res.violations.values())
    for name, viol in ConstraintSet.from_names(FS).check_numpy(res.x_adv, res.x).items():
        assert not viol.any(), name
    z = scaled_delta(
        torch.from_numpy(res.x_adv),
        torch.from_numpy(res.x),
        torch.from_numpy(res.extra["sigma"]),
        torch.from_numpy(FS.periodic_mask),
    )
    assert float(z.abs().max()) <= 1.0 * (1 + 1e-4) + 1e-6
    decisions = (predict_logits(model, res.x_adv.astype(np.float32)) >= 0).astype(np.int64)
    assert np.array_equal(res.decision_adv, decisions)
    assert np.array_equal(res.success, res.attacked & (res.decision_adv != res.target))


def test_warm_up_epochs_train_clean_and_mix_zero_never_attacks() -> None:
    x_tr, y_tr, x_va, y_va = _robust_vs_fragile(n=256)
    kw: dict[str, Any] = {"epochs": 2, "batch_size": 64, "progress": False}
    h = train_classifier(
        _small(10), x_tr, y_tr, x_va, y_va, strategy="adversarial",
        strategy_options={"sigma": 0.5, "steps": 2, "start_epoch": 1}, **kw,
    )  # fmt: skip
    assert np.isnan(h.extra["adv_loss"][0])
    assert np.isfinite(h.extra["adv_loss"][1])
    s = AdversarialTraining(sigma=0.5, mix=0.0)
    calls: list[int] = []
    s.adversaries = lambda *a, **k: calls.append(1)  # type: ignore[method-assign]
    train_classifier(_small(10), x_tr, y_tr, x_va, y_va, strategy=s, **kw)
    assert calls == []


@pytest.mark.parametrize("attack", ["fgsm", "pgd-l2", "mifgsm"])
def test_other_gradient_attacks_train(attack: str) -> None:
    x_tr, y_tr, x_va, y_va = _robust_vs_fragile(n=192)
    opts: dict[str, Any] = {"sigma": 0.5, "attack": attack}
    if attack != "fgsm":
        opts["steps"] = 2
    h = train_classifier(
        _small(10),
        x_tr,
        y_tr,
        x_va,
        y_va,
        strategy="adversarial",
        strategy_options=opts,
        epochs=1,
        progress=False,
    )
    assert np.isfinite(h.extra["adv_loss"][0])
    assert h.strategy["attack"] == attack


# --------------------------------------------------------------------------- RDSA augmentation
def _correlated(n: int = 1200, seed: int = 0) -> Data:
    """3-D: class 1 has x0 ≈ x1, class 0 has x0 ≈ -x1 (same marginals), plus a weak marginal shift in x2."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = rng.normal(size=n)
    b = np.where(y == 1, a, -a) + 0.3 * rng.normal(size=n)
    c = rng.normal(size=n) + 1.0 * (y - 0.5)
    x = np.stack([a, b, c], axis=1).astype(np.float32)
    cut = n * 3 // 4
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _resampled_bce(model: torch.nn.Module, x_tr: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """BCE on RDSA resamplings (one feature re-drawn from the training marginals) of ``x``."""
    marg = Marginals.fit(x_tr)
    draws = [
        rdsa_search(
            x, lambda c, r: np.ones(len(r), bool), n_features=1, max_tries=1, marginals=marg, seed=s
        ).x_adv
        for s in range(5)
    ]
    xr = np.concatenate(draws).astype(np.float32)
    yr = np.tile(y, 5)
    logits = torch.from_numpy(predict_logits(model, xr))
    return float(F.binary_cross_entropy_with_logits(logits, torch.from_numpy(yr).float()))


@pytest.mark.parametrize("mode", ["epoch", "pool"])
def test_rdsa_augmentation_lowers_the_loss_on_resampled_jets(mode: str) -> None:
    x_tr, y_tr, x_va, y_va = _correlated()
    kw: dict[str, Any] = {"epochs": 6, "batch_size": 64, "lr": 3e-3, "seed": 0, "progress": False}
    nominal, augmented = _small(3, hidden=(32,)), _small(3, hidden=(32,))
    train_classifier(nominal, x_tr, y_tr, x_va, y_va, **kw)
    h = train_classifier(
        augmented, x_tr, y_tr, x_va, y_va, strategy="rdsa",
        strategy_options={"mode": mode, "n_features": 1, "mix": 0.5, "pool_size": 3}, **kw,
    )  # fmt: skip
    bce_nominal = _resampled_bce(nominal, x_tr, x_va, y_va)
    bce_augmented = _resampled_bce(augmented, x_tr, x_va, y_va)
    assert bce_augmented < bce_nominal - 0.02, (bce_nominal, bce_augmented)
    assert h.extra["adv_loss"][-1] < h.extra["adv_loss"][0]
    assert h.strategy["mode"] == mode


def test_rdsa_epoch_mode_redraws_every_epoch_reproducibly() -> None:
    x_tr, y_tr, x_va, y_va = _correlated(n=200)
    model = _small(3)
    s = RDSAAugmentation(n_features=2)
    s.setup(model, TrainingData(x_tr, y_tr, {}, x_va, y_va, {}, seed=4))
    s.start_epoch(model, 0)
    a0 = s._adv.clone()  # type: ignore[union-attr]
    s.start_epoch(model, 1)
    a1 = s._adv.clone()  # type: ignore[union-attr]
    s.start_epoch(model, 0)
    assert torch.equal(a0, s._adv)  # type: ignore[arg-type]
    assert not torch.equal(a0, a1)
    changed = (a0.numpy() != x_tr).sum(axis=1)
    assert changed.max() <= 2
    assert changed.mean() > 1
    assert np.all(a0.numpy() >= x_tr.min(axis=0))
    assert np.all(a0.numpy() <= x_tr.max(axis=0))


def test_rdsa_only_successful_uses_fooling_candidates() -> None:
    x_tr, y_tr, x_va, y_va = _correlated(n=240)
    model = _small(3)
    train_classifier(model, x_tr, y_tr, x_va, y_va, epochs=3, lr=3e-3, batch_size=32, progress=False)
    s = RDSAAugmentation(mode="epoch", n_features=2, only_successful=True, max_tries=5)
    s.setup(model, TrainingData(x_tr, y_tr, {}, x_va, y_va, {}, seed=0))
    s.start_epoch(model, 0)
    assert s._adv is not None
    adv = s._adv.numpy()
    changed = np.any(adv != x_tr, axis=1)
    decisions = (predict_logits(model, adv) >= 0).astype(np.int64)
    assert np.all(decisions[changed] != y_tr[changed])  # every changed jet fools the model
    assert 0 < changed.mean() == pytest.approx(s._success)
    for mode in ("epoch", "pool"):
        h = train_classifier(
            _small(3), x_tr, y_tr, x_va, y_va, strategy="rdsa", epochs=2, progress=False,
            strategy_options={"mode": mode, "only_successful": True, "n_features": 2, "max_tries": 3},
        )  # fmt: skip
        assert all(0.0 <= v <= 1.0 for v in h.extra["rdsa_success"])


def test_rdsa_candidates_on_jets_satisfy_the_physics_constraints(
    challenge_jets: Callable[..., np.ndarray],
) -> None:
    x, y = _labelled_jets(challenge_jets, 80)
    model = _small(87).fit_input_scaling(x)
    s = RDSAAugmentation(mode="pool", pool_size=2)
    s.setup(model, TrainingData(x, y, {}, x[:8], y[:8], {}, seed=0))
    assert s._pool is not None
    assert s._pool.shape == (2, 80, 87)
    cs = ConstraintSet.from_names(FS)
    for p in range(2):
        cand = s._pool[p].double().numpy()
        assert np.any(cand != x)
        for name, viol in cs.check_numpy(cand, x).items():
            assert not viol.any(), f"{int(viol.sum())} candidates violate {name}"


# --------------------------------------------------------------------------- registry and bad settings
def test_strategies_are_registered() -> None:
    assert {"nominal", "adversarial", "rdsa"} <= set(STRATEGIES)
    assert isinstance(get_strategy("adversarial", sigma=1.0), AdversarialTraining)
    assert isinstance(get_strategy("rdsa", mode="pool"), RDSAAugmentation)
    assert {"pgd", "fgsm", "mifgsm"} <= set(gradient_attack_names())
    assert "rdsa" not in gradient_attack_names()


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("adversarial", {"mix": 1.5}, r"mix .* \[0, 1\]"),
        ("adversarial", {"mix": -0.1}, r"mix .* \[0, 1\]"),
        ("rdsa", {"mix": 2.0}, r"mix .* \[0, 1\]"),
        ("adversarial", {"eps": -1.0}, "eps .* ≥ 0"),
        ("adversarial", {"eps": float("nan")}, "eps"),
        ("adversarial", {"attack": "pgdd"}, "unknown attack 'pgdd'.*gradient attacks: .*pgd"),
        ("adversarial", {"attack": "rdsa"}, "not a gradient attack.*'rdsa' strategy"),
        ("adversarial", {"steps": 0}, "steps"),
        ("adversarial", {"attack": "fgsm", "steps": 3}, "fgsm takes exactly one step"),
        ("adversarial", {"start_epoch": -1}, "start_epoch"),
        ("adversarial", {"sigma": [1.0, -1.0]}, "sigma"),
        ("adversarial", {"bogus": 1}, "bad settings for strategy 'adversarial'"),
        ("rdsa", {"mode": "batch"}, "mode must be 'epoch'"),
        ("rdsa", {"pool_size": 0}, "pool_size"),
        ("rdsa", {"n_features": 0}, "n_features"),
        ("rdsa", {"only_successful": "yes"}, "only_successful"),
        ("nope", {}, "unknown training strategy 'nope'; known strategies: .*adversarial.*nominal.*rdsa"),
    ],
)
def test_bad_settings_are_clear_errors(name: str, options: dict[str, Any], match: str) -> None:
    x_tr, y_tr, x_va, y_va = _robust_vs_fragile(n=64)
    with pytest.raises(ValueError, match=match):
        train_classifier(
            _small(10),
            x_tr,
            y_tr,
            x_va,
            y_va,
            strategy=name,
            strategy_options=options,
            epochs=1,
            progress=False,
        )


def test_generic_inputs_need_sigma_for_adversarial_training() -> None:
    x_tr, y_tr, x_va, y_va = _robust_vs_fragile(n=64)
    with pytest.raises(ValueError, match=r"needs the budget's units: pass strategy_options=\{'sigma'"):
        train_classifier(_small(10), x_tr, y_tr, x_va, y_va, strategy="adversarial", epochs=1, progress=False)
    with pytest.raises(ValueError, match="sigma has 3 entries but the data has 10 features"):
        train_classifier(
            _small(10), x_tr, y_tr, x_va, y_va, strategy="adversarial",
            strategy_options={"sigma": [1.0, 1.0, 1.0]}, epochs=1, progress=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="physics constraints need a FeatureSet"):
        train_classifier(
            _small(10), x_tr, y_tr, x_va, y_va, strategy="adversarial",
            strategy_options={"sigma": 1.0, "constraints": ["pt-nonnegative"]}, epochs=1, progress=False,
        )  # fmt: skip


def test_missing_aux_is_a_clear_error() -> None:
    class NeedsZ(Strategy):
        name = "needs-z-test"
        requires_aux = ("z",)

    x_tr, y_tr, x_va, y_va = _robust_vs_fragile(n=64)
    with pytest.raises(
        ValueError, match=r"needs the per-row auxiliary array\(s\) \['z'\].*aux_train=\{'z': \.\.\.\}"
    ):
        train_classifier(_small(10), x_tr, y_tr, x_va, y_va, strategy=NeedsZ(), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"aux_train\['z'\] must have one entry per row"):
        train_classifier(
            _small(10), x_tr, y_tr, x_va, y_va, strategy=NeedsZ(), aux_train={"z": np.zeros(3)}, epochs=1,
            progress=False,
        )  # fmt: skip


# --------------------------------------------------------------------------- sample weights
def test_weighted_mixed_loss_equals_the_weighted_bce_by_hand() -> None:
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(size=(40, 3)).astype(np.float32))
    x_adv = x + torch.from_numpy(rng.normal(scale=0.5, size=(40, 3)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, 40).astype(np.float32))
    w = torch.from_numpy(rng.uniform(0.0, 3.0, 40).astype(np.float32))
    model = _small(3).eval()  # eval: batch normalisation uses its running statistics in both passes
    metrics = _MixedLossMetrics()
    got = _mixed_loss(model, x, x_adv, y, 0.3, metrics, w)
    # independent reference in float64 numpy
    zc = predict_logits(model, x.numpy()).astype(np.float64).ravel()
    za = predict_logits(model, x_adv.numpy()).astype(np.float64).ravel()
    yy, ww = y.numpy().astype(np.float64), w.numpy().astype(np.float64)

    def wbce(z: np.ndarray) -> float:
        ell = np.logaddexp(0.0, z) - yy * z  # −[y log σ(z) + (1−y) log(1−σ(z))]
        return float(np.sum(ww * ell) / np.sum(ww))

    assert got.item() == pytest.approx(0.7 * wbce(zc) + 0.3 * wbce(za), rel=1e-5)
    acc = np.sum(ww * ((za >= 0) == yy)) / np.sum(ww)
    assert metrics.means()["adv_accuracy"] == pytest.approx(acc, rel=1e-9)
    # equal weights give the unweighted loss
    ones = _mixed_loss(model, x, x_adv, y, 0.3, _MixedLossMetrics(), torch.full((40,), 2.5))
    plain = _mixed_loss(model, x, x_adv, y, 0.3, _MixedLossMetrics())
    assert ones.item() == pytest.approx(plain.item(), rel=1e-6)


@pytest.mark.parametrize(
    ("strategy", "options"),
    [
        ("rdsa", {"n_features": 1, "mix": 0.5}),
        ("adversarial", {"sigma": 0.2, "eps": 1.0, "steps": 3, "mix": 0.5}),
    ],
)
def test_class_weights_shift_robust_training_like_nominal_training(
    strategy: str, options: dict[str, Any]
) -> None:
    # overlapping classes: class 1 weighted ten times multiplies its prior odds by 10, so the mean
    # P(label = 1) on validation jets must rise; a strategy that dropped the weights gives no shift
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 800)
    x = (rng.normal(size=(800, 4)) + 0.5 * (y[:, None] - 0.5)).astype(np.float32)
    x_tr, y_tr, x_va, y_va = x[:600], y[:600], x[600:], y[600:]
    kw: dict[str, Any] = {
        "epochs": 6, "batch_size": 64, "lr": 3e-3, "seed": 0, "progress": False,
        "strategy": strategy, "strategy_options": options,
    }  # fmt: skip
    plain, weighted = _small(4, hidden=(16, 8)), _small(4, hidden=(16, 8))
    train_classifier(plain, x_tr, y_tr, x_va, y_va, **kw)
    train_classifier(
        weighted, x_tr, y_tr, x_va, y_va,
        sample_weight=np.where(y_tr == 1, 10.0, 1.0), sample_weight_val=np.where(y_va == 1, 10.0, 1.0), **kw,
    )  # fmt: skip
    p_plain = 1 / (1 + np.exp(-predict_logits(plain, x_va)))
    p_weighted = 1 / (1 + np.exp(-predict_logits(weighted, x_va)))
    assert p_weighted.mean() > p_plain.mean() + 0.08, (p_plain.mean(), p_weighted.mean())
