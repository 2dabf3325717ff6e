"""RobustJetTagger: per-type shared embeddings, dense fusion tail, checkpoints, training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from aalearn.models import ARCHITECTURES, load_checkpoint, model_n_features, predict_logits, save_checkpoint
from aalearn.models.robust import RobustJetTagger
from aalearn.physics import challenge_features
from aalearn.physics.features import FeatureSet, FeatureSpec
from aalearn.training import train_classifier

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _full_layout(n_constituents: int) -> FeatureSet:
    """pT, η, φ for every constituent (no dropped columns), in GeV."""
    specs = []
    for i in range(n_constituents):
        specs += [
            FeatureSpec(f"PT_{i}", "pt", i, "GeV", 0.0, 6500.0, None, 1.0),
            FeatureSpec(f"Eta_{i}", "eta", i, "1", -4.0, 4.0),
            FeatureSpec(f"Phi_{i}", "phi", i, "rad", -np.pi, np.pi, 2 * np.pi),
        ]
    return FeatureSet(tuple(specs))


def test_default_shapes_size_and_challenge_layout() -> None:
    model = RobustJetTagger().eval()
    assert model.n_features == 87 == model_n_features(model)
    assert model.n_constituents == 30
    assert model.layout == [(s.kind, s.constituent) for s in challenge_features()]
    assert model(torch.randn(5, 87)).shape == (5,)
    assert model.embed_features(torch.randn(5, 87)).shape == (5, 87, 8)
    assert model.constituent_tokens(torch.randn(5, 87)).shape == (5, 30, 16)
    # "a few hundred kB" of float32 weights at most
    assert 4 * model.n_parameters < 400_000
    assert predict_logits(model, np.zeros((3, 87))).shape == (3,)


def test_challenge_layout_for_other_constituent_counts() -> None:
    model = RobustJetTagger(n_features=27)  # 10 constituents: 3·10 − 3 columns
    assert model.n_constituents == 10
    assert model.layout == [(s.kind, s.constituent) for s in challenge_features(n_constituents=10)]


def test_one_parameter_set_per_feature_type_whatever_the_number_of_constituents() -> None:
    small, large = RobustJetTagger(n_features=9), RobustJetTagger(n_features=87)
    for model in (small, large):
        assert set(model.type_embedding) == {"pt", "eta", "phi"}
        for kind in ("pt", "eta", "phi"):
            shapes = [tuple(p.shape) for p in model.type_embedding[kind].parameters()]
            assert shapes == [(16, 1), (16,), (8, 16), (8,)]
    emb_params = sum(p.numel() for p in small.type_embedding.parameters())
    assert emb_params == sum(p.numel() for p in large.type_embedding.parameters()) == 3 * (32 + 136)


def test_shared_weights_give_equal_embeddings_for_equal_values() -> None:
    model = RobustJetTagger()
    names = challenge_features().names
    x = torch.randn(4, 87)
    x[:, names.index("ConstPT_18")] = x[:, names.index("ConstPT_3")]
    x[:, names.index("ConstEta_7")] = x[:, names.index("ConstEta_25")]
    e = model.embed_features(x)
    torch.testing.assert_close(e[:, names.index("ConstPT_18")], e[:, names.index("ConstPT_3")])
    torch.testing.assert_close(e[:, names.index("ConstEta_7")], e[:, names.index("ConstEta_25")])
    # a pT and an η column with the same value use different networks
    x[:, names.index("ConstEta_3")] = x[:, names.index("ConstPT_3")]
    e = model.embed_features(x)
    assert not torch.allclose(e[:, names.index("ConstEta_3")], e[:, names.index("ConstPT_3")])


def test_pooled_fusion_without_positions_is_invariant_under_constituent_permutations() -> None:
    model = RobustJetTagger(fusion="mean", position_embedding=False, dropout=0.0).eval()
    fs = challenge_features()
    x = torch.randn(6, 87)
    # permute constituents 2..29 (those with all three features), moving their columns together
    perm = np.random.default_rng(1).permutation(np.arange(2, 30))
    target = {c: int(p) for c, p in zip(range(2, 30), perm, strict=True)}
    prefix = {"pt": "ConstPT", "eta": "ConstEta", "phi": "ConstPhi"}
    cols = [fs.index(f"{prefix[s.kind]}_{target.get(s.constituent, s.constituent)}") for s in fs]
    x_perm = x[:, cols]
    assert not torch.equal(x_perm, x)
    torch.testing.assert_close(model(x_perm), model(x), rtol=1e-5, atol=1e-6)
    # the concat fusion (the default) does see the order
    concat = RobustJetTagger(dropout=0.0).eval()
    assert not torch.allclose(concat(x_perm), concat(x))


def test_any_typed_feature_set_is_accepted() -> None:
    fs = _full_layout(4)
    model = RobustJetTagger(layout=fs, fusion="sum").eval()
    assert model.n_features == 12
    assert model.n_constituents == 4
    assert model(torch.randn(3, 12)).shape == (3,)
    same = RobustJetTagger(layout=[(s.kind, s.constituent) for s in fs], fusion="sum")
    assert same.config == model.config
    assert model.config["layout"][:2] == [["pt", 0], ["eta", 0]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_features": 88}, "not a challenge layout"),
        ({"layout": [("pt", 0), ("mass", 0)]}, "kind must be one of"),
        ({"layout": [("pt", 0), ("pt", 0)]}, "duplicate"),
        ({"layout": [("pt", 0)], "n_features": 2}, "layout has 1 columns"),
        ({"layout": "challenge"}, "layout must be"),
        ({"fusion": "max"}, "fusion must be"),
        ({"dropout": 1.0}, "dropout must lie"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"hidden": 64}, "hidden must be a sequence"),
        ({"pt_inputs": -1}, "pt_inputs"),
        ({"pt_inputs": 1.5}, "pt_inputs"),
    ],
)
def test_bad_configuration_raises(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RobustJetTagger(**kwargs)  # type: ignore[arg-type]


def test_wrong_feature_count_raises_a_clear_error() -> None:
    model = RobustJetTagger()
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 87\), got \(2, 90\)"):
        model(torch.zeros(2, 90))
    with pytest.raises(ValueError, match="model expects 87"):
        predict_logits(model, np.zeros((2, 86)))
    with pytest.raises(ValueError, match="at least 2 rows of 87"):
        model.fit_input_scaling(np.zeros((5, 86)))


def test_gradient_reaches_every_parameter() -> None:
    model = RobustJetTagger(dropout=0.0).train()
    x = torch.randn(16, 87, requires_grad=True)
    model(x).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert float(p.grad.abs().sum()) > 0, name
    assert x.grad is not None
    assert float(x.grad.abs().sum()) > 0


def test_input_scaling_per_feature_and_per_type() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 87)) * np.linspace(0.5, 3.0, 87) + 1.0
    model = RobustJetTagger().fit_input_scaling(x)
    np.testing.assert_allclose(model.input_mean.numpy(), x.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.input_scale.numpy(), x.std(axis=0, ddof=1), rtol=1e-4)
    typed = RobustJetTagger().fit_input_scaling(x, by="type")
    pt = challenge_features().kind_mask("pt")
    assert np.unique(typed.input_mean.numpy()[pt]).size == 1
    assert typed.input_mean.numpy()[pt][0] == pytest.approx(x[:, pt].mean(), rel=1e-4)
    with pytest.raises(ValueError, match="by must be"):
        model.fit_input_scaling(x, by="column")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"layout": _full_layout(3), "fusion": "mean", "position_embedding": False}, {"pt_inputs": 1}],
)
def test_checkpoint_round_trip_gives_identical_logits(tmp_path: Path, kwargs: dict[str, object]) -> None:
    assert ARCHITECTURES["robust"] is RobustJetTagger
    model = RobustJetTagger(**kwargs)  # type: ignore[arg-type]
    n = model.n_features
    model.fit_input_scaling(np.random.default_rng(0).normal(size=(50, n)) * 2 + 1)
    path = save_checkpoint(model, tmp_path / "robust.safetensors", metadata={"seed": 3})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, RobustJetTagger)
    assert meta == {"seed": 3}
    assert loaded.config == model.config
    x = np.random.default_rng(1).normal(size=(20, n))
    np.testing.assert_array_equal(predict_logits(loaded, x), predict_logits(model.eval(), x))


def test_trains_with_the_training_loop(challenge_jets: Callable[..., np.ndarray]) -> None:
    # W-like jets (label 1) have a harder second constituent: learnable from pT ratios.
    x = challenge_jets(600, seed=3)
    y = np.random.default_rng(4).integers(0, 2, 600)
    x[y == 1, 1] *= 1.6
    x[y == 1, 3] *= 0.5
    torch.manual_seed(0)
    model = RobustJetTagger(hidden=(32,), dropout=0.1).fit_input_scaling(x[:400])
    hist = train_classifier(
        model, x[:400], y[:400], x[400:], y[400:], epochs=8, batch_size=64, lr=3e-3, progress=False
    )
    assert hist.val_loss[hist.best_epoch] < 0.5 * hist.val_loss[0]
    assert hist.val_accuracy[hist.best_epoch] > 0.9


def test_gradient_attacks_of_the_attack_framework_run_on_it(
    challenge_jets: Callable[..., np.ndarray],
) -> None:
    from aalearn.attacks import get_attack

    x = challenge_jets(40, seed=5)
    model = RobustJetTagger(dropout=0.0).fit_input_scaling(x).eval()
    result = get_attack("pgd", eps=2.0, steps=5).run(model, x, seed=0)  # attacks the model's own decisions
    assert result.x_adv.shape == x.shape
    assert np.isfinite(result.x_adv).all()
    assert result.score_clean is not None
    assert result.score_adv is not None
    # the attack pushes every jet's score away from its clean decision
    sign = np.where(result.decision_clean == 1, 1.0, -1.0)
    assert np.all(sign * (result.score_adv - result.score_clean) <= 1e-6)
    assert np.mean(sign * (result.score_adv - result.score_clean) < 0) > 0.9


@pytest.mark.parametrize("k", [0, 1, 3])
def test_pt_inputs_reads_only_the_leading_constituents_pt(k: int) -> None:
    """With pt_inputs = k the logits ignore every other pT column, and only those."""
    torch.manual_seed(0)
    model = RobustJetTagger(pt_inputs=k, dropout=0.0).eval()
    model.fit_input_scaling(np.random.default_rng(0).normal(size=(100, 87)) * 0.3 + 0.5)
    fs = challenge_features()
    masked = np.array([s.kind == "pt" and s.constituent >= k for s in fs])
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(32, 87)), dtype=torch.float32)
    y = x.clone()
    y[:, torch.as_tensor(masked)] += torch.randn(32, int(masked.sum())) * 5.0  # RDSA-like re-draws
    with torch.no_grad():
        torch.testing.assert_close(model(y), model(x), rtol=0, atol=0)
    z = x.clone()
    z[:, torch.as_tensor(~masked)] += 0.5  # the columns it reads do change the output
    with torch.no_grad():
        assert float((model(z) - model(x)).abs().min()) > 0
    # no gradient to the ignored columns (a white-box attack cannot use them), some to the others
    xg = x.clone().requires_grad_(True)
    model(xg).sum().backward()
    assert xg.grad is not None
    assert float(xg.grad[:, torch.as_tensor(masked)].abs().max()) == 0.0
    assert float(xg.grad[:, torch.as_tensor(~masked)].abs().sum()) > 0
    # the default reads every column: same parameter count, the ignored ones now matter
    full = RobustJetTagger(dropout=0.0).eval()
    assert full.n_parameters == model.n_parameters
    assert "pt_inputs" not in full.config
    assert model.config["pt_inputs"] == k
    with torch.no_grad():
        assert float((full(y) - full(x)).abs().max()) > 0
