"""Attacks in physical space through the differentiable TopoDNN preprocessing.

The torch preprocessing (:class:`aalearn.attacks.physical.TopoDNNPreprocessing`) must equal
the NumPy one (:func:`aalearn.physics.preprocessing.topodnn_preprocess`), including the φ
wrap, padded constituents and the optional η flip; its gradients must be finite; and
:func:`aalearn.attacks.physical.attack_constituents` must return physical, budget-respecting
adversarial constituents whose preprocessed features the model classifies as reported.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aalearn.attacks import (
    TopoDNNPreprocessing,
    attack_constituents,
    physical_features,
    through_preprocessing,
)
from aalearn.attacks.physical import PHYSICAL_SPACE_CONSTRAINTS, PaddedConstituents, physical_constraint_set
from aalearn.models import TopoDNN
from aalearn.physics.preprocessing import topodnn_preprocess

K = 30

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def make_constituents(n: int, seed: int = 0, pad_every: int = 3) -> np.ndarray:
    """Plausible jets ``(n, K, 3)``: pT descending from ~300 GeV, η ~ N(0.5, 0.3) around a
    jet axis, φ around an axis near ±π (so the wrap is exercised); every ``pad_every``-th
    jet has 3-12 padded constituents (none for ``pad_every=0``).
    """
    rng = np.random.default_rng(seed)
    lead = rng.uniform(200.0, 400.0, n)
    pt = lead[:, None] * np.exp(-0.15 * np.arange(K)) * rng.uniform(0.7, 1.0, (n, K))
    pt = -np.sort(-pt, axis=1)
    eta_axis = rng.uniform(-1.5, 1.5, n)
    eta = eta_axis[:, None] + rng.normal(0.5, 0.3, (n, K))
    phi_axis = np.where(rng.random(n) < 0.5, np.pi - 0.05, -np.pi + 0.05)
    phi = phi_axis[:, None] + rng.normal(0.0, 0.3, (n, K))
    phi = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    c = np.stack([pt, eta, phi], axis=-1)
    for i in range(0, n, pad_every) if pad_every else ():
        c[i, K - int(rng.integers(3, 13)) :] = 0.0
    return c


def make_model(x87: np.ndarray, seed: int = 0) -> TopoDNN:
    """A small random TopoDNN with input scaling, bias centred so that half the jets are class 1."""
    torch.manual_seed(seed)
    model = TopoDNN(hidden=(32, 16)).fit_input_scaling(x87).eval()
    with torch.no_grad():
        model.output.bias -= model(torch.as_tensor(x87, dtype=torch.float32)).median()
    return model


def decisions(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=torch.float32))
    return (out.reshape(-1) >= 0).long().numpy()


def energy(c: np.ndarray) -> np.ndarray:
    return (c[..., 0] * np.cosh(c[..., 1])).sum(axis=1)


@pytest.fixture(scope="module")
def jets() -> np.ndarray:
    return make_constituents(100)


@pytest.fixture(scope="module")
def model(jets: np.ndarray) -> TopoDNN:
    return make_model(topodnn_preprocess(jets))


# --------------------------------------------------------------------------- preprocessing
def test_jets_exercise_the_wrap_and_padding() -> None:
    c = make_constituents(200)
    real = c[..., 0] > 0
    dphi = c[..., 2] - c[:, :1, 2]
    assert (np.abs(dphi[real]) > np.pi).sum() > 100  # many constituents across ±π
    assert (~real).any(axis=1).sum() >= 60


@pytest.mark.parametrize("flip_eta", [False, True])
def test_torch_preprocessing_equals_numpy_float64(flip_eta: bool) -> None:
    c = make_constituents(200, seed=1)
    ref = topodnn_preprocess(c, flip_eta=flip_eta)
    out = TopoDNNPreprocessing(flip_eta=flip_eta)(torch.as_tensor(c.reshape(200, -1)))
    assert out.dtype == torch.float64
    assert out.shape == (200, 87)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, rtol=0)
    if flip_eta:  # the flip actually happens on some jets
        assert not np.allclose(ref, topodnn_preprocess(c), atol=1e-5)


@pytest.mark.parametrize("flip_eta", [False, True])
def test_torch_preprocessing_equals_numpy_float32(flip_eta: bool) -> None:
    c = make_constituents(200, seed=2).astype(np.float32)
    ref = topodnn_preprocess(c.astype(np.float64), flip_eta=flip_eta)
    out = TopoDNNPreprocessing(flip_eta=flip_eta)(torch.as_tensor(c.reshape(200, -1)))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-4, rtol=0)


def test_torch_preprocessing_edge_cases() -> None:
    # only one real constituent (no rotation), coincident constituents 0 and 1, few constituents
    c = np.zeros((3, 4, 3))
    c[0, 0] = [100.0, 0.3, 3.0]
    c[1, :3] = [[100.0, 0.3, 3.0], [50.0, 0.3, 3.0], [20.0, 0.5, -3.0]]
    c[2] = [[100.0, -1.0, -3.1], [60.0, -0.8, 3.1], [30.0, -1.2, 3.0], [10.0, -0.9, -3.0]]
    pre = TopoDNNPreprocessing(n_constituents=4)
    x = torch.as_tensor(c.reshape(3, -1)).requires_grad_(True)
    out = pre(x)
    np.testing.assert_allclose(out.detach().numpy(), topodnn_preprocess(c, n_constituents=4), atol=1e-12)
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g).all()


def test_torch_preprocessing_rejects_bad_shapes_and_settings() -> None:
    with pytest.raises(ValueError, match="flat constituents"):
        TopoDNNPreprocessing()(torch.zeros(2, 87))
    with pytest.raises(ValueError, match="pt_scale"):
        TopoDNNPreprocessing(pt_scale=0.0)
    with pytest.raises(ValueError, match="n_constituents"):
        TopoDNNPreprocessing(n_constituents=1)


@pytest.mark.parametrize("flip_eta", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradients_are_finite(flip_eta: bool, dtype: torch.dtype) -> None:
    c = make_constituents(100, seed=3)
    x = torch.as_tensor(c.reshape(100, -1), dtype=dtype).requires_grad_(True)
    out = TopoDNNPreprocessing(flip_eta=flip_eta)(x)
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g).all()
    assert (g != 0).any()
    # the angles of padded constituents have no influence on the output (their pT does)
    padded = torch.as_tensor(c[..., 0] == 0)
    angles = torch.stack([torch.zeros_like(padded), padded, padded], dim=-1).reshape(100, -1)
    assert angles.any()
    assert (g[angles] == 0).all()
    pts = torch.stack([padded, torch.zeros_like(padded), torch.zeros_like(padded)], dim=-1).reshape(100, -1)
    assert (g[pts] != 0).all()


def test_gradient_matches_finite_differences() -> None:
    # unpadded jets: at pT = 0 a padded constituent switches on (a discontinuity by design)
    c = make_constituents(4, seed=4, pad_every=0)
    x = torch.as_tensor(c.reshape(4, -1)).requires_grad_(True)
    pre = TopoDNNPreprocessing()
    w = torch.as_tensor(np.random.default_rng(0).normal(size=(4, 87)))

    def f(inp: torch.Tensor) -> torch.Tensor:
        return (pre(inp) * w).sum()

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-4)


def test_through_preprocessing_feeds_the_model(jets: np.ndarray, model: TopoDNN) -> None:
    wrapped = through_preprocessing(model)
    with torch.no_grad():
        a = wrapped(torch.as_tensor(jets.reshape(len(jets), -1), dtype=torch.float32))
        b = model(torch.as_tensor(topodnn_preprocess(jets), dtype=torch.float32))
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


# --------------------------------------------------------------------------- features, constraints
def test_physical_features() -> None:
    fs = physical_features()
    assert len(fs) == 90
    assert fs.names[:6] == ("PT_0", "Eta_0", "Phi_0", "PT_1", "Eta_1", "Phi_1")
    assert fs.names[-1] == "Phi_29"
    assert all(s.scale_gev == 1.0 and s.unit == "GeV" for s in fs if s.kind == "pt")
    assert fs[fs.index("PT_3")].upper == 6500.0
    assert fs[fs.index("Eta_3")].lower == -5.0
    phi = fs[fs.index("Phi_3")]
    assert phi.periodic
    assert phi.period == pytest.approx(2 * np.pi)
    assert phi.lower == pytest.approx(-np.pi)
    assert phi.upper == pytest.approx(np.pi)
    flat = make_constituents(10).reshape(10, -1)
    sigma = fs.sigma(flat)
    assert sigma.shape == (10, 90)
    assert np.all(sigma > 0)
    assert np.all(np.isfinite(sigma))
    assert physical_features(5, eta_max=2.5)[1].upper == 2.5
    assert len(physical_features(5)) == 15


def test_physical_constraint_set_defaults_and_invariants() -> None:
    fs = physical_features()
    assert physical_constraint_set(fs).names == (*PHYSICAL_SPACE_CONSTRAINTS, "padded")
    assert "invariants" not in physical_constraint_set(fs, "default").names
    assert physical_constraint_set(fs, "none").names == ("padded",)
    for bad in ("invariants", "default,invariants", ["pt-sum", "invariants"]):
        with pytest.raises(ValueError, match=r"invariants.*preprocess.*padded constituents"):
            physical_constraint_set(fs, bad)


def test_padded_constituents_constraint() -> None:
    fs = physical_features(3)
    x0 = torch.tensor([[100.0, 0.1, 3.0, 50.0, 0.2, -3.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    c = PaddedConstituents(fs)
    x = x0 + 0.25
    assert bool(c.violated(x, x0)[0])
    rep = c.repair(x, x0)
    assert torch.equal(rep[0, 6:], x0[0, 6:])
    assert torch.equal(rep[0, :6], x[0, :6])
    lo, hi = c.box(x0)
    assert torch.equal(lo[0, 6:], x0[0, 6:])
    assert torch.equal(hi[0, 6:], x0[0, 6:])
    assert torch.isinf(lo[0, :6]).all()


# --------------------------------------------------------------------------- attacks
def _check_result(res, x87: np.ndarray, jets: np.ndarray, model: TopoDNN) -> np.ndarray:  # type: ignore[no-untyped-def]
    n = len(jets)
    assert x87.shape == (n, 87)
    assert res.x_adv.shape == (n, 90)
    adv = res.x_adv.reshape(n, K, 3)
    assert np.all(adv[..., 0] >= 0)
    assert np.all((adv[..., 2] >= -np.pi) & (adv[..., 2] < np.pi))
    padded = jets[..., 0] == 0
    assert padded.any()
    np.testing.assert_array_equal(adv[padded], jets[padded])
    np.testing.assert_array_equal(decisions(model, x87), res.decision_adv)
    np.testing.assert_allclose(x87, topodnn_preprocess(adv), atol=0)
    # physical validity in physical space: pT >= 0, phi range, bounds (and no invariants rule)
    assert "invariants" not in res.physical_violations
    assert set(res.physical_violations) == set(PHYSICAL_SPACE_CONSTRAINTS)
    assert not any(v.any() for v in res.physical_violations.values())
    assert res.feasible.all()
    return adv


@pytest.mark.parametrize("constraints", [None, "default,energy"])
def test_pgd_in_physical_space(constraints: str | None, jets: np.ndarray, model: TopoDNN) -> None:
    eps = 1.0
    res, x87 = attack_constituents(
        model, jets, attack="pgd", constraints=constraints, attack_kwargs={"eps": eps, "steps": 10}
    )
    adv = _check_result(res, x87, jets, model)
    assert res.success.sum() > 0
    assert not np.array_equal(res.x_adv, res.x)
    # the budget holds, independently computed (σ from the clean jets, φ wrapped)
    sigma = physical_features().sigma(jets.reshape(len(jets), -1))
    d = res.x_adv - res.x
    per = physical_features().periodic_mask
    d[:, per] = np.remainder(d[:, per] + np.pi, 2 * np.pi) - np.pi
    assert np.abs(d / sigma).max() <= eps * (1 + 1e-4) + 1e-6
    if constraints is not None:
        assert "energy" in res.violations
        e0, e1 = energy(jets), energy(adv)
        np.testing.assert_array_less(np.abs(e1 - e0), 1e-5 * e0)
        assert res.success.sum() > 0


@pytest.mark.parametrize("constraints", [None, "default,energy"])
def test_sparse_in_physical_space(constraints: str | None, jets: np.ndarray, model: TopoDNN) -> None:
    labels = decisions(model, topodnn_preprocess(jets))
    res, x87 = attack_constituents(
        model, jets, labels, attack="sparse", constraints=constraints, attack_kwargs={"steps": 30}
    )
    adv = _check_result(res, x87, jets, model)
    assert res.success.sum() > 0
    # fooled jets are classified differently from their clean decision
    assert np.all(decisions(model, x87)[res.success] != labels[res.success])
    if constraints is not None:
        e0, e1 = energy(jets), energy(adv)
        np.testing.assert_array_less(np.abs(e1 - e0), 1e-5 * e0)


def test_invariants_are_refused(jets: np.ndarray, model: TopoDNN) -> None:
    with pytest.raises(ValueError, match="invariants"):
        attack_constituents(model, jets[:5], constraints="default,invariants")
    with pytest.raises(ValueError, match="features="):
        attack_constituents(model, jets[:5], features=physical_features())


def test_bad_constituents_are_refused(jets: np.ndarray, model: TopoDNN) -> None:
    bad = jets[:5].copy()
    bad[0, 0, 0] = -1.0
    with pytest.raises(ValueError, match="negative pT"):
        attack_constituents(model, bad)
    bad = jets[:5].copy()
    bad[0, 0, 1] = 7.0
    with pytest.raises(ValueError, match="physical bounds"):
        attack_constituents(model, bad)
    with pytest.raises(ValueError, match="shape"):
        attack_constituents(model, jets[:5, :, :2])


def test_out_of_range_phi_is_wrapped_and_fewer_constituents_are_padded(model: TopoDNN) -> None:
    c = make_constituents(6, seed=5)[:, :20].copy()
    real = c[..., 0] > 0
    c[..., 2] = np.where(real, c[..., 2] + 2 * np.pi, c[..., 2])  # same jets, φ out of range
    res, x87 = attack_constituents(model, c, attack="pgd", attack_kwargs={"eps": 0.0, "steps": 1})
    np.testing.assert_allclose(x87, topodnn_preprocess(c), atol=1e-9)
    assert res.x.shape == (6, 90)
    assert np.all(res.x[:, 60:] == 0)
