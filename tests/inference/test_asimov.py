"""Asimov discovery significance: aalearn's pyhf measurement versus Cowan's closed-form formulas."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pyhf")

from aalearn.inference import Measurement, Templates
from aalearn.reproduce import REGISTRY, get, run

pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")

# (s, b, sigma_b) of the notes' fixture table (uncertainty.md §4.2)
CASES = [(10.0, 100.0, 0.0), (10.0, 100.0, 5.0), (10.0, 100.0, 10.0), (50.0, 1000.0, 50.0), (5.0, 2.0, 1.0)]


def _z_formula(s: float, b: float, sigma_b: float) -> float:
    """Cowan et al. 2011 (eq. 97) and Cowan 2012 (background uncertainty), written out here."""
    if sigma_b == 0.0:
        return math.sqrt(2.0 * ((s + b) * math.log(1.0 + s / b) - s))
    v = sigma_b * sigma_b
    return math.sqrt(
        2.0
        * (
            (s + b) * math.log((s + b) * (b + v) / (b * b + (s + b) * v))
            - (b * b / v) * math.log(1.0 + v * s / (b * (b + v)))
        )
    )


def _counting(s: float, b: float, sigma_b: float) -> Measurement:
    return Measurement(
        Templates(
            edges=[0.0, 1.0], signal=[s], background=[b], background_abs_unc=[sigma_b] if sigma_b else None
        )
    )


@pytest.mark.parametrize(("s", "b", "sigma_b"), CASES)
def test_asimov_significance_matches_cowan_formula(s: float, b: float, sigma_b: float) -> None:
    assert _counting(s, b, sigma_b).asimov_significance() == pytest.approx(
        _z_formula(s, b, sigma_b), abs=1e-3
    )


def test_uncertainty_lowers_significance_and_matches_pyhf_simplemodel() -> None:
    import numpy as np
    import pyhf
    from scipy.stats import norm

    z = [_counting(10.0, 100.0, sb).asimov_significance() for sb in (0.0, 5.0, 10.0)]
    assert z[0] > z[1] > z[2]
    # peer check: pyhf's own uncorrelated_background model gives the same number
    model = pyhf.simplemodels.uncorrelated_background([10.0], [100.0], [5.0])
    pars = model.config.suggested_init()
    pars[model.config.poi_index] = 1.0
    p0 = pyhf.infer.hypotest(0.0, model.expected_data(pars), model, test_stat="q0")
    assert z[1] == pytest.approx(float(norm.isf(float(np.asarray(p0)))), abs=1e-4)


def test_reproduction_is_registered_and_passes() -> None:
    rep = get("asimov")
    assert "Cowan" in rep.source
    assert "1007.1727" in rep.source
    assert list(REGISTRY).index("asimov") > list(REGISTRY).index("pgd-art")
    assert all(tol == 1e-3 for tol in rep.tolerance.values())
    result = run("asimov")
    assert result.passed, result.to_dict()
    assert result.values["max_abs_difference_formula"] < 1e-4
    assert sorted(v for k, v in rep.expected.items() if k.startswith("z_")) == sorted(
        [0.9840, 0.8772, 0.6902, 0.8334, 2.0503]
    )


def test_closed_form_rejects_bad_input() -> None:
    from aalearn.reproduce.asimov import cowan_asimov_significance

    assert cowan_asimov_significance(5.0, 2.0, 1.0) == pytest.approx(_z_formula(5.0, 2.0, 1.0), rel=1e-12)
    with pytest.raises(ValueError, match="b > 0"):
        cowan_asimov_significance(1.0, 0.0)
    with pytest.raises(ValueError, match="sigma_b"):
        cowan_asimov_significance(1.0, 1.0, -1.0)
