r"""Reproduction: Cowan's closed-form Asimov discovery significance versus aalearn's pyhf measurement.

For a counting experiment with expected signal :math:`s` and background :math:`b`, the
median discovery significance from the Asimov data set is (Cowan, Cranmer, Gross,
Vitells, EPJC 71 (2011) 1554, arXiv:1007.1727, eq. 97)

.. math::

    Z_A = \sqrt{2\left[(s+b)\ln\left(1+\frac{s}{b}\right) - s\right]},

and with a background known only to an absolute uncertainty :math:`\sigma_b` from an
auxiliary Poisson measurement (G. Cowan, "Discovery sensitivity for a counting
experiment with background uncertainty", 2012)

.. math::

    Z_A = \sqrt{2\left[(s+b)\ln\frac{(s+b)(b+\sigma_b^2)}{b^2+(s+b)\sigma_b^2}
    - \frac{b^2}{\sigma_b^2}\ln\left(1+\frac{\sigma_b^2 s}{b(b+\sigma_b^2)}\right)\right]}.

aalearn builds a one-bin :class:`~aalearn.inference.Templates` with the background
uncertainty as a pyhf ``shapesys`` (Poisson constraint :math:`\tau = (b/\sigma_b)^2`,
the same auxiliary-measurement model) and computes
:meth:`~aalearn.inference.Measurement.asimov_significance` (pyhf's asymptotic
:math:`q_0` test). The reference values are the fixture table of the project notes
(uncertainty §4.2), which agree with the formulas to four decimals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aalearn.inference import Measurement, Templates
from aalearn.reproduce.registry import Reproduction, register

__all__ = ["ASIMOV_CASES", "asimov_matches_cowan", "cowan_asimov_significance"]

ASIMOV_CASES: tuple[tuple[float, float, float, float], ...] = (
    (10.0, 100.0, 0.0, 0.9840),
    (10.0, 100.0, 5.0, 0.8772),
    (10.0, 100.0, 10.0, 0.6902),
    (50.0, 1000.0, 50.0, 0.8334),
    (5.0, 2.0, 1.0, 2.0503),
)
"""``(s, b, σ_b, Z_A)`` fixtures (Z_A to four decimals)."""


def cowan_asimov_significance(s: float, b: float, sigma_b: float = 0.0) -> float:
    r"""Closed-form Asimov discovery significance of a counting experiment.

    Args:
        s: Expected signal (> 0).
        b: Expected background (> 0).
        sigma_b: Absolute background uncertainty (0 for a known background).

    Returns:
        :math:`Z_A` (Cowan et al. 2011 for :math:`\sigma_b = 0`, Cowan 2012 otherwise).

    Raises:
        ValueError: For non-positive ``s`` or ``b`` or negative ``sigma_b``.

    Example:
        >>> round(cowan_asimov_significance(10.0, 100.0), 4)
        0.984
        >>> round(cowan_asimov_significance(10.0, 100.0, 5.0), 4)
        0.8772
    """
    if not (s > 0 and b > 0 and sigma_b >= 0):
        raise ValueError(f"need s > 0, b > 0 and sigma_b >= 0, got s={s}, b={b}, sigma_b={sigma_b}")
    if sigma_b == 0:
        return math.sqrt(2.0 * ((s + b) * math.log(1.0 + s / b) - s))
    v = sigma_b**2
    term1 = (s + b) * math.log((s + b) * (b + v) / (b * b + (s + b) * v))
    term2 = (b * b / v) * math.log(1.0 + v * s / (b * (b + v)))
    return math.sqrt(2.0 * (term1 - term2))


def _key(s: float, b: float, sigma_b: float) -> str:
    return f"z_s{s:g}_b{b:g}_sigmab{sigma_b:g}"


def asimov_matches_cowan() -> tuple[dict[str, float], dict[str, Any]]:
    """Asimov significances of the five fixture cases from aalearn's pyhf measurement.

    Returns:
        The measured :math:`Z_A` per case and the largest absolute difference from the
        closed-form formula; details hold the formula values.

    Raises:
        ImportError: When pyhf is not installed (``pip install "aalearn[inference]"``).
    """

    values: dict[str, float] = {}
    formula: dict[str, float] = {}
    for s, b, sigma_b, _ in ASIMOV_CASES:
        templates = Templates(
            edges=np.array([0.0, 1.0]),
            signal=np.array([s]),
            background=np.array([b]),
            background_abs_unc=np.array([sigma_b]) if sigma_b > 0 else None,
        )
        key = _key(s, b, sigma_b)
        values[key] = Measurement(templates).asimov_significance()
        formula[key] = cowan_asimov_significance(s, b, sigma_b)
    values["max_abs_difference_formula"] = max(abs(values[k] - formula[k]) for k in formula)
    return values, {"formula": formula, "model": "1 bin; background uncertainty as pyhf shapesys"}


_expected = {_key(s, b, sb): z for s, b, sb, z in ASIMOV_CASES}
_expected["max_abs_difference_formula"] = 0.0

register(
    Reproduction(
        name="asimov",
        description="Asimov discovery significance Z_A of pyhf/aalearn equals Cowan's closed form (5 cases)",
        source=(
            "G. Cowan, 'Discovery sensitivity for a counting experiment with background uncertainty' (2012); "
            "Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554, arXiv:1007.1727"
        ),
        expected=_expected,
        tolerance=dict.fromkeys(_expected, 1e-3),
        runner=asimov_matches_cowan,
    )
)
