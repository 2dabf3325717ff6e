"""Tests written to kill surviving mutants of ``surrogates/amplification.py`` (issue 23).

The reference is a hand-solvable ensemble: two members that each put exactly half of their
events on either side of 0, against known probabilities (1/2, 1/2). Then the bias and the
model variance vanish, and the decomposition's curve is
n_equiv(n) = Σ p(1-p) / (Σ q̄(1-q̄) / n) = 0.5 / (0.5 / n) = n exactly.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
import pytest

from aalearn.surrogates.amplification import amplification_from_samples
from aalearn.surrogates.closure import _yields, closure_test

matplotlib.use("Agg")

EDGES = np.array([-np.inf, 0.0, np.inf])


def _perfect(n_gen_grid: list[int] | None = None) -> Any:
    member = np.tile([-1.0, 1.0], 20)  # 40 values, every even prefix split exactly in half
    return amplification_from_samples(
        [member, member.copy()],
        truth_probabilities=[0.5, 0.5],
        bins=EDGES,
        n_train=10,
        n_gen_grid=n_gen_grid,
    )


def test_model_curve_of_a_perfect_ensemble_is_the_generated_size() -> None:
    res = _perfect([2, 10, 40])
    assert res.n_gen_grid.dtype == np.float64
    np.testing.assert_array_equal(res.n_gen_grid, [2.0, 10.0, 40.0])
    np.testing.assert_allclose(res.n_equiv_model, [2.0, 10.0, 40.0], rtol=1e-12)
    assert res.bias2_total == 0.0
    assert res.model_var_total == 0.0
    out = res.to_dict()
    assert out["bias2_total"] == 0.0
    assert out["bins"]["edges"] == [None, 0.0, None]  # ±inf become null (the JSON policy)
    assert out["curve"]["n_gen"] == [2.0, 10.0, 40.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bins": np.array([-1.0, 1.0, 0.5])}, "at least two strictly increasing edges"),
        ({"truth_probabilities": [0.9, 0.6]}, r"must lie in \[0, 1\] and sum to at most 1"),
    ],
)
def test_bad_bins_and_probabilities_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"truth_probabilities": [0.5, 0.5], "bins": EDGES, "n_train": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        amplification_from_samples([np.arange(10.0), np.arange(10.0)], **args)


def test_bad_truth_sample_is_named() -> None:
    with pytest.raises(ValueError, match="truth"):
        amplification_from_samples(
            [np.arange(10.0), np.arange(10.0)], truth=np.zeros((20, 2)), bins=3, n_train=10
        )


class _Report:
    def __init__(self) -> None:
        self.sections: list[dict[str, Any]] = []

    def add_section(self, title: str, **kw: Any) -> None:
        self.sections.append({"title": title, **kw})

    def add_metadata(self, key: str, value: Any) -> None:  # pragma: no cover - protocol only
        pass


def test_report_section_carries_the_summary_table() -> None:
    res = _perfect()
    report = _Report()
    res.add_to(report)
    (section,) = report.sections
    assert section["title"] == "Amplification (x)"
    assert section["table"] == res.summary()[0]
    assert len(section["figures"]) == 1


def test_template_yields_and_their_squared_weights() -> None:
    """10 events scaled to 50 expected: weight 5 each; Σw = 50 and Σw² = 10 · 25 = 250 (staterror)."""
    yields, sumw2 = _yields(np.full(10, 0.3), np.array([0.0, 0.5, 1.0]), 50.0)
    np.testing.assert_allclose(yields, [50.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(sumw2, [250.0, 0.0], rtol=1e-12)


def test_closure_input_errors_name_the_argument() -> None:
    rng = np.random.default_rng(0)
    good = rng.random(50)
    with pytest.raises(ValueError, match=r"^real_signal must have 1 dimensions, got shape \(50, 2\)"):
        closure_test(good, good, rng.random((50, 2)), good)
    # one 2-D array is one (bad) sample, named without a member index
    with pytest.raises(ValueError, match=r"^surrogate_background must have 1 dimensions"):
        closure_test(good, rng.random((50, 2)), good, good)
    with pytest.raises(ValueError, match=r"all observable values are equal \(0\.5\)"):
        closure_test(
            np.full(50, 0.5), np.full(50, 0.5), np.full(50, 0.5), np.full(50, 0.5), model_nuisance=False
        )
