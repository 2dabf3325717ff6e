"""Statistical inference: from classifier scores to a profile-likelihood measurement (pyhf).

Needs the optional ``inference`` extra (``pip install "aalearn[inference]"``, pyhf with
Minuit). See :mod:`aalearn.inference.measurement`.

Example:
    >>> from aalearn.inference import Measurement, Templates
    >>> t = Templates(edges=[0.0, 1.0], signal=[10.0], background=[100.0], background_abs_unc=[5.0])
    >>> m = Measurement(t)
    >>> round(m.asimov_significance(), 4)
    0.8772
"""

from __future__ import annotations

from aalearn.inference.measurement import (
    FitResult,
    Measurement,
    Templates,
    build_workspace,
    histogram_data,
    templates_from_scores,
)
from aalearn.inference.systematics import treat_histosys

__all__ = [
    "FitResult",
    "Measurement",
    "Templates",
    "build_workspace",
    "histogram_data",
    "templates_from_scores",
    "treat_histosys",
]
