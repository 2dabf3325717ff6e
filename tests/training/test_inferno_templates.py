"""INFERNO with templates from separate varied samples: row-paired base loss, closed form, training."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from aalearn.training import inferno_templates, train_classifier
from aalearn.training.inferno import InfernoStrategy, SoftBinClassifier, asimov_fisher, soft_histogram
from aalearn.training.inferno_templates import InfernoTemplateStrategy
from aalearn.training.strategy import Batch, TrainingData, get_strategy

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _toy(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """2-D Gaussians: signal (label 0) at (1, 1), background (label 1) at (0, 0) moved by ``shift``."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 0, 1.0, 0.0)
    x[y == 1, 0] += shift
    return x.astype(np.float64), y


def _toy_with_z(n: int, seed: int, order_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nominal, up and down toys (background shifted by 0 / +0.6 / −0.6) in random order.

    Returns float32 features, labels and the aux ``z`` (0 nominal, +1 up, −1 down), as
    `aalearn train --nuisance-file` gives the varied samples with the training data.
    """
    parts = [_toy(n, seed), _toy(n, seed + 1, shift=0.6), _toy(n, seed + 2, shift=-0.6)]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32)
    y = np.concatenate([p[1] for p in parts])
    z = np.repeat([0.0, 1.0, -1.0], n)
    order = np.random.default_rng(order_seed).permutation(len(y))
    return x[order], y[order], z[order]


def _net(seed: int = 0, n_bins: int = 4) -> SoftBinClassifier:
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, n_bins))
    return SoftBinClassifier(body, n_bins).double()


def test_template_loss_equals_the_row_paired_base_loss() -> None:
    # Background-only histosys: with the varied rows handed over as templates, the Fisher
    # information must be the base class's on the same rows given as row-paired aux arrays.
    # Tolerance 1e-10 relative: the same float64 arithmetic in another order.
    x, y = _toy(64, 0)
    x_up, x_dn = x.copy(), x.copy()
    x_up[:, 0] += 0.4
    x_dn[:, 0] -= 0.3
    net = _net()
    base = InfernoStrategy(
        100,
        1000,
        [
            {"name": "fsr", "kind": "histosys", "up": "x_up", "down": "x_down"},
            {"name": "bn", "kind": "normsys", "up": 1.1, "down": 0.9},
        ],
    )
    mine = InfernoTemplateStrategy(
        100,
        1000,
        [
            {"name": "fsr", "kind": "histosys", "up": "up", "down": "down"},
            {"name": "bn", "kind": "normsys", "up": 1.1, "down": 0.9},
        ],
        histogram="softmax",
    )
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    aux = {"x_up": torch.as_tensor(x_up), "x_down": torch.as_tensor(x_dn)}
    expected = base.fisher(net, xt, yt, aux)
    got = mine.fisher(net, xt, yt, {}, templates={"up": (aux["x_up"], yt), "down": (aux["x_down"], yt)})
    assert expected is not None
    assert got is not None
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-10)
    # and the loss (σ_μ) with its gradient in the weights
    var_b = torch.linalg.inv(expected)[0, 0]
    var_m = torch.linalg.inv(got)[0, 0]
    g_b = torch.autograd.grad(var_b, list(net.parameters()))
    g_m = torch.autograd.grad(var_m, list(net.parameters()))
    for a, b in zip(g_m, g_b, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


def test_nuisance_on_both_samples_equals_the_closed_form() -> None:
    # One parameter shifting signal and background together, and a one-sided (mirrored) one.
    # At the Asimov point
    # ∂n/∂α = Σ_samples (up − down)/2 (code4p at 0), ∂n/∂μ = S, and I = JᵀD(1/n)J + diag(0, 1, 1).
    # Separate varied samples (not row-paired): different draws. Tolerance 1e-9 relative.
    x, y = _toy(80, 1)
    x_up, y_up = _toy(80, 2, shift=0.5)
    x_dn, y_dn = _toy(80, 3, shift=-0.5)
    x_up[y_up == 0, 1] += 0.3  # the signal moves too
    net = _net(1)
    x_tune, y_tune = _toy(80, 4, shift=0.2)
    s = InfernoTemplateStrategy(
        50,
        500,
        [
            {"name": "fsr", "kind": "histosys", "sample": "both", "up": "u", "down": "d"},
            {"name": "tune", "kind": "histosys", "up": "t", "down": "mirror"},  # one-sided, background
        ],
        histogram="softmax",
    )
    t = {
        k: (torch.as_tensor(a), torch.as_tensor(b))
        for k, a, b in (("u", x_up, y_up), ("d", x_dn, y_dn), ("t", x_tune, y_tune))
    }
    info = s.fisher(net, torch.as_tensor(x), torch.as_tensor(y), {}, templates=t)
    assert info is not None

    def h(arr: np.ndarray, lab: np.ndarray, label: int, total: float) -> torch.Tensor:
        rows = torch.as_tensor(arr[lab == label])
        return soft_histogram(net.bin_logits(rows), 0.1).detach() * total / rows.shape[0]

    sig, bkg = h(x, y, 0, 50), h(x, y, 1, 500)
    d_alpha = (
        h(x_up, y_up, 0, 50) - h(x_dn, y_dn, 0, 50) + h(x_up, y_up, 1, 500) - h(x_dn, y_dn, 1, 500)
    ) / 2
    d_tune = h(x_tune, y_tune, 1, 500) - bkg  # mirrored: (up − (2 nominal − up)) / 2
    jac = torch.stack([sig, d_alpha, d_tune], 1)
    closed = asimov_fisher(sig + bkg, jac, torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))
    np.testing.assert_allclose(info.detach().numpy(), closed.numpy(), rtol=1e-9)
    assert s.parameter_names == ["mu", "fsr", "tune"]


def test_short_training_from_separate_varied_samples_lowers_sigma_mu() -> None:
    # The varied samples come with the training data (aux "z": 0 nominal, +1 up, −1 down),
    # as `aalearn train --nuisance-file` gives them. A one-output network (KDE histogram of
    # the score). Asserted: the validation σ_μ after 6 epochs is at least 10 % below the
    # first epoch's (measured: 0.327 → 0.270, 17 %, on this toy, seed 0).
    x, y, z = _toy_with_z(1200, 10, order_seed=0)
    n_tr = 2700
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    strategy = get_strategy(
        "inferno-templates",
        signal_expected=100,
        background_expected=1000,
        nuisances=[{"name": "shape", "kind": "histosys", "sample": "both", "up": 1, "down": -1}],
        n_bins=5,
        bandwidth=0.1,
    )
    hist = train_classifier(
        net,
        x[:n_tr],
        y[:n_tr],
        x[n_tr:],
        y[n_tr:],
        aux_train={"z": z[:n_tr]},
        aux_val={"z": z[n_tr:]},
        strategy=strategy,
        epochs=6,
        batch_size=256,
        lr=3e-3,
        patience=6,
        progress=False,
        monitor="val_sigma_mu",
    )
    sigma = hist.extra["val_sigma_mu"]
    assert len(sigma) == 6
    assert min(sigma[1:]) < 0.9 * sigma[0], sigma


# ---------------------------------------------------------------------------- sample weights
#: Per class, the integer weights of the weighted rows: 0 to 3, summing to 13 (13 copies).
_MULTISET = np.array([0, 1, 2, 3, 1, 2, 3, 1])
_NUISANCES_W: list[dict[str, Any]] = [
    {"name": "fsr", "kind": "histosys", "sample": "both", "up": "u", "down": "d"},
    {"name": "tune", "kind": "histosys", "up": "t", "down": "mirror"},  # one-sided, background
    {"name": "sh", "kind": "shift", "sample": "signal", "column": 0, "nominal": 0.0, "sigma": 0.3},
    {"name": "bn", "kind": "normsys", "up": 1.1, "down": 0.9},
]


def _rows(seed: int, weighted: bool, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of both classes with their integer weights: 8 weighted rows per class, or 13 of weight 1."""
    rng = np.random.default_rng(seed)
    n = len(_MULTISET) if weighted else int(_MULTISET.sum())
    x, y = _toy(2 * n, seed, shift)
    w = np.concatenate([rng.permutation(_MULTISET) for _ in range(2)]) if weighted else np.ones(2 * n)
    return torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(w.astype(np.float64))


def _copies(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    repeat = w.long()
    return x.repeat_interleave(repeat, 0), y.repeat_interleave(repeat, 0)


def _strategy_and_net(histogram: str) -> tuple[InfernoTemplateStrategy, nn.Module]:
    s = InfernoTemplateStrategy(50, 500, _NUISANCES_W, histogram=histogram, n_bins=4, bandwidth=0.2)
    if histogram == "softmax":
        return s, _net(5)
    torch.manual_seed(5)
    return s, nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()


@pytest.mark.parametrize("histogram", ["softmax", "kde"])
@pytest.mark.parametrize("weighted", ["nominal", "templates", "both"])
def test_integer_weights_count_rows_as_copies(weighted: str, histogram: str) -> None:
    # Integer weights on the nominal rows, on the varied (template) rows or on both give the
    # Fisher information, σ_μ and its gradient of the rows repeated that many times (rows of
    # weight 0 left out). Each class holds 13 copies in all, so the copied run is a plain
    # unweighted call (equal row counts); the weighted run has 8 weighted rows against 13
    # unweighted ones where only one side is weighted, so each histogram must be scaled by
    # its own Σw. A signal shift (re-histogrammed rows), a shared histosys and a mirrored
    # one reach every path. Tolerance 1e-9 relative: float64 sums in another order.
    nominal_w, template_w = weighted in ("nominal", "both"), weighted in ("templates", "both")
    x, y, w = _rows(20, nominal_w)
    parts = {
        "u": _rows(21, template_w, 0.5),
        "d": _rows(22, template_w, -0.5),
        "t": _rows(23, template_w, 0.2),
    }
    s, net = _strategy_and_net(histogram)
    templates = {k: (tx, ty, tw) if template_w else (tx, ty) for k, (tx, ty, tw) in parts.items()}
    got = s.fisher(net, x, y, {}, weight=w if nominal_w else None, templates=templates)
    x_c, y_c = _copies(x, y, w)
    expected = s.fisher(net, x_c, y_c, {}, templates={k: _copies(*v) for k, v in parts.items()})
    assert got is not None
    assert expected is not None
    assert torch.isfinite(expected).all()
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9 * float(expected.detach().abs().max()))
    sigma_got = torch.linalg.inv(got)[0, 0].sqrt()
    sigma_exp = torch.linalg.inv(expected)[0, 0].sqrt()
    torch.testing.assert_close(sigma_got, sigma_exp, rtol=1e-10, atol=0.0)
    grads_got = torch.autograd.grad(sigma_got, list(net.parameters()))
    grads_exp = torch.autograd.grad(sigma_exp, list(net.parameters()))
    for a, b in zip(grads_got, grads_exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    # the weights matter: the same rows unweighted (equal counts when both are weighted) differ
    if weighted == "both":
        plain = s.fisher(net, x, y, {}, templates={k: (tx, ty) for k, (tx, ty, _) in parts.items()})
        assert plain is not None
        assert not torch.allclose(plain, expected, rtol=1e-3)


def test_constant_weights_change_nothing() -> None:
    # Weights all equal to a constant (a different one for the nominal and each varied sample)
    # give the unweighted Fisher information: every histogram is divided by its own Σw, so
    # scaling a template by the nominal rows' Σw (or by none) would fail this. Tolerance 1e-12.
    x, y, _ = _rows(30, False)
    parts = {"u": _rows(31, False, 0.5), "d": _rows(32, False, -0.5), "t": _rows(33, False, 0.2)}
    s, net = _strategy_and_net("softmax")
    plain = s.fisher(net, x, y, {}, templates={k: (tx, ty) for k, (tx, ty, _) in parts.items()})
    consts = {"u": 0.4, "d": 3.0, "t": 7.5}
    weighted = s.fisher(
        net, x, y, {}, weight=torch.full_like(y, 2.5, dtype=torch.float64),
        templates={k: (tx, ty, torch.full_like(tw, consts[k])) for k, (tx, ty, tw) in parts.items()},
    )  # fmt: skip
    assert plain is not None
    assert weighted is not None
    torch.testing.assert_close(weighted, plain, rtol=1e-12, atol=1e-12 * float(plain.detach().abs().max()))


def test_zero_weight_in_a_class_gives_no_information_not_nan() -> None:
    x, y, w = _rows(40, True)
    parts = {k: _rows(41 + i, True) for i, k in enumerate(("u", "d", "t"))}
    s, net = _strategy_and_net("softmax")
    templates = {k: (tx, ty, tw) for k, (tx, ty, tw) in parts.items()}
    zero_bkg = torch.where(y == 1, 0.0, w)
    assert s.fisher(net, x, y, {}, weight=zero_bkg, templates=templates) is None
    tx, ty, tw = parts["u"]
    templates["u"] = (tx, ty, torch.where(ty == 0, 0.0, tw))  # no signal weight in the up sample
    assert s.fisher(net, x, y, {}, weight=w, templates=templates) is None
    # through setup and the loss: such a batch gives 0 (no step), not NaN; the weighted
    # validation σ_μ (templates= arrays count with weight 1) is finite
    arrays = {k: (tx.numpy(), ty.numpy()) for k, (tx, ty, _) in parts.items()}
    s2 = InfernoTemplateStrategy(50, 500, _NUISANCES_W, templates=arrays, histogram="softmax")
    net2 = _net(5)
    x_np, y_np = x.numpy().astype(np.float32), y.numpy()
    s2.setup(net2, TrainingData(x_np, y_np, {}, x_np, y_np, {}, weight=w.numpy(), weight_val=w.numpy()))
    batch = Batch(x=x, y=y.double(), index=torch.arange(len(y)), aux={}, weight=zero_bkg)
    assert float(s2.loss(net2, batch).detach()) == 0.0
    assert math.isfinite(s2.epoch_metrics()["val_sigma_mu"])
    # a varied sample whose rows of one class all weigh 0 holds no pool: refused in setup
    tr = _z_data(False, 9)
    w_tr = np.where((tr[2] == 1.0) & (tr[1] == 0), 0.0, tr[3])
    s3 = InfernoTemplateStrategy(50, 500, [{"name": "f", "kind": "histosys", "up": 1, "down": -1}])
    with pytest.raises(ValueError, match="varied sample '1' has no signal rows of positive weight"):
        s3.setup(_net(), TrainingData(tr[0], tr[1], {"z": tr[2]}, tr[0], tr[1], {"z": tr[2]}, weight=w_tr))


def _z_data(copies: bool, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nominal (z = 0) and varied (z = ±1) rows with integer weights, or those rows copied (weights 1).

    Per class: 3 nominal rows of weights 1, 2, 4 and 4 rows of each varied sample of weights
    0, 1, 3, 3 (7 copies each): the pools hold the 3 rows of positive weight, so a weighted
    batch of 3 nominal rows per class draws every pooled row, as the copied batch (7 rows)
    draws every copied one.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for z_value, mult, shift in ((0.0, [1, 2, 4], 0.0), (1.0, [0, 1, 3, 3], 0.5), (-1.0, [0, 1, 3, 3], -0.5)):
        x_z, y_z = _toy(2 * len(mult), seed + int(3 * z_value) + 5, shift)
        w_z = np.concatenate([rng.permutation(mult) for _ in range(2)]).astype(np.float64)
        parts.append((x_z, y_z, np.full(len(y_z), z_value), w_z))
    x, y, z, w = (np.concatenate(a) for a in zip(*parts, strict=True))
    if copies:
        rep = w.astype(np.int64)
        x, y, z, w = np.repeat(x, rep, 0), np.repeat(y, rep), np.repeat(z, rep), np.ones(int(rep.sum()))
    return x.astype(np.float32), y, z, w


def test_pools_and_validation_carry_the_weights_of_their_rows() -> None:
    # Through setup (pools of varied rows from the training data's z, validation draw from
    # aux_val) and the loop hooks: the batch σ_μ (loss) and the validation σ_μ of integer-
    # weighted rows equal those of the copied rows, and differ from the unweighted ones.
    nuisances = [
        {"name": "fsr", "kind": "histosys", "sample": "both", "up": 1, "down": -1},
        {"name": "tune", "kind": "histosys", "up": 1, "down": "mirror"},
    ]
    results = {}
    for case in ("weighted", "copies", "plain"):
        s = InfernoTemplateStrategy(50, 500, nuisances, histogram="softmax")
        net = _net(6)
        tr, va = _z_data(case == "copies", 50), _z_data(case == "copies", 60)
        data = TrainingData(
            tr[0], tr[1], {"z": tr[2]}, va[0], va[1], {"z": va[2]}, seed=1,
            weight=tr[3] if case == "weighted" else None, weight_val=va[3] if case == "weighted" else None,
        )  # fmt: skip
        if case == "plain":  # the weight-0 rows are rows here: drop them to keep the pools drawn whole
            keep_tr, keep_va = tr[3] > 0, va[3] > 0
            data = TrainingData(
                tr[0][keep_tr], tr[1][keep_tr], {"z": tr[2][keep_tr]}, va[0][keep_va], va[1][keep_va],
                {"z": va[2][keep_va]}, seed=1,
            )  # fmt: skip
        s.setup(net, data)
        s.start_epoch(net, 0)
        batch = Batch(
            x=torch.as_tensor(data.X, dtype=torch.float64),
            y=torch.as_tensor(data.y, dtype=torch.float64),
            index=torch.arange(len(data.y)),
            aux={"z": torch.as_tensor(data.aux["z"], dtype=torch.float64)},
            weight=None if data.weight is None else torch.as_tensor(data.weight),
        )
        loss = s.loss(net, batch)
        results[case] = (loss.detach(), s.epoch_metrics()["val_sigma_mu"])
    loss_w, val_w = results["weighted"]
    loss_c, val_c = results["copies"]
    torch.testing.assert_close(loss_w, loss_c, rtol=1e-10, atol=0.0)
    assert val_w == pytest.approx(val_c, rel=1e-10)
    assert math.isfinite(val_w)
    assert not torch.allclose(loss_w, results["plain"][0], rtol=1e-3)
    assert val_w != pytest.approx(results["plain"][1], rel=1e-3)


def test_constant_sample_weights_through_setup_change_nothing() -> None:
    # All training and validation weights equal to 0.7: the same pools and draws as the
    # unweighted run, and the same batch and validation σ_μ (tolerance 1e-10 relative).
    nuisances = [{"name": "fsr", "kind": "histosys", "sample": "both", "up": 1, "down": -1}]
    out = []
    for weighted in (False, True):
        s = InfernoTemplateStrategy(50, 500, nuisances, histogram="kde", n_bins=4, bandwidth=0.2)
        torch.manual_seed(7)
        net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
        tr, va = _z_data(True, 70), _z_data(True, 80)
        s.setup(net, TrainingData(
            tr[0], tr[1], {"z": tr[2]}, va[0], va[1], {"z": va[2]}, seed=3,
            weight=np.full(len(tr[1]), 0.7) if weighted else None,
            weight_val=np.full(len(va[1]), 0.7) if weighted else None,
        ))  # fmt: skip
        batch = Batch(
            x=torch.as_tensor(tr[0], dtype=torch.float64), y=torch.as_tensor(tr[1], dtype=torch.float64),
            index=torch.arange(len(tr[1])), aux={"z": torch.as_tensor(tr[2])},
            weight=torch.full((len(tr[1]),), 0.7, dtype=torch.float64) if weighted else None,
        )  # fmt: skip
        out.append((float(s.loss(net, batch).detach()), s.epoch_metrics()["val_sigma_mu"]))
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-10)
    assert out[1][1] == pytest.approx(out[0][1], rel=1e-10)


def _loop_data() -> tuple[np.ndarray, ...]:
    x, y, z = _toy_with_z(400, 90, order_seed=1)
    w = np.random.default_rng(2).uniform(0.2, 3.0, len(y))
    return x, y, z, w


def test_training_loop_accepts_sample_weights() -> None:
    # Refused by the loop before ("does not support sample weights"): now a weighted run
    # records a finite validation σ_μ, different from the unweighted run's (same seed).
    x, y, z, w = _loop_data()
    n_tr = 900
    sigma = []
    for weighted in (False, True):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        strategy = get_strategy(
            "inferno-templates",
            nuisances=[{"name": "shape", "kind": "histosys", "sample": "both", "up": 1, "down": -1}],
            n_bins=4,
            bandwidth=0.2,
        )
        hist = train_classifier(
            net, x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:], aux_train={"z": z[:n_tr]}, aux_val={"z": z[n_tr:]},
            strategy=strategy, epochs=1, batch_size=300, progress=False,
            sample_weight=w[:n_tr] if weighted else None, sample_weight_val=w[n_tr:] if weighted else None,
        )  # fmt: skip
        sigma.append(hist.extra["val_sigma_mu"][0])
    assert all(math.isfinite(v) for v in sigma)
    assert sigma[1] != pytest.approx(sigma[0], rel=1e-4)


def test_cli_train_reweights_the_template_strategy(tmp_path: Path, challenge_jets: Any) -> None:
    # `aalearn train --strategy inferno-templates --reweight-to` (refused with one line before):
    # the nominal and varied jets are reweighted to the reference and the run completes.
    from typer.testing import CliRunner

    from aalearn.cli.main import app
    from aalearn.data.dataset import JetDataset
    from aalearn.data.io import save_dataset
    from aalearn.physics.features import challenge_feature_names

    names = tuple(challenge_feature_names())
    files = {}
    for key, n, seed, labels in (("train", 200, 1, None), ("up", 200, 2, None), ("down", 200, 3, None),
                                 ("ref", 400, 4, (np.arange(400) // 2) % 2)):  # fmt: skip
        files[key] = tmp_path / f"{key}.feather"
        lab = np.arange(n) % 2 if labels is None else labels
        save_dataset(JetDataset(challenge_jets(n, seed=seed).astype(np.float32), lab, names), files[key])
    nuisances = json.dumps([{"name": "fsr", "kind": "histosys", "sample": "both", "up": 1, "down": -1}])
    res = CliRunner().invoke(
        app,
        ["train", "--data", str(files["train"]), "--nuisance-file", f"1={files['up']}",
         "--nuisance-file", f"-1={files['down']}", "--strategy", "inferno-templates",
         "-o", f"nuisances={nuisances}", "-o", "n_bins=4", "-o", "bandwidth=0.2",
         "--reweight-to", str(files["ref"]), "--reweight-bins", "4", "--epochs", "1", "--no-progress",
         "--out", str(tmp_path / "m.safetensors"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["strategy"] == "inferno-templates"
    assert "reweighted_to" in out
    assert (tmp_path / "m.safetensors").is_file()


# ---------------------------------------------------------------------------- empty bins
#: Varied samples of the empty-bin tests: name and background shift.
_SHIFTS = (("u", 0.5), ("d", -0.5), ("t", 0.2))


class _HighScore(nn.Module):
    """A one-output tagger whose score σ(logit) lies in [0.6, 0.99] (KDE bins near 0 stay empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logit(0.6 + 0.39 * torch.sigmoid(self.lin(x)[:, 0]))


def test_an_empty_kde_bin_gives_a_finite_sigma_and_gradients() -> None:
    # The reproducer: a float32 tagger whose scores all lie in [0.6, 1], a KDE histogram of 5
    # bins with bandwidth 0.05: bin 0 is exactly empty in every histogram. Was NaN (0·log 0 in the
    # Asimov NLL); now σ_μ, the Fisher information and the weights' gradient are finite.
    s = InfernoTemplateStrategy(50, 500, _NUISANCES_W, histogram="kde", n_bins=5, bandwidth=0.05)
    torch.manual_seed(3)
    net = _HighScore()
    x, y = (torch.as_tensor(a) for a in _toy(200, 60))
    parts = {k: _toy(200, 61 + i, shift) for i, (k, shift) in enumerate(_SHIFTS)}
    templates = {k: (torch.as_tensor(a).float(), torch.as_tensor(b)) for k, (a, b) in parts.items()}
    x = x.float()
    for rows in (x, *(t for t, _ in templates.values())):
        assert float(s.histogram(net, rows)[0].detach()) == 0.0
    info = s.fisher(net, x, y, {}, templates=templates)
    assert info is not None
    assert torch.isfinite(info).all()
    sigma = torch.linalg.inv(info)[0, 0].sqrt()
    assert math.isfinite(float(sigma.detach()))
    grads = torch.autograd.grad(sigma, list(net.parameters()))
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_sigma_with_an_empty_bin_equals_sigma_without_it() -> None:
    # float64: a softmax network whose output 0 underflows (bin 0 exactly empty in the nominal
    # and every varied histogram), with a histosys on both samples and a mirrored one. Against
    # (a) the network with output 0 removed (bitwise the same probabilities in the other bins)
    # and (b) the Asimov Fisher built by hand in numpy over the non-empty bins: ∂n/∂μ = S,
    # ∂n/∂α = Σ (up − down)/2 (code4p at 0), mirrored: up − nominal. Tolerance 1e-10 relative.
    x, y = _toy(120, 70)
    parts = {k: _toy(120, 71 + i, shift) for i, (k, shift) in enumerate(_SHIFTS)}
    templates = {k: (torch.as_tensor(a), torch.as_tensor(b)) for k, (a, b) in parts.items()}
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    nuisances = _NUISANCES_W[:2]  # fsr on both samples, mirrored tune
    s = InfernoTemplateStrategy(50, 500, nuisances, histogram="softmax")  # code4p of the templates as given
    full = _net(6)
    with torch.no_grad():
        full.body[2].bias[0] = -1e4
    dropped = _net(6, n_bins=3)
    with torch.no_grad():
        dropped.body[0].load_state_dict(full.body[0].state_dict())
        dropped.body[2].weight.copy_(full.body[2].weight[1:])
        dropped.body[2].bias.copy_(full.body[2].bias[1:])
    info_full = s.fisher(full, xt, yt, {}, templates=templates)
    info_dropped = s.fisher(dropped, xt, yt, {}, templates=templates)
    assert info_full is not None
    assert info_dropped is not None
    sigma_full = torch.linalg.inv(info_full)[0, 0].sqrt()
    sigma_dropped = torch.linalg.inv(info_dropped)[0, 0].sqrt()
    assert float(sigma_full.detach()) == pytest.approx(float(sigma_dropped.detach()), rel=1e-10)

    def h(arr: np.ndarray, lab: np.ndarray, label: int, total: float) -> np.ndarray:
        rows = torch.as_tensor(arr[lab == label])
        out = soft_histogram(full.bin_logits(rows), 0.1).detach().numpy() * total / rows.shape[0]
        assert out[0] == 0.0
        return out[1:]  # the non-empty bins

    (xu, yu), (xd, yd), (xtu, ytu) = parts["u"], parts["d"], parts["t"]
    sig, bkg = h(x, y, 0, 50), h(x, y, 1, 500)
    d_alpha = (h(xu, yu, 0, 50) - h(xd, yd, 0, 50) + h(xu, yu, 1, 500) - h(xd, yd, 1, 500)) / 2
    d_tune = h(xtu, ytu, 1, 500) - bkg
    jac = np.stack([sig, d_alpha, d_tune], 1)
    info = jac.T @ (jac / (sig + bkg)[:, None]) + np.diag([0.0, 1.0, 1.0])
    assert float(sigma_full.detach()) == pytest.approx(math.sqrt(np.linalg.inv(info)[0, 0]), rel=1e-10)
    # the gradient in the weights: finite, none for the empty output, the dropped network's elsewhere
    g_full = torch.autograd.grad(sigma_full, list(full.parameters()))
    g_dropped = torch.autograd.grad(sigma_dropped, list(dropped.parameters()))
    assert all(bool(torch.isfinite(g).all()) for g in g_full)
    assert float(g_full[2][0].abs().max()) == 0.0
    for a, b in ((g_full[0], g_dropped[0]), (g_full[1], g_dropped[1]), (g_full[2][1:], g_dropped[2])):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_training_with_an_empty_kde_bin_keeps_the_weights_finite() -> None:
    # The KDE reproducer through the loop (varied rows from the training data's z): was NaN
    # loss, NaN weights and "training diverged" in the first epoch.
    x, y, z = _toy_with_z(400, 80, order_seed=3)
    torch.manual_seed(0)
    net = _HighScore()
    strategy = get_strategy(
        "inferno-templates",
        nuisances=[{"name": "shape", "kind": "histosys", "sample": "both", "up": 1, "down": -1}],
        n_bins=5,
        bandwidth=0.05,
    )
    hist = train_classifier(
        net, x[:900], y[:900], x[900:], y[900:], aux_train={"z": z[:900]}, aux_val={"z": z[900:]},
        strategy=strategy, epochs=2, batch_size=300, lr=1e-2, progress=False,
    )  # fmt: skip
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())
    assert all(math.isfinite(v) for v in hist.train_loss)
    assert all(math.isfinite(v) for v in hist.extra["val_sigma_mu"])
    assert isinstance(strategy, InfernoTemplateStrategy)
    assert float(strategy.histogram(net, torch.as_tensor(x))[0].detach()) == 0.0  # stayed empty


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="histogram"):
        InfernoTemplateStrategy(histogram="hard")
    with pytest.raises(ValueError, match="not among the templates"):
        InfernoTemplateStrategy(
            nuisances=[{"name": "f", "kind": "histosys", "up": "a", "down": "b"}],
            templates={"a": (np.zeros((2, 2)), np.array([0, 1]))},
        )
    with pytest.raises(ValueError, match="up/down"):
        InfernoTemplateStrategy(nuisances=[{"name": "f", "kind": "histosys", "up": True, "down": -1}])
    # a mirrored template is 2·nominal − up of the untransformed rows: a shift of the same
    # sample would leave it behind, so the combination is refused (a different sample is fine)
    mirror = {"name": "t", "kind": "histosys", "sample": "signal", "up": 2, "down": "mirror"}
    shift = {"name": "r", "kind": "shift", "column": 0, "nominal": 0.0, "sample": "signal"}
    with pytest.raises(ValueError, match=r"mirrored histosys cannot be combined.*signal"):
        InfernoTemplateStrategy(nuisances=[mirror, shift])
    assert InfernoTemplateStrategy(nuisances=[mirror, {**shift, "sample": "background"}]).sources == ("2",)


def test_mc_statistics_equal_the_base_class_and_train() -> None:
    # With mc_events (pyhf staterror profiled out) the templates' Fisher information must be the
    # base class's on the same rows given as row-paired aux arrays (whose staterror σ_μ the
    # inferno tests compare with pyhf), differ from the one without, and the loop must take the
    # option from strategy_options. Tolerance 1e-10 relative: the same float64 arithmetic.
    x, y = _toy(64, 5)
    x_up, x_dn = x.copy(), x.copy()
    x_up[:, 0] += 0.4
    x_dn[:, 1] -= 0.3
    net = _net(2)
    mc = {"signal": 120, "background": 900}
    base = InfernoStrategy(  # the measurement's treatment in both strategies
        100,
        1000,
        [{"name": "fsr", "kind": "histosys", "up": "x_up", "down": "x_down"}],
        mc_events=mc,
        histosys="auto",
    )
    nuisances = [{"name": "fsr", "kind": "histosys", "up": "up", "down": "down"}]
    mine = InfernoTemplateStrategy(100, 1000, nuisances, histogram="softmax", mc_events=mc, histosys="auto")
    plain = InfernoTemplateStrategy(100, 1000, nuisances, histogram="softmax", histosys="auto")
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    aux = {"x_up": torch.as_tensor(x_up), "x_down": torch.as_tensor(x_dn)}
    templates = {"up": (aux["x_up"], yt), "down": (aux["x_down"], yt)}
    expected = base.fisher(net, xt, yt, aux)
    got = mine.fisher(net, xt, yt, {}, templates=templates)
    without = plain.fisher(net, xt, yt, {}, templates=templates)
    assert expected is not None
    assert got is not None
    assert without is not None
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-10)
    var, var_plain = torch.linalg.inv(got)[0, 0], torch.linalg.inv(without)[0, 0]
    assert float(var.detach()) > 1.01 * float(var_plain.detach())  # smaller effective counts: a larger σ_μ
    grads = torch.autograd.grad(var, list(net.parameters()))
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    with pytest.raises(ValueError, match=r"^mc_events must map exactly"):
        InfernoTemplateStrategy(mc_events={"signal": 100, "background": 0})

    xs, ys, z = _toy_with_z(300, 20, order_seed=0)
    torch.manual_seed(0)
    options = {
        "signal_expected": 100,
        "background_expected": 1000,
        "nuisances": [{"name": "shape", "kind": "histosys", "sample": "both", "up": 1, "down": -1}],
        "mc_events": {"signal": 3200, "background": 3200},
    }
    hist = train_classifier(
        nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)), xs[:600], ys[:600], xs[600:], ys[600:],
        aux_train={"z": z[:600]}, aux_val={"z": z[600:]}, strategy="inferno-templates",
        strategy_options=options, epochs=2, batch_size=128, progress=False,
    )  # fmt: skip
    assert hist.strategy["mc_events"] == {"signal": 3200.0, "background": 3200.0}
    assert len(hist.extra["val_sigma_mu"]) == 2
    assert all(math.isfinite(v) for v in [*hist.train_loss, *hist.extra["val_sigma_mu"]])


def test_doctests() -> None:
    result = doctest.testmod(inferno_templates, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------------------- weight sources
def _weight_nuisances(prefix: str) -> list[dict[str, Any]]:
    """:data:`_NUISANCES_W` with its varied samples named ``prefix + u/d/t``."""
    out = []
    for spec in _NUISANCES_W:
        spec = dict(spec)
        if spec["kind"] == "histosys":
            spec["up"] = prefix + spec["up"]
            spec["down"] = spec["down"] if spec["down"] == "mirror" else prefix + spec["down"]
        out.append(spec)
    return out


@pytest.mark.parametrize("histogram", ["softmax", "kde"])
def test_weight_sources_equal_the_nominal_rows_given_as_weighted_templates(histogram: str) -> None:
    # A histosys written "weight:KEY" is the step's nominal rows weighted by aux[KEY] (times
    # their sample weights). Independent path: the same rows handed over as templates with
    # those products as their weights (each histogram scaled by its own Σw either way). Fisher
    # information, σ_μ and its gradient must agree to 1e-9 relative (float64, another order).
    x, y, w = _rows(30, True)
    rng = np.random.default_rng(31)
    ratio = {k: torch.as_tensor(rng.uniform(0.4, 1.6, len(y))) for k in ("u", "d", "t")}
    _, net = _strategy_and_net(histogram)
    s_w = InfernoTemplateStrategy(
        50, 500, _weight_nuisances("weight:r"), histogram=histogram, n_bins=4, bandwidth=0.2
    )
    assert s_w.requires_aux == ("rd", "rt", "ru")
    got = s_w.fisher(net, x, y, {"r" + k: v for k, v in ratio.items()}, weight=w)
    s_t = InfernoTemplateStrategy(50, 500, _NUISANCES_W, histogram=histogram, n_bins=4, bandwidth=0.2)
    templates = {k: (x, y, w * r) for k, r in ratio.items()}
    expected = s_t.fisher(net, x, y, {}, weight=w, templates=templates)
    assert got is not None
    assert expected is not None
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9 * float(expected.detach().abs().max()))
    sigma_got = torch.linalg.inv(got)[0, 0].sqrt()
    sigma_exp = torch.linalg.inv(expected)[0, 0].sqrt()
    grads_got = torch.autograd.grad(sigma_got, list(net.parameters()))
    grads_exp = torch.autograd.grad(sigma_exp, list(net.parameters()))
    for a, b in zip(grads_got, grads_exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    # the weights matter: all ratios 1 (no variation) give another information matrix
    flat = s_w.fisher(net, x, y, {"r" + k: torch.ones_like(v) for k, v in ratio.items()}, weight=w)
    assert flat is not None
    assert not torch.allclose(flat, got, rtol=1e-3)


def test_density_ratio_weights_give_the_varied_samples_sigma() -> None:
    # Analytic case: the background shifted by +0.6 (-0.6) in x0 is the nominal background
    # weighted by the Gaussian density ratio exp(±0.6 x0 − 0.18). σ_μ of the loss with the
    # variation given as those weights must equal σ_μ with 40,000 shifted rows per sample of
    # their own, within 3 % (the separate samples' noise: a few per mille of each bin), and
    # both must differ from σ_μ without the variation by more than 10 %.
    n = 40_000
    x, y = (torch.as_tensor(a) for a in _toy(n, 40))
    x_up, y_up = (torch.as_tensor(a) for a in _toy(n, 41, shift=0.6))
    x_dn, y_dn = (torch.as_tensor(a) for a in _toy(n, 42, shift=-0.6))
    bkg = (y == 1).double()
    r_up = torch.exp(bkg * (0.6 * x[:, 0] - 0.18))
    r_dn = torch.exp(bkg * (-0.6 * x[:, 0] - 0.18))
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[-2.0, -1.0]], dtype=torch.float64))
        net[0].bias.fill_(1.5)

    def sigma(up: str, down: str, aux: dict[str, torch.Tensor], templates: Any = None) -> float:
        nuis = [{"name": "v", "kind": "histosys", "sample": "background", "up": up, "down": down}]
        s = InfernoTemplateStrategy(100, 1000, nuis, histogram="kde", n_bins=8, bandwidth=0.05)
        info = s.fisher(net, x, y, aux, templates=templates, create_graph=False)
        assert info is not None
        return float(torch.linalg.inv(info)[0, 0].sqrt())

    by_weights = sigma("weight:up", "weight:dn", {"up": r_up, "dn": r_dn})
    by_samples = sigma("u", "d", {}, {"u": (x_up, y_up), "d": (x_dn, y_dn)})
    none = sigma("weight:one", "weight:one", {"one": torch.ones(len(y), dtype=torch.float64)})
    assert by_weights == pytest.approx(by_samples, rel=0.03)
    assert by_weights > 1.1 * none


def test_weight_sources_train_and_validate() -> None:
    # Through the training loop: the weight arrays come as aux arrays of the training and
    # validation rows; the validation σ_μ is the loss on the validation rows with their own
    # ratios, and a short run lowers it (the toy's background shift given as density-ratio
    # weights, as in the analytic test above).
    x, y = _toy(6000, 50)
    order = np.random.default_rng(51).permutation(len(y))  # both classes in the validation rows
    x, y = x[order], y[order]
    bkg = (y == 1).astype(np.float64)
    aux = {"up": np.exp(bkg * (0.6 * x[:, 0] - 0.18)), "dn": np.exp(bkg * (-0.6 * x[:, 0] - 0.18))}
    n_tr = 4800
    strategy = InfernoTemplateStrategy(
        100,
        1000,
        [{"name": "v", "kind": "histosys", "sample": "background", "up": "weight:up", "down": "weight:dn"}],
        n_bins=4,
    )
    hist = train_classifier(
        _net(2),
        x[:n_tr].astype(np.float32),
        y[:n_tr],
        x[n_tr:].astype(np.float32),
        y[n_tr:],
        aux_train={k: v[:n_tr] for k, v in aux.items()},
        aux_val={k: v[n_tr:] for k, v in aux.items()},
        strategy=strategy,
        epochs=6,
        batch_size=512,
        lr=3e-3,
        patience=6,
        progress=False,
        monitor="val_sigma_mu",
    )
    sigma = hist.extra["val_sigma_mu"]
    assert len(sigma) == 6
    assert min(sigma[1:]) < 0.95 * sigma[0], sigma
    with pytest.raises(ValueError, match="histosys weights 'up' must be in aux_train"):
        train_classifier(
            _net(2),
            x[:n_tr].astype(np.float32),
            y[:n_tr],
            x[n_tr:].astype(np.float32),
            y[n_tr:],
            aux_train={"up": -aux["up"][:n_tr], "dn": aux["dn"][:n_tr]},
            aux_val={k: v[n_tr:] for k, v in aux.items()},
            strategy=strategy,
            epochs=1,
            progress=False,
        )


@pytest.mark.parametrize("weighted", [False, True])
def test_paired_sources_equal_the_copies_given_as_templates(weighted: bool) -> None:
    # "paired:KEY" reads row-paired varied copies of the nominal rows from aux[KEY] (a jet
    # energy scale: the same jets, features varied). Independent path: the same copies handed
    # over as templates (with the nominal rows' weights when weighted). Fisher information
    # and σ_μ's gradient agree to 1e-9 relative.
    x, y, w = _rows(60, weighted)
    copies = {"u": x * 1.1 + 0.05, "d": x * 0.9 - 0.05, "t": x + 0.2}
    _, net = _strategy_and_net("kde")
    s_p = InfernoTemplateStrategy(
        50, 500, _weight_nuisances("paired:c"), histogram="kde", n_bins=4, bandwidth=0.2
    )
    assert s_p.requires_aux == ("cd", "ct", "cu")
    got = s_p.fisher(net, x, y, {"c" + k: v for k, v in copies.items()}, weight=w if weighted else None)
    s_t = InfernoTemplateStrategy(50, 500, _NUISANCES_W, histogram="kde", n_bins=4, bandwidth=0.2)
    templates = {k: (v, y, w) if weighted else (v, y) for k, v in copies.items()}
    expected = s_t.fisher(net, x, y, {}, weight=w if weighted else None, templates=templates)
    assert got is not None
    assert expected is not None
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9 * float(expected.detach().abs().max()))
    grads_got = torch.autograd.grad(torch.linalg.inv(got)[0, 0].sqrt(), list(net.parameters()))
    grads_exp = torch.autograd.grad(torch.linalg.inv(expected)[0, 0].sqrt(), list(net.parameters()))
    for a, b in zip(grads_got, grads_exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_paired_copies_of_the_wrong_shape_are_refused() -> None:
    # A "paired:KEY" array must be the varied features of every row (X's shape), in the
    # training and, when there are validation rows, in the validation arrays.
    x, y = _toy(400, 70)
    order = np.random.default_rng(71).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order]
    s = InfernoTemplateStrategy(
        100,
        1000,
        [{"name": "j", "kind": "histosys", "sample": "both", "up": "paired:xu", "down": "paired:xd"}],
    )
    good = {"xu": x * 1.02, "xd": x * 0.98}

    def data(aux_tr: dict[str, np.ndarray], aux_va: dict[str, np.ndarray]) -> TrainingData:
        return TrainingData(x[:300], y[:300], aux_tr, x[300:], y[300:], aux_va, 0, None, None)

    split = {k: (v[:300], v[300:]) for k, v in good.items()}
    s.setup(
        _net(1).float(), data({k: a for k, (a, _) in split.items()}, {k: b for k, (_, b) in split.items()})
    )
    with pytest.raises(
        ValueError, match=r"histosys copies 'xu' must be in aux_train .* shape of X \(300, 2\)"
    ):
        s.setup(
            _net(1).float(),
            data({"xu": split["xu"][0][:, :1], "xd": split["xd"][0]}, {k: b for k, (_, b) in split.items()}),
        )
    with pytest.raises(ValueError, match=r"histosys copies 'xu' must be in aux_val"):
        s.setup(_net(1).float(), data({k: a for k, (a, _) in split.items()}, {"xd": split["xd"][1]}))
