"""The sbibm reproductions: registration (no worse than published) and a reduced run of the runner."""

from __future__ import annotations

import math

import pytest

from aalearn.reproduce import REGISTRY, get
from aalearn.reproduce.sbibm import SBIBM_REPRODUCTIONS, sbibm_npe_values

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_registered_with_one_sided_goal() -> None:
    published = {"sbibm-two-moons": 0.606, "sbibm-slcp": 0.901, "sbibm-gaussian-linear": 0.552}
    for name, value in published.items():
        rep = get(name)
        assert name in REGISTRY
        assert rep.expected == {"c2st_excess": 0.0}
        assert 0 < rep.tolerance["c2st_excess"] < 0.02
        assert str(value) in rep.description
        assert "arXiv:2101.04653" in rep.source
    assert {t for t, *_ in SBIBM_REPRODUCTIONS} == {"two_moons", "slcp", "gaussian_linear"}
    for _, _, mean, sd in SBIBM_REPRODUCTIONS:
        assert 0.5 < mean < 1
        assert sd / math.sqrt(10) < 0.02


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match="no sbibm reproduction"):
        sbibm_npe_values("lotka_volterra")


@pytest.mark.slow
def test_runner_on_a_reduced_budget() -> None:
    """The runner end to end on two_moons, 600 simulations, one observation (sbibm: 0.725 at 10^3)."""
    pytest.importorskip("sbi")
    values, details = sbibm_npe_values(
        "two_moons", simulations=600, observations=[2], n_posterior_samples=600, seed=0
    )
    assert set(values) == {"c2st", "c2st_excess"}
    assert 0.5 <= values["c2st"] < 0.9
    assert values["c2st_excess"] == pytest.approx(max(0.0, values["c2st"] - 0.606))
    assert details["published_c2st"] == 0.606
    assert set(details["c2st_per_observation"]) == {"2"}
