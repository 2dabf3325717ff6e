"""The Check/Verdict contract and the decision rule."""

from __future__ import annotations

import json
import math

import pytest

from aalearn.surrogates.verdict import Check, Verdict, statistical_checks


def test_check_to_dict_is_json() -> None:
    d = Check("closure_bias", False, math.nan, None, "bias 0.4 σ").to_dict()
    assert d == {
        "name": "closure_bias",
        "passed": False,
        "value": None,
        "threshold": None,
        "detail": "bias 0.4 σ",
    }
    json.dumps(d, allow_nan=False)


def test_verdict_safe_only_if_every_check_passed() -> None:
    ok = Check("fpd", True, 0.4, 0.05, "FPD compatible")
    bad = Check("w1:jet_mass", False, 1e-4, 0.05, "jet_mass in [150, inf): candidate 20 % vs 10 %")
    assert Verdict.from_checks([ok]).safe
    verdict = Verdict.from_checks([ok, bad], alpha=0.05, correction="holm")
    assert not verdict.safe
    assert [c.name for c in verdict.failing_checks] == ["w1:jet_mass"]
    text = str(verdict)
    assert text.startswith("not safe, because w1:jet_mass")
    assert "[150, inf)" in text
    d = verdict.to_dict()
    assert d["failing_checks"] == ["w1:jet_mass"]
    assert d["safe"] is False
    assert len(d["checks"]) == 2
    assert str(Verdict.from_checks([ok])).startswith("safe: all 1 checks passed")


def test_verdict_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Verdict.from_checks([])
    with pytest.raises(ValueError, match="duplicate"):
        Verdict.from_checks([Check("a", True, 1, None, ""), Check("a", True, 1, None, "")])
    with pytest.raises(TypeError, match="Check"):
        Verdict.from_checks([{"name": "a"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="alpha"):
        Verdict.from_checks([Check("a", True, 1, None, "")], alpha=1.5)


def test_statistical_checks_correct_the_whole_family() -> None:
    names = [f"t{i}" for i in range(10)]
    p = [0.006] + [0.5] * 9
    raw_level = statistical_checks(names[:1], p[:1], [""], alpha=0.05)
    assert not raw_level[0].passed  # alone, 0.006 < 0.05
    family = statistical_checks(names, p, [""] * 10, alpha=0.05, correction="holm")
    assert family[0].passed
    assert family[0].value == pytest.approx(0.06)
    assert "holm-adjusted p = 0.06" in family[0].detail


def test_holm_and_by_and_nan() -> None:
    names, details = ["a", "b", "c"], ["x", "y", "z"]
    holm = statistical_checks(names, [0.001, 0.02, math.nan], details, alpha=0.05, correction="holm")
    assert [c.passed for c in holm] == [False, False, True]
    assert "no test" in holm[2].detail
    assert math.isnan(holm[2].value)
    by = statistical_checks(names, [0.001, 0.04, math.nan], details, alpha=0.05, correction="by")
    assert [c.passed for c in by] == [False, True, True]
    with pytest.raises(ValueError, match="correction"):
        statistical_checks(names, [0.1] * 3, details, correction="bonferroni")
    with pytest.raises(ValueError, match="same length"):
        statistical_checks(names, [0.1], details)
    with pytest.raises(ValueError, match="unique"):
        statistical_checks(["a", "a"], [0.1, 0.2], ["", ""])
