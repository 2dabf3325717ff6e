"""Tests that kill surviving mutants of ``aalearn.uncertainty.calibration`` (issue 23, tools/mutation.py).

Every value is compared with an independent reference written here with explicit loops
(binning, ECE norms, binomial errors), with scipy/sklearn (softmax, log loss) or with a brute-force
minimisation (the temperature). Tolerances are stated at each assertion.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax
from sklearn.metrics import log_loss

from aalearn.uncertainty import (
    TemperatureScaling,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)


def _ref_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value for right-closed bins (e_b, e_{b+1}], the first bin also holding e_0."""
    out = np.empty(values.size, dtype=int)
    for i, v in enumerate(values):
        b = 0
        while b < edges.size - 2 and v > edges[b + 1]:
            b += 1
        out[i] = b
    return out


def _ref_top_label(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    conf, right = [], []
    for yi, pi in zip(y, p, strict=True):
        if np.ndim(pi) == 0:
            pred = 1 if pi >= 0.5 else 0
            conf.append(pi if pred == 1 else 1.0 - pi)
        else:
            pred = int(np.argmax(pi))
            conf.append(pi[pred])
        right.append(1.0 if pred == yi else 0.0)
    return np.array(conf), np.array(right)


def _ref_ece(y: np.ndarray, p: np.ndarray, n_bins: int, norm: str, strategy: str) -> float:
    conf, right = _ref_top_label(y, p)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.unique(np.quantile(conf, np.linspace(0.0, 1.0, n_bins + 1)))
    idx = _ref_bins(conf, edges)
    gaps, weights = [], []
    for b in range(edges.size - 1):
        sel = idx == b
        if sel.any():
            gaps.append(abs(right[sel].mean() - conf[sel].mean()))
            weights.append(sel.sum() / conf.size)
    g, w = np.array(gaps), np.array(weights)
    if norm == "l1":
        return float(np.sum(w * g))
    if norm == "l2":
        return float(np.sqrt(np.sum(w * g**2)))
    return float(g.max())


def _data(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 2.0, n)
    y = (rng.uniform(size=n) < p**1.5).astype(int)  # miscalibrated on purpose
    return y, p


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_ece_matches_loop_reference(norm: str, strategy: str, n_bins: int) -> None:
    y, p = _data()
    # 1e-12: both sum the same few hundred terms in a different order
    ref = _ref_ece(y, p, n_bins, norm, strategy)
    got = expected_calibration_error(y, p, n_bins=n_bins, norm=norm, strategy=strategy)
    assert got == pytest.approx(ref, abs=1e-12)


def test_ece_multiclass_matches_loop_reference() -> None:
    rng = np.random.default_rng(2)
    p = rng.dirichlet([1.0, 2.0, 3.0], 300)
    y = rng.integers(0, 3, 300)
    for norm in ("l1", "l2", "max"):
        for strategy in ("uniform", "quantile"):
            ref = _ref_ece(y, p, 10, norm, strategy)
            got = expected_calibration_error(y, p, n_bins=10, norm=norm, strategy=strategy)
            assert got == pytest.approx(ref, abs=1e-12)


def test_ece_values_on_bin_edges_and_at_one_half() -> None:
    # Confidences exactly on the edges 0.6 and 0.8 of 5 uniform bins go to the lower bin
    # (right-closed bins); a score of exactly 0.5 predicts class 1 (threshold p >= 0.5).
    p = np.array([0.6, 0.8, 0.8, 0.5, 0.5, 1.0])
    y = np.array([1, 1, 0, 1, 0, 1])
    # conf: 0.6, 0.8, 0.8, 0.5, 0.5, 1.0; right: 1, 1, 0, 1, 0, 1
    # bin (.4,.6]: conf {0.6, .5, .5} mean 1.6/3, acc 2/3; bin (.6,.8]: conf .8, acc 1/2; bin (.8,1]: 1, 1.
    expected = (3 * abs(2 / 3 - 1.6 / 3) + 2 * abs(0.5 - 0.8) + 0.0) / 6
    assert expected_calibration_error(y, p, n_bins=5) == pytest.approx(expected, abs=1e-12)
    assert expected_calibration_error(y, p, n_bins=5, norm="max") == pytest.approx(0.3, abs=1e-12)


def test_calibration_summary_defaults_and_values() -> None:
    y, p = _data(seed=3)
    s = calibration_summary(y, p)
    # defaults: 15 uniform bins, l1 norm (a different n_bins changes the ECE of these data)
    assert s["ece"] == pytest.approx(_ref_ece(y, p, 15, "l1", "uniform"), abs=1e-12)
    assert s["ece"] != pytest.approx(_ref_ece(y, p, 16, "l1", "uniform"), abs=1e-6)
    assert (s["n_bins"], s["norm"], s["strategy"], s["n"]) == (15, "l1", "uniform", 400)
    assert s["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-12)
    assert s["nll"] == pytest.approx(log_loss(y, p), abs=1e-10)
    q = calibration_summary(y, p, n_bins=6, norm="max", strategy="quantile")
    assert q["ece"] == pytest.approx(_ref_ece(y, p, 6, "max", "quantile"), abs=1e-12)
    assert (q["n_bins"], q["norm"], q["strategy"]) == (6, "max", "quantile")


def test_brier_multiclass_and_nll_clipping_values() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]])
    y = np.array([0, 1, 0])
    # hand: (.09+.04+.01) + (.01+.81+.64) + (1+1+0) = 0.14 + 1.46 + 2 = 3.6 -> /3
    assert brier_score(y, p) == pytest.approx(3.6 / 3, abs=1e-12)
    # the last row puts probability 0 on its label: clipped at eps -> -ln(eps)
    eps = 1e-6
    expected = -(math.log(0.7) + math.log(0.1) + math.log(eps)) / 3
    assert negative_log_likelihood(y, p, eps=eps) == pytest.approx(expected, rel=1e-12)
    # binary clipping on both sides: p = 0 with y = 1 and p = 1 with y = 0 each cost -ln(eps)
    pb, yb = np.array([0.0, 1.0, 0.25]), np.array([1, 0, 0])
    expected_b = -(math.log(eps) + math.log(eps) + math.log(0.75)) / 3
    # rel 1e-9: 1 - (1 - eps) differs from eps by rounding
    assert negative_log_likelihood(yb, pb, eps=eps) == pytest.approx(expected_b, rel=1e-9)
    assert negative_log_likelihood(yb, pb) == pytest.approx(-(2 * math.log(1e-12) + math.log(0.75)) / 3)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_matches_loop_reference(strategy: str) -> None:
    y, p = _data(n=300, seed=4)
    c = reliability_curve(y, p, n_bins=8, strategy=strategy)
    conf, right = _ref_top_label(y, p)
    views: list[tuple[Any, ...]] = [
        (conf, right, c.edges, c.counts, c.confidence, c.accuracy),
        (p, y.astype(float), c.prob_edges, c.prob_counts, c.prob_mean, c.frac_positive),
    ]
    for values, target, edges, counts, mean_v, mean_t in views:
        if strategy == "uniform":
            np.testing.assert_allclose(edges, np.linspace(0, 1, 9), atol=0)
        else:
            np.testing.assert_allclose(edges, np.unique(np.quantile(values, np.linspace(0, 1, 9))), atol=0)
        idx = _ref_bins(values, edges)
        ref_counts = np.array([np.sum(idx == b) for b in range(edges.size - 1)])
        np.testing.assert_array_equal(counts, ref_counts)
        for b in range(edges.size - 1):
            if ref_counts[b]:
                # 1e-12: a mean of at most 300 numbers
                assert mean_v[b] == pytest.approx(values[idx == b].mean(), abs=1e-12)
                assert mean_t[b] == pytest.approx(target[idx == b].mean(), abs=1e-12)
            else:
                assert np.isnan(mean_v[b])
                assert np.isnan(mean_t[b])
    assert (c.strategy, c.n_classes, c.binary, c.n_bins) == (strategy, 2, True, c.counts.size)
    # binomial standard errors sqrt(a (1 - a) / n), NaN in empty bins
    errs: list[tuple[Any, ...]] = [
        (c.accuracy_errors(), c.accuracy, c.counts),
        (c.frac_positive_errors(), c.frac_positive, c.prob_counts),
    ]
    for est, frac, n in errs:
        for e, a, k in zip(est, frac, n, strict=True):
            if k:
                assert e == pytest.approx(math.sqrt(a * (1 - a) / k), abs=1e-15)
            else:
                assert np.isnan(e)


def test_reliability_curve_multiclass_and_empty_bins() -> None:
    p = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    y = np.array([0, 2, 2, 0])
    c = reliability_curve(y, p, n_bins=4)
    # confidences 0.9, 0.85, 0.5, 0.6 in bins (.75,1], (.75,1], (.25,.5], (.5,.75]
    np.testing.assert_array_equal(c.counts, [0, 1, 1, 2])
    np.testing.assert_allclose(c.confidence[1:], [0.5, 0.6, 0.875], atol=1e-12)
    np.testing.assert_allclose(c.accuracy[1:], [1.0, 1.0, 0.5], atol=1e-12)
    assert np.isnan(c.accuracy[0])
    assert np.isnan(c.accuracy_errors()[0])
    np.testing.assert_allclose(c.accuracy_errors()[1:], [0.0, 0.0, 0.5 / math.sqrt(2)], atol=1e-12)
    assert (c.n_classes, c.binary, c.prob_edges) == (3, False, None)
    with pytest.raises(
        ValueError, match=r"^frac_positive_errors needs a binary reliability curve \(probability view\)$"
    ):
        c.frac_positive_errors()
    # default binning: 15 equal-width bins
    d = reliability_curve(y, p)
    assert d.n_bins == 15
    np.testing.assert_allclose(d.edges, np.linspace(0.0, 1.0, 16), atol=0)


def _nll_ref(z: np.ndarray, y: np.ndarray, t: float) -> float:
    if z.ndim == 1:
        return float(log_loss(y, expit(z / t), labels=[0, 1]))
    return float(log_loss(y, softmax(z / t, axis=1), labels=list(range(z.shape[1]))))


def _argmin_temperature(z: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Brute-force minimum of the NLL over a grid of ln T (200 points, then 200 around the best)."""
    zz = np.stack([-z, z], axis=1) / 2 if z.ndim == 1 else z  # binary: softmax of (-z/2, z/2) = sigmoid
    for _ in range(2):
        grid = np.exp(np.linspace(math.log(lo), math.log(hi), 200))
        nll = [-np.mean(log_softmax(zz / t, axis=1)[np.arange(y.size), y]) for t in grid]
        k = int(np.argmin(nll))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    return float(grid[k])


def test_temperature_matches_brute_force_minimum_and_repr() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=(400, 3)) * 2.0
    y = np.array([rng.choice(3, p=softmax(row)) for row in z])
    ts = TemperatureScaling()
    assert repr(ts) == "TemperatureScaling(unfitted)"
    ts.fit(2.5 * z, y)
    t_ref = _argmin_temperature(2.5 * z, y, 0.5, 10.0)
    # the final grid step in ln T is below 1e-4; the NLL is flat at its minimum, so allow 0.1 %
    assert ts.temperature == pytest.approx(t_ref, rel=1e-3)
    assert ts.nll_before == pytest.approx(_nll_ref(2.5 * z, y, 1.0), rel=1e-9)
    assert ts.nll_after == pytest.approx(_nll_ref(2.5 * z, y, ts.temperature), rel=1e-9)
    assert repr(ts) == f"TemperatureScaling(temperature={ts.temperature:.4g})"
    np.testing.assert_allclose(ts.transform(z[:5]), softmax(z[:5] / ts.temperature, axis=1), rtol=1e-12)


def test_temperature_binary_fit_values_and_no_warning_inside_bounds() -> None:
    rng = np.random.default_rng(6)
    z = rng.normal(scale=1.5, size=2000)
    y = (rng.uniform(size=z.size) < expit(z)).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = TemperatureScaling(bounds=(0.1, 20.0)).fit(0.5 * z, y)  # underconfident: T < 1
    t_ref = _argmin_temperature(0.5 * z, y, 0.1, 20.0)
    assert ts.temperature == pytest.approx(t_ref, rel=1e-3)  # as above
    assert ts.temperature < 1.0
    assert ts.nll_before == pytest.approx(_nll_ref(0.5 * z, y, 1.0), rel=1e-9)
    np.testing.assert_allclose(ts.transform(z[:5]), expit(z[:5] / ts.temperature), rtol=1e-12)


def test_temperature_warns_on_the_bound_for_uninformative_logits() -> None:
    # Labels independent of the logits: the NLL decreases as T grows, the optimum is the upper bound.
    rng = np.random.default_rng(7)
    z = rng.normal(scale=3.0, size=500)
    y = rng.integers(0, 2, 500)
    with pytest.warns(RuntimeWarning, match="lies on the search bound"):
        ts = TemperatureScaling(bounds=(0.5, 4.0)).fit(z, y)
    assert ts.temperature == pytest.approx(4.0, rel=1e-3)


def test_label_checks_accept_valid_inputs_and_name_the_problem() -> None:
    p3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    ref = brier_score(np.array([0, 2, 1]), p3)
    # integer-valued float labels and boolean labels (two classes) are class indices too
    assert brier_score(np.array([0.0, 2.0, 1.0]), p3) == pytest.approx(ref, abs=1e-15)
    assert brier_score(np.array([0.0, 2.0, 1.0], dtype=np.float32), p3) == pytest.approx(ref, abs=1e-15)
    p2 = np.array([[0.3, 0.7], [0.9, 0.1]])
    assert brier_score(np.array([True, False]), p2) == pytest.approx(brier_score([1, 0], p2), abs=1e-15)
    with pytest.raises(ValueError, match=r"^labels must be integer class indices, found non-integer values$"):
        brier_score(np.array([0.0, 0.5, 1.0], dtype=np.float32), p3)
    with pytest.raises(ValueError, match=r"^labels contains NaN/inf$"):
        brier_score(np.array([0.0, np.nan, 1.0]), p3)
    with pytest.raises(
        ValueError,
        match=r"^labels must be class indices in 0\.\.2 for 3 probability columns, found values in \[0, 3\]$",
    ):
        brier_score(np.array([0, 3, 1]), p3)
    with pytest.raises(ValueError, match=r"^labels must be 0 or 1, found values \[0, 2\]$"):
        brier_score(np.array([2, 0]), np.array([0.5, 0.5]))


def test_empty_bins_raise_no_floating_point_warning() -> None:
    # 15 uniform bins and three scores: most bins are empty (0/0 -> NaN without a RuntimeWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = reliability_curve(np.array([1, 0, 1]), np.array([0.95, 0.2, 0.6]))
        e = expected_calibration_error(np.array([1, 0, 1]), np.array([0.95, 0.2, 0.6]))
    assert int(np.isnan(c.accuracy).sum()) == 12
    assert e == pytest.approx((0.05 + 0.2 + 0.4) / 3, abs=1e-12)
