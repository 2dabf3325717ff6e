"""Reliability diagrams and uncertainty histograms return figures and validate their input."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from aalearn.uncertainty import (
    decompose,
    plot_reliability,
    plot_uncertainty_histograms,
    reliability_curve,
)

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure


@pytest.fixture
def figures() -> Iterator[list[Figure]]:
    """Collects the figures of a test and closes them afterwards."""
    import matplotlib.pyplot as plt

    made: list[Figure] = []
    yield made
    for fig in made:
        fig.clear()
        plt.close(fig)


def _binary(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return (rng.uniform(size=n) < p).astype(int), p


def test_plot_reliability_binary_probability_view(figures: list[Figure]) -> None:
    y, p = _binary()
    curves = {"calibrated": reliability_curve(y, p), "overconfident": reliability_curve(y, p**3, n_bins=10)}
    fig = plot_reliability(curves)
    figures.append(fig)
    assert isinstance(fig, Figure)
    ax, ax_n = fig.axes
    assert "fraction of label 1" in ax.get_ylabel()
    assert ax_n.get_yscale() == "log"
    assert "Reliability" in str(fig.get_label())
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["perfect calibration", "calibrated", "overconfident"]
    fig2 = plot_reliability(curves, view="confidence")
    figures.append(fig2)
    assert fig2.axes[0].get_ylabel() == "accuracy"


def test_plot_reliability_multiclass_and_quantile(figures: list[Figure]) -> None:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=500)
    labels = rng.integers(0, 3, 500)
    y, p = _binary(seed=2)
    curves = {
        "multi": reliability_curve(labels, probs, n_bins=8),
        "binary-quantile": reliability_curve(y, p, strategy="quantile"),
    }
    fig = plot_reliability(curves)  # auto: confidence view because one curve is multi-class
    figures.append(fig)
    assert fig.axes[0].get_ylabel() == "accuracy"
    with pytest.raises(ValueError, match="binary"):
        plot_reliability(curves, view="probability")


def test_plot_reliability_validation() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        plot_reliability({})
    with pytest.raises(TypeError, match="ReliabilityCurve"):
        plot_reliability({"x": (1, 2)})  # type: ignore[dict-item]
    y, p = _binary(n=100)
    with pytest.raises(ValueError, match="unknown view"):
        plot_reliability({"x": reliability_curve(y, p)}, view="score")


def test_plot_uncertainty_histograms(figures: list[Figure]) -> None:
    rng = np.random.default_rng(3)
    near = decompose(rng.beta(5, 1, size=(4, 2000)))
    far = decompose(rng.uniform(size=(4, 500)))
    same = decompose(np.tile(rng.uniform(size=100), (3, 1)))  # zero epistemic everywhere
    fig = plot_uncertainty_histograms({"in-distribution": near, "shifted": far, "identical": same}, bins=30)
    figures.append(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log", "log"]
    assert [ax.get_title() for ax in fig.axes] == ["total", "aleatoric", "epistemic"]
    with pytest.raises(ValueError, match="non-empty"):
        plot_uncertainty_histograms({})
    with pytest.raises(TypeError, match="UncertaintyDecomposition"):
        plot_uncertainty_histograms({"x": np.zeros(3)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="bins"):
        plot_uncertainty_histograms({"x": near}, bins=0)
