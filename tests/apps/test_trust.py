"""The trust audit: feature specifications, bootstrap intervals, ONNX models, decision rule, end to end."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from aalearn.apps.measure import pseudo_data
from aalearn.apps.trust import trust_audit
from aalearn.apps.trust_sections import EXPLAIN_STEPS, explain_subsample
from aalearn.apps.trust_verdict import Check, DecisionRule, verdict
from aalearn.cli.main import app
from aalearn.constraints.tabular import SpecBounds
from aalearn.data.dataset import JetDataset
from aalearn.data.io import load_dataset, save_dataset
from aalearn.evaluation.bootstrap import bootstrap_metric, bootstrap_metrics
from aalearn.explain import explain_model
from aalearn.inference.measurement import Measurement, templates_from_scores
from aalearn.models import TopoDNN, load_model, predict_proba, save_checkpoint
from aalearn.physics.spec import generic_specification, load_feature_spec, parse_feature_spec
from aalearn.report import find_chromium, render_check

runner = CliRunner()

SPEC = """
[[column]]
name = "mass"
unit = "100 GeV"
sigma = 0.05
lower = 0.0

[[column]]
name = "width"
unit = "100 GeV"
relative_sigma = 0.1
sigma_floor = 0.01
lower = 0.0
upper = 5.0

[[column]]
name = "angle"
unit = "rad"
sigma = 0.1
lower = -3.141592653589793
period = 6.283185307179586

[[column]]
name = "shape"
unit = "1"
sigma = 0.2
"""
NAMES = ("mass", "width", "angle", "shape")


def _onnx2torch_or_skip() -> None:
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch is not installed (pip install --no-deps onnx2torch)")


def _tabular(n: int = 800, seed: int = 0) -> JetDataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.stack(
        [
            np.abs(0.8 + 0.2 * y + 0.1 * rng.standard_normal(n)),
            np.abs(0.5 + 0.1 * rng.standard_normal(n)),
            rng.uniform(-math.pi, math.pi, n),
            0.5 * y + rng.standard_normal(n),
        ],
        axis=1,
    ).astype(np.float32)
    return JetDataset(x, y.astype(np.int64), NAMES, source="toy")


def _train(ds: JetDataset, seed: int = 0) -> TopoDNN:
    torch.manual_seed(seed)
    net = TopoDNN(n_features=ds.features.shape[1], hidden=(16,), batchnorm=False)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    x, y = torch.from_numpy(ds.features), torch.from_numpy(ds.labels.astype(np.float32))
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(x), y).backward()
        opt.step()
    return net.eval()


# --------------------------------------------------------------------------- specification
def test_feature_spec_reads_sigma_bounds_period(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    spec = load_feature_spec(path)
    assert spec.names == NAMES
    x = np.array([[1.0, 2.0, 0.0, 0.0], [1.0, 0.01, 0.0, 0.0]])
    # relative σ: 10 % of |x|, floored at 0.01
    np.testing.assert_allclose(spec.sigma(x), [[0.05, 0.2, 0.1, 0.2], [0.05, 0.01, 0.1, 0.2]])
    assert spec.periodic_mask.tolist() == [False, False, True, False]
    assert spec.upper[2] == pytest.approx(math.pi)
    assert spec.feature_set() is None  # tabular columns


def test_spec_bounds_constraint_clamps_and_wraps(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    c = SpecBounds(load_feature_spec(path))
    x0 = torch.zeros(1, 4, dtype=torch.float64)
    x = torch.tensor([[-0.2, 6.0, math.pi + 0.5, 100.0]], dtype=torch.float64)
    assert bool(c.violated(x, x0)[0])
    fixed = c.repair(x, x0)
    np.testing.assert_allclose(fixed.numpy(), [[0.0, 5.0, -math.pi + 0.5, 100.0]], atol=1e-12)
    assert not bool(c.violated(fixed, x0)[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[column]]\nname = "a"\nsigma = 0.0\n', "sigma must be a finite number > 0"),
        ('[[column]]\nname = "a"\nsigma = -1.0\n', "sigma must be a finite number > 0"),
        ('[[column]]\nname = "a"\n', "give exactly one of sigma or relative_sigma"),
        ('[[column]]\nname = "a"\nsigma = 1.0\nsigmaa = 2.0\n', "unknown keys ['sigmaa']"),
        ('[[column]]\nname = "a"\nsigma = 1.0\n[[column]]\nname = "b"\nkind = "pt"\n', "mixes jet columns"),
        ('[[column]]\nname = "a"\nsigma = 1.0\nlower = 2.0\nupper = 1.0\n', "must be below upper"),
        ("column = 3\n", "no [[column]] tables"),
        ("[[column\n", "not valid TOML"),
    ],
)
def test_feature_spec_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r".") as info:
        load_feature_spec(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_feature_spec_unknown_columns() -> None:
    spec = parse_feature_spec({"column": [{"name": "a", "sigma": 1.0}, {"name": "zz", "sigma": 1.0}]})
    with pytest.raises(ValueError, match=r"not in the data: \['zz'\]"):
        spec.check_columns(["a", "b"])
    spec.check_columns(["a", "zz"])


def test_generic_specification_uses_std_and_range() -> None:
    x = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    spec = generic_specification(x, ["a", "b"])
    np.testing.assert_allclose(spec.sigma(x)[0], [np.std([0.0, 2.0, 4.0]), 1.0])
    np.testing.assert_allclose(spec.lower, [0.0, 5.0])
    np.testing.assert_allclose(spec.upper, [4.0, 6.0])
    assert "standard deviation" in spec.note


def test_jet_spec_is_a_feature_set() -> None:
    spec = parse_feature_spec(
        {
            "column": [
                {"name": "pt0", "kind": "pt", "constituent": 0, "unit": "GeV", "scale_gev": 1.0},
                {"name": "phi0", "kind": "phi", "constituent": 0, "unit": "rad"},
            ]
        }
    )
    fs = spec.feature_set()
    assert fs is not None
    x = np.array([[100.0, 0.1]])
    np.testing.assert_allclose(spec.sigma(x), fs.sigma(x))
    # 100 GeV: relative pT resolution 0.0583 (ResolutionModel defaults)
    assert spec.sigma(x)[0, 0] == pytest.approx(5.83, abs=0.01)


# --------------------------------------------------------------------------- bootstrap
@pytest.mark.slow
def test_bootstrap_standard_errors_match_analytic() -> None:
    """Accuracy: binomial sqrt(p(1-p)/n); AUC: Hanley & McNeil (Radiology 143 (1982) 29).

    Tolerance 15 %: three standard errors of a standard deviation estimated from 200 replicas.
    """
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + rng.standard_normal(n))))
    acc = bootstrap_metric(lambda yy, ss: float(np.mean((ss > 0.5) == yy)), y, s, n_boot=200, seed=0)
    p = acc.value
    assert acc.std == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.15)
    res = bootstrap_metrics(y, s, signal_label=1, n_boot=200, seed=0)
    a = res["auc"].value
    assert a == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    hm = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert res["auc"].std == pytest.approx(hm, rel=0.15)
    assert res["auc"].low < a < res["auc"].high


def test_bootstrap_bad_input() -> None:
    with pytest.raises(ValueError, match="n_boot must be at least 10"):
        bootstrap_metric(lambda y, s: 0.0, [0, 1], [0.1, 0.2], n_boot=3)
    with pytest.raises(ValueError, match="same shape"):
        bootstrap_metric(lambda y, s: 0.0, [0, 1, 1], [0.1, 0.2])


# --------------------------------------------------------------------------- decision rule
def test_verdict_levels() -> None:
    rule = DecisionRule()
    ok = Check("auc", "performance", 0.9, 0.6, True, "fail", "AUC 0.9")
    warn = Check("calibration", "uncertainty", 0.1, 0.05, False, "warn", "ECE 0.1")
    fail = Check("attack_shift", "measurement", 3.4, 1.0, False, "fail", "moves μ̂ by 3.40 σ_μ")
    assert verdict([ok], rule).startswith("trustworthy: ")
    assert verdict([ok, warn], rule) == "trustworthy within limits: ECE 0.1"
    assert verdict([ok, warn, fail], rule) == "not trustworthy: moves μ̂ by 3.40 σ_μ"
    with pytest.raises(ValueError, match="max_shift must be positive"):
        DecisionRule(max_shift=0.0)


# --------------------------------------------------------------------------- end to end
def test_tabular_audit_end_to_end(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC)
    ds = _tabular()
    net = _train(ds)
    res = trust_audit(
        net,
        ds,
        tmp_path / "out",
        features=spec_path,
        budgets=(0.5, 2.0),
        n_boot=20,
        rule=DecisionRule(max_budget=2.0),
        explain_jets=150,
    )
    d = res.to_dict()
    for key in (
        "verdict",
        "failing_checks",
        "robustness",
        "uncertainty",
        "measurement",
        "detection",
        "explanations",
    ):
        assert key in d, key
    fails = [c["name"] for c in d["checks"] if not c["passed"] and c["severity"] == "fail"]
    assert d["failing_checks"] == fails
    assert d["verdict"].startswith("not trustworthy") == bool(fails)
    # performance on the odd rows, signal = label 0 (score = P(label 1))
    odd = np.arange(1, len(ds), 2)
    p = predict_proba(net, ds.features[odd]).astype(np.float64)
    auc = roc_auc_score(ds.labels[odd] == 0, 1 - p)
    assert d["performance"]["metrics"]["auc"]["value"] == pytest.approx(auc, abs=1e-9)
    assert d["performance"]["n"] == len(odd)
    # the attacks stay inside the specification: bounds, period, budget in σ units
    spec = load_feature_spec(spec_path)
    runs = res.audit.curves["pgd"]
    assert [s for s, _ in runs] == [0.5, 2.0]
    for eps, run in runs:
        xa, x0 = run.result.x_adv, run.result.x
        assert np.all(xa >= spec.lower - 1e-9)
        assert np.all(xa[:, 1] <= 5.0 + 1e-9)
        assert np.all(xa[:, 2] < math.pi)
        dz = (xa - x0) / spec.sigma(x0)
        dz[:, 2] = np.angle(np.exp(1j * (xa[:, 2] - x0[:, 2]))) / spec.sigma(x0)[:, 2]
        assert np.abs(dz).max() <= eps * (1 + 1e-6)
    assert runs[1][1].result.fooling_ratio > runs[0][1].result.fooling_ratio
    # Δμ̂/σ_μ of the strongest attack, recomputed from the templates of the even rows
    even = np.arange(0, len(ds), 2)
    s_cal = predict_proba(net, ds.features[even]).astype(np.float64)
    m = d["measurement"]
    edges = np.asarray(m["edges"])
    t = templates_from_scores(
        s_cal[ds.labels[even] == 0],
        s_cal[ds.labels[even] == 1],
        bins=edges,
        normsys={"signal_norm": {"signal": (0.95, 1.05)}, "background_norm": {"background": (0.9, 1.1)}},
    )
    meas = Measurement(t)
    sigma = meas.fit().mu_err
    kw = {"expected_signal": 100.0, "expected_background": 1000.0}
    clean = meas.fit(pseudo_data(p, ds.labels[odd], edges, **kw)).mu_hat
    s_adv = predict_proba(net, runs[1][1].result.x_adv).astype(np.float64)
    adv = meas.fit(pseudo_data(s_adv, ds.labels[odd], edges, **kw)).mu_hat
    row = next(r for r in m["shifts"] if r.get("budget") == 2.0)
    assert row["delta_mu_over_sigma"] == pytest.approx((adv - clean) / sigma, rel=1e-4, abs=1e-4)
    # files: results.json with the verdict, report.html with the summary on top
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["verdict"] == d["verdict"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.index("Verdict") < html.index("Performance") < html.index("Measurement")
    assert "Time per section" in html
    # explanations: the section equals a direct explain_model call on the same seeded subsample
    odd_ds = ds.subset(odd)
    idx = explain_subsample(len(odd), 150, 0)
    assert len(np.unique(idx)) == 150
    direct = explain_model(
        net,
        odd_ds.features[idx],
        odd_ds.labels[idx],
        feature_names=list(NAMES),
        steps=EXPLAIN_STEPS,
        seed=0,
        n_sanity=150,
        adversarial={"pgd@2σ": runs[1][1].result.x_adv[idx]},
    ).to_dict()
    ex = d["explanations"]
    assert ex["n_jets"] == 150
    assert [r["feature"] for r in ex["feature_importance"]] == [
        r["feature"] for r in direct["feature_importance"][:10]
    ]
    assert [r["importance"] for r in ex["feature_importance"]] == pytest.approx(
        [r["importance"] for r in direct["feature_importance"][:10]], rel=1e-9
    )
    assert ex["sanity"]["completeness_error"] == pytest.approx(
        direct["sanity"]["completeness_error"], rel=1e-9
    )
    assert ex["attacks"][0]["name"] == "pgd@2σ"
    for key in ("n_successful", "top_attacked", "top_attributed"):
        assert ex["attacks"][0][key] == direct["attacks"][0][key], key
    # the toy's label lives mostly in "mass" (separation 2σ): the explanation ranks it first
    assert ex["feature_importance"][0]["feature"] == "mass"
    assert d["section_seconds"]["explanations"] > 0
    assert html.index("Measurement") < html.index("Explanations")
    if find_chromium() is not None or os.environ.get("CI") == "true":  # CI installs chromium
        shown = render_check(tmp_path / "out" / "report.html", timeout=90, window_width=1280)
        assert shown.all_images_loaded
        assert shown.fits_window, shown


def _files(tmp_path: Path, ds: JetDataset, net: torch.nn.Module) -> tuple[Path, Path]:
    data = tmp_path / "data.feather"
    save_dataset(ds, data)
    model = tmp_path / "model.safetensors"
    save_checkpoint(net, model)
    return data, model


def test_cli_bad_input_one_line(tmp_path: Path) -> None:
    ds = _tabular(60)
    data, model = _files(tmp_path, ds, _train(ds))
    wide = tmp_path / "wide.safetensors"
    save_checkpoint(TopoDNN(n_features=5, hidden=(4,)), wide)
    spec_bad = tmp_path / "bad.toml"
    spec_bad.write_text('[[column]]\nname = "nope"\nsigma = 1.0\n')
    other = JetDataset(ds.features[:, :3].copy(), ds.labels, NAMES[:3], source="other")
    other_path = tmp_path / "other.feather"
    save_dataset(other, other_path)
    cases = [
        (
            ["--model", str(wide), "--data", str(data)],
            "the model expects 5 input features but the data have 4",
        ),
        (
            ["--model", str(model), "--data", str(data), "--features", str(spec_bad)],
            "not in the data: ['nope']",
        ),
        (
            ["--model", str(model), "--data", str(data), "--variation", f"fsr={other_path}:{data}"],
            "has other columns than the data",
        ),
        (["--model", str(model), "--data", str(data), "--budget", "-1"], "positive number of σ"),
    ]
    for args, message in cases:
        out = runner.invoke(app, ["audit", *args, "--json"])
        assert out.exit_code == 2, out.output
        assert message in out.output
        assert len(out.output.strip().splitlines()) == 1, out.output


# --------------------------------------------------------------------------- ONNX
def _export(net: torch.nn.Module, n_features: int, path: Path) -> Path:
    torch.onnx.export(
        net.eval(),
        (torch.zeros(2, n_features),),
        str(path),
        input_names=["x"],
        output_names=["logit"],
        dynamic_axes={"x": {0: "n"}, "logit": {0: "n"}},
        dynamo=False,
        opset_version=17,  # onnx2torch 1.5 converts opsets up to 17
    )
    return path


def test_onnx_round_trip_values_and_gradients(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    _onnx2torch_or_skip()
    torch.manual_seed(0)
    net = TopoDNN(n_features=6, hidden=(8, 4)).eval()
    path = _export(net, 6, tmp_path / "m.onnx")
    loaded = load_model(path)
    x = torch.randn(16, 6, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ref, out = net(x), loaded(x2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    ref.sum().backward()
    out.sum().backward()
    assert x2.grad is not None
    torch.testing.assert_close(x2.grad, x.grad, atol=1e-5, rtol=1e-4)


def test_onnx_unconvertible_operator_is_one_line(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    _onnx2torch_or_skip()
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"])],
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "det.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="cannot be converted to torch") as info:
        load_model(path)
    assert "Det" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_challenge_model_through_onnx_matches_keras(
    tmp_path: Path, challenge_data: Callable[[], Path]
) -> None:
    """The issue's done-when: clean accuracy 1.000 and adversaries 0.093, the same as the Keras file."""
    pytest.importorskip("onnx")
    _onnx2torch_or_skip()
    shared = challenge_data()
    keras = load_model(shared / "best_model.hdf5")
    onnx_model = load_model(_export(keras, 87, tmp_path / "challenge.onnx"))
    for name, expected in (("Clean_Test_Public.feather", 1.000), ("Adversaries_Test_Public.feather", 0.093)):
        ds = load_dataset(shared / name)
        assert ds.labels is not None
        acc_k = float(np.mean((predict_proba(keras, ds.features) > 0.5) == ds.labels))
        acc_o = float(np.mean((predict_proba(onnx_model, ds.features) > 0.5) == ds.labels))
        assert acc_o == acc_k
        assert round(acc_o, 3) == expected
