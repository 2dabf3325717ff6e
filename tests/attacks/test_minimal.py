"""Minimal-perturbation attacks (FAB-L1, the per-jet ensemble) and the faster loop's guarantees.

References used here:

* the weighted-L1 knapsack against SciPy's linear programme (HiGHS), relative 1e-6;
* FAB-L1 on a linear logit, where the minimal L1 perturbation is known in closed form:
  ``|f(x0)| / max_i |a_i|`` along the steepest coordinate (no box);
* the exact budget: L∞ distance <= ε with **no** tolerance, output representable in float32;
* the loop against outputs of the previous implementation, saved before it was changed
  (``data/loop_reference.npz``: nine attack configurations, seed 3, 120 synthetic jets):
  same successes, ``|Δx|/σ <= 1e-3`` (float32 round-off differs where the projection does);
* the fused TopoDNN against the module itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aalearn.apps.audit import challenge_task1
from aalearn.attacks import MinimalEnsemble, fab_l1, get_attack, minimal, sparse
from aalearn.attacks.components import l1_knapsack
from aalearn.attacks.model import fuse_topodnn
from aalearn.data import JetDataset
from aalearn.data.io import load_dataset, save_dataset
from aalearn.models import TopoDNN, load_model

pytestmark = pytest.mark.usefixtures("single_torch_thread")
REFERENCE = Path(__file__).parent / "data" / "loop_reference.npz"


# --------------------------------------------------------------------------- knapsack
def test_l1_knapsack_matches_linear_programme() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(1)
    n, f = 12, 7
    g = rng.normal(size=(n, f))
    start = rng.uniform(-0.5, 0.5, (n, f))
    lo, hi = start - rng.uniform(0.1, 2, (n, f)), start + rng.uniform(0.1, 2, (n, f))
    w = rng.uniform(0.2, 3, (n, f))
    need = rng.uniform(0.1, 1.5, n)
    d = l1_knapsack(*(torch.from_numpy(a) for a in (g, start, need, lo, hi, w))).numpy()
    for i in range(n):
        # variables (δ+, δ-) >= 0; min w·(δ+ + δ-) s.t. g·(δ+ - δ-) <= -need, box
        c = np.concatenate([w[i], w[i]])
        a_ub = np.concatenate([g[i], -g[i]])[None, :]
        bounds = [(0, hi[i, j] - start[i, j]) for j in range(f)] + [
            (0, start[i, j] - lo[i, j]) for j in range(f)
        ]
        lp = optimize.linprog(c, A_ub=a_ub, b_ub=[-need[i]], bounds=bounds, method="highs")
        inside = np.all(start[i] + d[i] <= hi[i] + 1e-12) and np.all(start[i] + d[i] >= lo[i] - 1e-12)
        assert inside
        if lp.status == 0:
            assert g[i] @ d[i] == pytest.approx(-need[i], rel=1e-9)
            assert np.sum(w[i] * np.abs(d[i])) == pytest.approx(lp.fun, rel=1e-6)
        else:  # infeasible: every coordinate at its limit in the decreasing direction
            assert g[i] @ d[i] < -0.0


def test_l1_knapsack_max_coords_and_no_need() -> None:
    g = torch.tensor([[3.0, -1.0, 0.5]])
    w = torch.ones(1, 3)
    d = l1_knapsack(g, torch.zeros(1, 3), torch.tensor([6.0]), None, torch.tensor([[1.0, 9.0, 9.0]]), w, 1)
    # only the steepest coordinate (|g|/w = 3) moves, and only down to... it is bounded below by None
    assert d.tolist() == [[-2.0, 0.0, 0.0]]
    assert l1_knapsack(g, torch.zeros(1, 3), torch.tensor([-1.0]), None, None, w).abs().sum() == 0


# --------------------------------------------------------------------------- FAB on a linear model
class _Linear(nn.Module):
    def __init__(self, a: np.ndarray, b: float) -> None:
        super().__init__()
        self.lin = nn.Linear(len(a), 1).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.from_numpy(a)[None, :])
            self.lin.bias.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)[:, 0]


def test_fab_l1_finds_the_analytic_minimum_on_a_linear_model() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=6)
    model = _Linear(a, 0.0)
    x = rng.normal(size=(40, 6))
    logit = x @ a
    res = fab_l1(steps=30, distance="l1").run(model, x, sigma=rng.uniform(0.5, 2, 6), constraints="none")
    assert res.success.all()
    expected = np.abs(logit) / np.abs(a).max()  # move the steepest coordinate only
    l1 = np.abs(res.x_adv - x).sum(axis=1)
    # the loop keeps the smallest adversarial iterate (margin just below 0); the refinement
    # bisects back towards the boundary but stops 1e-3 logit beyond it (to 2**-14 of the step)
    slack = 1e-3 / np.abs(a).max()
    assert np.all(l1 >= expected * (1 - 1e-6))
    assert np.all(l1 <= (expected + slack) * (1 + 2e-3))
    changed = (res.x_adv != x).sum(axis=1)
    assert np.all(changed == 1)
    # and the σ-weighted variant picks the coordinate with the largest |a_i| σ_i
    sig = rng.uniform(0.5, 2, 6)
    res_s = fab_l1(steps=30).run(model, x, sigma=sig, constraints="none")
    exp_s = np.abs(logit) / np.abs(a * sig).max()
    got = res_s.distance["l1"] / sig[np.abs(a * sig).argmax()]
    assert np.all(got >= exp_s * (1 - 1e-6))
    assert np.all(got <= (exp_s + 1e-3 / np.abs(a * sig).max()) * (1 + 2e-3))


def test_fab_l1_rejects_bad_settings() -> None:
    for kw, msg in (({"alpha_max": 1.5}, "alpha_max"), ({"eta": 0.5}, "eta"), ({"beta": 0.0}, "beta")):
        with pytest.raises(ValueError, match=msg):
            fab_l1(**kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="minimal attacks"):
        MinimalEnsemble("x", [get_attack("pgd")])  # type: ignore[list-item]


# --------------------------------------------------------------------------- the ensemble
def _problem(challenge_jets: object, n: int = 80) -> tuple[np.ndarray, TopoDNN, np.ndarray]:
    x = challenge_jets(n, pad_every=4)  # type: ignore[operator]
    torch.manual_seed(0)
    model = TopoDNN(hidden=(32, 16)).fit_input_scaling(x).eval()
    with torch.no_grad():
        model.output.bias -= model(torch.as_tensor(x, dtype=torch.float32)).median()
        labels = (model(torch.as_tensor(x, dtype=torch.float32)) >= 0).long().numpy()
    return x, model, labels


def test_ensemble_returns_the_per_jet_smallest_success(challenge_jets: object) -> None:
    x, model, labels = _problem(challenge_jets)
    stages = [sparse(steps=30, distance="l1"), fab_l1(steps=15, distance="l1")]
    alone = [s.run(model, x, labels, seed=5 + k) for k, s in enumerate(stages)]
    both = MinimalEnsemble("t", stages, warm=False, distance="l1").run(model, x, labels, seed=5)
    d = [np.where(r.success, r.distance["l1"], np.inf) for r in alone]
    best = np.minimum(d[0], d[1])
    got = np.where(both.success, both.distance["l1"], np.inf)
    ok = np.isfinite(best)
    # a stage's success within 1e-4 logit of the boundary does not count: allow those rows to differ
    assert got[ok].size
    assert np.mean(np.isclose(got[ok], best[ok], rtol=1e-9)) >= 0.95
    assert np.all(got[ok] >= best[ok] * (1 - 1e-9))
    assert both.unphysical_fraction == 0.0


def test_warm_started_fab_never_worsens_sparse(challenge_jets: object) -> None:
    x, model, labels = _problem(challenge_jets)
    sp = sparse(steps=30, distance="l1").run(model, x, labels, seed=0)
    mn = minimal(sparse_steps=30, fab_steps=15).run(model, x, labels, seed=0)
    assert mn.success.sum() >= sp.success.sum()
    both = sp.success & mn.success
    assert np.all(mn.distance["l1"][both] <= sp.distance["l1"][both] * (1 + 1e-9))
    assert mn.distance["l1"][both].mean() < sp.distance["l1"][both].mean()  # FAB improves on average


# --------------------------------------------------------------------------- exact budget, fused model
@pytest.mark.parametrize(("name", "eps"), [("pgd", 1.0), ("fgsm", 0.5), ("pgd-l2", 2.0), ("pgd-chi2", 0.05)])
def test_budget_holds_exactly_in_float32(challenge_jets: object, name: str, eps: float) -> None:
    x, model, labels = _problem(challenge_jets, 60)
    res = (
        get_attack(name, eps=eps, steps=5).run(model, x, labels, seed=1)
        if name != "fgsm"
        else (get_attack(name, eps=eps).run(model, x, labels, seed=1))
    )
    key = {"pgd": "linf_sigma", "fgsm": "linf_sigma", "pgd-l2": "l2_sigma", "pgd-chi2": "chi2_sigma"}[name]
    assert res.distance[key].max() <= eps  # no tolerance
    assert np.array_equal(res.x_adv.astype(np.float32).astype(np.float64), res.x_adv)
    assert res.success.any()


def test_fused_topodnn_equals_the_model() -> None:
    torch.manual_seed(3)
    m = TopoDNN(n_features=10, hidden=(16, 8, 4)).eval()
    with torch.no_grad():
        for b in m.blocks:
            b.norm.running_mean.uniform_(-1, 1)
            b.norm.running_var.uniform_(0.5, 2)
            b.norm.weight.uniform_(0.5, 2)
            b.norm.bias.uniform_(-1, 1)
        m.input_mean.uniform_(-1, 1)
        m.input_scale.uniform_(0.5, 2)
    x = torch.randn(64, 10)
    fused = fuse_topodnn(m)
    assert fused is not None
    torch.testing.assert_close(fused(x), m(x), rtol=1e-5, atol=1e-5)
    assert fuse_topodnn(m.train()) is None
    assert fuse_topodnn(nn.Linear(3, 1)) is None


@pytest.mark.regression_pin(
    "tests/attacks/data/loop_reference.npz: outputs of the attack loop before its fast rewrite (issue 19)"
)
def test_loop_reproduces_the_previous_implementation() -> None:
    """Regression pin: the fast loop reproduces the recorded outputs of the previous loop.

    The reference values are recorded outputs of this project's earlier implementation,
    not an independent truth; the independent checks are the ART/torchattacks comparisons.
    """
    ref = np.load(REFERENCE)
    x, labels = ref["x"], ref["labels"]
    model = TopoDNN(hidden=(32, 16)).eval()
    model.load_state_dict({k[2:]: torch.from_numpy(ref[k]) for k in ref.files if k.startswith("w:")})
    cases = {
        "fgsm": ("fgsm", {"eps": 1.0}, {}),
        "pgd": ("pgd", {"eps": 1.0, "steps": 10}, {}),
        "pgd_none": ("pgd", {"eps": 1.0, "steps": 10}, {"constraints": "none"}),
        "pgd_l2": ("pgd-l2", {"eps": 2.0, "steps": 10}, {}),
        "pgd_chi2": ("pgd-chi2", {"steps": 10}, {}),
        "mifgsm": ("mifgsm", {"steps": 10}, {}),
        "sparse": ("sparse", {"steps": 30, "distance": "l1"}, {}),
        "minifool": ("minifool", {"steps": 30}, {}),
        "pgd_ptsum": ("pgd", {"eps": 1.0, "steps": 10}, {"constraints": "default,pt-sum"}),
    }
    for key, (name, kw, run_kw) in cases.items():
        res = get_attack(name, **kw).run(model, x, labels, seed=3, **run_kw)  # type: ignore[arg-type]
        np.testing.assert_array_equal(res.success, ref["ok:" + key], err_msg=key)
        dz = np.abs(res.x_adv - ref["adv:" + key]) / res.extra["sigma"]
        assert dz.max() <= 1e-3, key


# --------------------------------------------------------------------------- Task 1 on the public file
@pytest.mark.slow
def test_task1_minimal_on_public_odd_rows(tmp_path: Path, challenge_dir: Path) -> None:
    """Goal check on 250 odd rows (the defaults were chosen on even rows); NumPy re-scoring."""

    d = challenge_dir
    ds = load_dataset(d / "Clean_Test_Public.feather")
    assert ds.labels is not None
    sub = JetDataset(ds.features[1:500:2], ds.labels[1:500:2], ds.feature_names, source="odd rows")
    save_dataset(sub, tmp_path / "odd.feather")
    out = challenge_task1(tmp_path / "submission.npz", data=tmp_path / "odd.feather").to_dict()
    arr = np.load(tmp_path / "submission.npz")
    net = load_model(d / "best_model.hdf5").eval()
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(arr["adv"]))).numpy()
    fr = 1.0 - np.mean((p >= 0.5).astype(np.int64) == arr["labels"])
    mad = float(np.mean(np.abs(arr["clean"].astype(np.float64) - arr["adv"].astype(np.float64))))
    score = fr * np.exp(-20 * mad)
    assert score == pytest.approx(out["score"], abs=1e-6)
    assert out["unphysical_fraction"] == 0.0
    assert score >= 0.94, (fr, mad, score)  # measured 0.958 on these rows; the goal 0.95 is on all 5000


def test_fast_projection_path_matches_the_general_one(
    challenge_jets: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-clamp projection (box constraints, L∞) against the general projection + repair."""
    from aalearn.attacks.loop import GradientAttack

    x, model, labels = _problem(challenge_jets, 60)
    taken: list[bool] = []
    original = GradientAttack._fast

    def spy(self: GradientAttack, *args: object) -> bool:
        out = original(self, *args)  # type: ignore[arg-type]
        taken.append(out)
        return out

    monkeypatch.setattr(GradientAttack, "_fast", spy)
    fast = get_attack("pgd", eps=1.0, steps=8).run(model, x, labels, seed=2)
    assert taken
    assert all(taken)
    monkeypatch.setattr(GradientAttack, "_fast", lambda self, *a: False)
    slow = get_attack("pgd", eps=1.0, steps=8).run(model, x, labels, seed=2)
    np.testing.assert_array_equal(fast.success, slow.success)
    assert np.max(np.abs(fast.x_adv - slow.x_adv) / fast.extra["sigma"]) <= 1e-3
    assert fast.unphysical_fraction == slow.unphysical_fraction == 0.0
