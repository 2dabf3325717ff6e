"""The whole suite: same-generator samples are compatible, distortions are flagged, bad input errors, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aalearn.data.dataset import JetDataset
from aalearn.physics import challenge_feature_names, challenge_features
from aalearn.surrogates import JET_FEATURES, feature_matrix, jet_features, validate_samples
from aalearn.surrogates.verdict import Check

FAST: dict[str, Any] = {
    "n_null": 8,
    "fpd_options": {"num_batches": 4, "num_points": 3},
    "kpd_options": {"num_batches": 4},
}


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """Oversubscribed OpenMP/BLAS threads on a shared 2-core machine are 10-100x slower than one."""
    import sklearn.ensemble  # noqa: F401 - load scikit-learn's OpenMP runtime before limiting it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def jets(challenge_jets: Callable[..., np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A reference and a candidate drawn from the same (synthetic) generator."""
    return challenge_jets(1000, seed=11), challenge_jets(500, seed=12)


_PT = np.array([s.kind == "pt" for s in challenge_features()])


def test_same_generator_is_compatible(jets: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cand = jets
    result = validate_samples(ref, cand, seed=3, **FAST)
    assert result.verdict.safe, str(result.verdict)
    assert result.failing_checks == []
    assert result.feature_names == JET_FEATURES
    assert result.n_compared == (500, 500)
    d = result.to_dict()
    for key in ("fpd", "fpd_significance", "kpd", "c2st_auc", "verdict", "failing_checks"):
        assert key in d
    assert d["verdict"].startswith("safe:")
    assert 0.4 < d["c2st_auc"] < 0.6
    json.dumps(d, allow_nan=False)
    names = [c["name"] for c in d["checks"]]
    assert {"fpd", "kpd", "corr", "c2st", "w1:jet_mass", "ks:jet_mass", "tail:jet_mass:q0.999"} <= set(names)


def test_shifted_constituent_pt_is_flagged(jets: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cand = jets
    shifted = cand.copy()
    shifted[:, _PT] *= 1.15
    result = validate_samples(ref, shifted, seed=3, **FAST)
    assert not result.verdict.safe
    assert "ks:jet_pt" in result.failing_checks
    assert result.w1[0].z > 5  # W1 far outside its null (8 resamples cannot resolve p < 1/9)
    assert str(result.verdict).startswith("not safe, because")
    assert "jet_pt in [" in str(result.verdict)  # names the region


def test_smeared_jet_mass_is_flagged(jets: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cand = jets
    rng = np.random.default_rng(0)
    smeared = cand.copy()
    smeared[:, ~_PT] *= 1.0 + 0.35 * rng.normal(size=(len(cand), 1))  # per-jet angular scale
    result = validate_samples(ref, smeared, seed=3, **FAST)
    assert not result.verdict.safe
    assert any(n.endswith(":jet_mass") or n.startswith("tail:jet_mass") for n in result.failing_checks)


def test_removed_tail_is_flagged(
    jets: tuple[np.ndarray, np.ndarray], challenge_jets: Callable[..., np.ndarray]
) -> None:
    ref, _ = jets
    pool = challenge_jets(800, seed=13)
    mass = jet_features(pool)[:, 1]
    no_tail = pool[mass < np.quantile(jet_features(ref)[:, 1], 0.85)][:500]
    result = validate_samples(ref, no_tail, seed=3, **FAST)
    assert not result.verdict.safe
    assert "ks:jet_mass" in result.failing_checks or "tail:jet_mass:q0.99" in result.failing_checks


def test_closure_and_amplification_checks_join_the_verdict(jets: tuple[np.ndarray, np.ndarray]) -> None:
    class _Result:
        def __init__(self, checks: list[Check]) -> None:
            self._checks = checks
            self.calls: list[dict[str, Any]] = []

        def checks(self, **kwargs: Any) -> list[Check]:
            self.calls.append(kwargs)
            return self._checks

        def to_dict(self) -> dict[str, Any]:
            return {"n": len(self._checks)}

    ref, cand = jets
    closure = _Result([Check("closure_bias", False, 0.45, 0.2, "bias +0.45 σ_stat")])
    amplification = _Result([Check("amplification", True, 5e4, 1e4, "n_equiv = 5e4")])
    result = validate_samples(
        ref[:200, :6], cand[:100, :6], features="all", seed=1, closure=closure, amplification=amplification,
        needed_events=1e4, c2st_classifier=None, **FAST,
    )  # fmt: skip
    assert amplification.calls == [{"needed_events": 1e4}]
    assert result.failing_checks == ["closure_bias"]
    assert "bias +0.45" in str(result.verdict)
    assert result.to_dict()["closure"] == {"n": 1}


def test_bad_input_gives_clear_errors(jets: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cand = jets
    names = challenge_feature_names()
    ds_ref = JetDataset(ref[:100], None, names)
    ds_other = JetDataset(cand[:100, :10], None, [f"x{i}" for i in range(10)])
    with pytest.raises(ValueError, match="different feature sets"):
        validate_samples(ds_ref, ds_other, features="all", **FAST)
    with pytest.raises(ValueError, match="same features in a different order"):
        validate_samples(ds_ref, JetDataset(cand[:100], None, names[::-1]), features="all", **FAST)
    nan = cand.copy()
    nan[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        validate_samples(ref, nan, **FAST)
    with pytest.raises(ValueError, match="too few rows"):
        validate_samples(ref[:30], cand[:30], **FAST)
    with pytest.raises(ValueError, match="max_samples"):
        validate_samples(ref, cand, n_null=4, fpd_options={"max_samples": 50_000})
    with pytest.raises(ValueError, match="batch_size"):
        validate_samples(ref, cand, n_null=4, kpd_options={"batch_size": 5_000})
    with pytest.raises(ValueError, match="challenge layout"):
        validate_samples(ref[:, :10], cand[:, :10], **FAST)
    with pytest.raises(ValueError, match="amplification result"):
        validate_samples(ref, cand, needed_events=1e4, **FAST)
    with pytest.raises(ValueError, match="n_null"):
        validate_samples(ref, cand, n_null=1)
    with pytest.raises(ValueError, match="features must be one of"):
        validate_samples(ref, cand, features="jets")
    with pytest.raises(ValueError, match="alpha"):
        validate_samples(ref, cand, alpha=0.0)
    with pytest.raises(ValueError, match="c2st_classifier"):
        validate_samples(ref, cand, c2st_classifier="svm")
    with pytest.raises(ValueError, match="quantiles"):
        validate_samples(ref, cand, tail_quantiles=(0.5,))


def test_feature_sets(jets: tuple[np.ndarray, np.ndarray]) -> None:
    ref, _ = jets
    x, names = feature_matrix(ref, kind="jet")
    assert names == JET_FEATURES
    assert x.shape == (len(ref), len(JET_FEATURES))
    assert np.all(np.isfinite(x))
    assert np.all(x[:, 2] == 30)  # multiplicity: no padding in this sample
    assert np.all((x[:, 4] > 0) & (x[:, 4] < 1))
    assert np.all(x[:, 4] >= x[:, 5])
    assert np.all((x[:, 6] >= 0) & (x[:, 7] >= 0))
    # named jet-level columns pass through; constituent columns of another layout do not
    ds = JetDataset(x[:, :2].astype(np.float32), None, ("mass", "sum_pt"))
    assert feature_matrix(ds, kind="jet")[1] == ("mass", "sum_pt")
    with pytest.raises(ValueError, match="challenge layout"):
        feature_matrix(JetDataset(ref[:, :3], None, ("ConstPT_0", "ConstPT_1", "ConstPhi_1")), kind="jet")


@pytest.mark.slow
def test_files_report_and_results(tmp_path: Path, jets: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("matplotlib")
    from aalearn.apps.surrogate import validate_files

    ref, cand = jets
    shifted = cand.copy()
    shifted[:, _PT] *= 1.15
    r, c = _write(tmp_path / "ref.feather", ref), _write(tmp_path / "cand.feather", shifted)
    result, paths = validate_files(r, c, out=tmp_path / "out", seed=3, **FAST)
    html = Path(paths["report"]).read_text()
    for title in (
        "Surrogate verdict",
        "Surrogate metrics and their nulls",
        "Surrogate: per-feature comparison",
    ):
        assert title in html
    assert "not safe, because" in html
    assert html.count("data:image/png;base64,") >= 3
    saved = json.loads(Path(paths["results"]).read_text())
    assert saved["failing_checks"] == result.failing_checks
    assert saved["candidate"] == str(c)


def _write(path: Path, x: np.ndarray) -> Path:
    from aalearn.data.io import save_dataset

    save_dataset(JetDataset(x.astype(np.float32), None, challenge_feature_names()), path)
    return path


def test_cli_validate_json_and_errors(tmp_path: Path, jets: tuple[np.ndarray, np.ndarray]) -> None:
    from typer.testing import CliRunner

    from aalearn.cli.main import app

    ref, cand = jets
    shifted = cand.copy()
    shifted[:, _PT] *= 1.15
    r, c = _write(tmp_path / "ref.feather", ref), _write(tmp_path / "cand.feather", shifted)
    args = [
        "surrogate",
        "validate",
        "--reference",
        str(r),
        "--candidate",
        str(c),
        "--n-null",
        "5",
        "--threads",
        "1",
    ]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("fpd", "fpd_significance", "kpd", "c2st_auc", "verdict", "failing_checks"):
        assert key in payload
    assert payload["safe"] is False
    assert "ks:jet_pt" in payload["failing_checks"]
    assert "warning: n_null = 5 is too small" in res.stderr  # on stderr: stdout stays one JSON object
    bad = CliRunner().invoke(app, [*args[:5], str(tmp_path / "missing.feather"), "--json"])
    assert bad.exit_code == 2
    assert "error:" in bad.output
    bad = CliRunner().invoke(app, [*args, "--correction", "bonferroni", "--json"])
    assert bad.exit_code == 2
    assert "correction" in bad.output


# --------------------------------------------------------------------------- n_null and weights
def test_too_small_n_null_warns_and_hides_a_far_off_fpd(jets: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cand = jets
    shifted = cand.copy()
    shifted[:, _PT] *= 1.15
    result = validate_samples(ref, shifted, seed=3, c2st_classifier=None, **FAST)
    # the FPD lies far off its null yet passes: 1/(8 + 1) cannot survive the correction
    assert (result.fpd.observed - result.fpd.null_mean) / result.fpd.null_std > 5
    assert "fpd" not in result.failing_checks
    assert len(result.warnings) == 1
    assert "n_null = 8 is too small" in result.warnings[0]
    assert result.to_dict()["warnings"] == result.warnings


def test_n_null_warning_threshold_matches_the_correction() -> None:
    from aalearn.surrogates.null import min_attainable_pvalue
    from aalearn.surrogates.validate import n_null_warnings
    from aalearn.surrogates.verdict import first_step_threshold, statistical_checks

    for correction in ("holm", "by"):
        thr = first_step_threshold(30, alpha=0.05, correction=correction)
        # independent check against the correction itself: one small p among 29 p = 1
        for p, fails in ((0.99 * thr, True), (1.01 * thr, False)):
            checks = statistical_checks(
                [f"t{i}" for i in range(30)], [p] + [1.0] * 29, [""] * 30, correction=correction
            )
            assert (not checks[0].passed) is fails, (correction, p)
    assert min_attainable_pvalue(20) == pytest.approx(1 / 21)
    assert n_null_warnings(20, 30, []) != []  # 1/21 > 0.05/30
    assert n_null_warnings(40, 30, []) != []  # still no tail fit (needs 41)
    assert n_null_warnings(41, 30, []) == []  # the exponential tail fit can go below 1/(n + 1)
    assert n_null_warnings(19, 1, []) == []  # a single test: 1/20 = 0.05 can reach alpha
    assert n_null_warnings(18, 1, []) != []  # 1/19 > 0.05


def test_weighted_c2st_accepts_the_exactly_reweighted_candidate() -> None:
    from aalearn.surrogates.twosample import c2st

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3000, 2))
    cand = rng.normal(size=(3000, 2)) + np.array([0.5, 0.0])
    # exact density ratio N(0, 1) / N(0.5, 1) in the first feature
    ratio = np.exp(-0.5 * cand[:, 0] + 0.125)
    plain = c2st(ref, cand, seed=1, n_threads=1)
    weighted = c2st(ref, cand, seed=1, n_threads=1, candidate_weights=ratio)
    # analytic unweighted AUC of a 0.5σ shift: Φ(0.5/√2) = 0.638 (a held-out classifier reaches less)
    assert plain.auc > 0.6
    assert plain.pvalue < 1e-10
    assert weighted.weighted
    assert abs(weighted.auc - 0.5) < 0.04, weighted.auc
    assert weighted.pvalue > 1e-3
    # the weighted null is wider than the unweighted one (Kish n_eff < n)
    assert weighted.auc_null_std > plain.auc_null_std
    with pytest.raises(ValueError, match="hgb"):
        c2st(ref, cand, classifier="mlp", candidate_weights=ratio)
