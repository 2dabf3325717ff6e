"""Tests of aalearn.validation.plots."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("matplotlib")

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from aalearn.validation import ValidationConfig, plot_correlation_change, plot_overlays, validate_samples

NAMES = ["pt", "eta", "phi", "mass", "width"]


@pytest.fixture
def samples() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(1500, 5))
    candidate = rng.normal(size=(1500, 5))
    candidate[:, 3] += 0.6  # mass: the worst feature
    candidate[:, 1] *= 1.4  # eta: the second worst
    return reference, candidate


@pytest.fixture
def figures() -> Iterator[list[Figure]]:
    made: list[Figure] = []
    yield made
    for fig in made:
        fig.clear()
        plt.close(fig)


def test_overlays_default_top(samples: tuple[np.ndarray, np.ndarray], figures: list[Figure]) -> None:
    reference, candidate = samples
    fig = plot_overlays(reference, candidate, feature_names=NAMES, top=2)
    figures.append(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # distribution + ratio per feature
    titles = [ax.get_title() for ax in fig.axes[::2]]
    assert titles[0].startswith("mass\nJSD = ")
    assert titles[1].startswith("eta\n")
    assert all("KS p (holm) = " in t for t in titles)
    ratio_ax = fig.axes[1]
    assert any(np.allclose(line.get_ydata(), 1.0) for line in ratio_ax.get_lines())
    fig.canvas.draw()


def test_overlays_named_features_and_report(
    samples: tuple[np.ndarray, np.ndarray], figures: list[Figure]
) -> None:
    reference, candidate = samples
    report = validate_samples(reference, candidate, feature_names=NAMES, config=ValidationConfig(bins=20))
    fig = plot_overlays(
        reference, candidate, features=["pt", "phi", "width", "eta"], report=report, labels=("clean", "adv")
    )
    figures.append(fig)
    assert len(fig.axes) == 8
    assert fig.axes[0].get_title().startswith("pt\n")
    assert f"JSD = {report.feature('width').jsd:.3f}" in fig.axes[4].get_title()
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == ["clean", "adv"]


def test_overlays_default_names_and_all_features(figures: list[Figure]) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    x[:, 2] = y[:, 2] = 1.0  # constant feature
    fig = plot_overlays(x, y, top=10, bins=12)
    figures.append(fig)
    assert len(fig.axes) == 6


def test_overlays_errors(samples: tuple[np.ndarray, np.ndarray]) -> None:
    reference, candidate = samples
    with pytest.raises(ValueError, match="unknown feature 'mas'; did you mean 'mass'"):
        plot_overlays(reference, candidate, feature_names=NAMES, features=["mas"])
    with pytest.raises(ValueError, match="top must be a positive integer"):
        plot_overlays(reference, candidate, top=0)
    with pytest.raises(ValueError, match="bins"):
        plot_overlays(reference, candidate, bins=1)
    with pytest.raises(ValueError, match="at least one feature"):
        plot_overlays(reference, candidate, features=[])
    report = validate_samples(reference, candidate)
    with pytest.raises(ValueError, match="other features"):
        plot_overlays(reference, candidate, feature_names=NAMES, report=report)
    with pytest.raises(ValueError, match="NaN"):
        plot_overlays(reference, np.full_like(candidate, np.nan))


def test_correlation_change(samples: tuple[np.ndarray, np.ndarray], figures: list[Figure]) -> None:
    reference, candidate = samples
    candidate = candidate.copy()
    candidate[:, 0] = candidate[:, 1] + 0.5 * candidate[:, 0]  # new correlation
    fig = plot_correlation_change(reference, candidate, feature_names=NAMES)
    figures.append(fig)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # three heatmaps, two colour bars
    report = validate_samples(reference, candidate, feature_names=NAMES)
    suptitle = fig.get_suptitle()
    assert f"= {report.correlation.rel_frobenius:.3g}" in suptitle
    diff_image = fig.axes[2].get_images()[0]
    lo, hi = diff_image.get_clim()
    assert lo == pytest.approx(-hi)  # diverging scale centred at 0
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == NAMES
    fig.canvas.draw()


def test_correlation_change_many_and_constant_features(figures: list[Figure]) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(400, 40)), rng.normal(size=(400, 40))
    x[:, 5] = y[:, 5] = 0.0
    fig = plot_correlation_change(x, y)
    figures.append(fig)
    assert len(fig.axes) == 5
    assert "excluded: 1" in fig.get_suptitle()
    fig.canvas.draw()
