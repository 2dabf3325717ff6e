"""Fixtures shared by the measurement tests: the ten-bin templates with every kind of nuisance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

N_MC = 20_000


def _shifted(a: float, b: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).beta(a, b, N_MC)


@pytest.fixture(scope="module")
def full() -> Any:
    """Ten bins with staterror, a background shape systematic ``det`` and a signal rate one ``xsec``."""
    pytest.importorskip("pyhf")
    from aalearn.inference import templates_from_scores

    rng = np.random.default_rng(0)
    sig, bkg = rng.beta(5.0, 2.0, N_MC), rng.beta(2.0, 5.0, N_MC)
    variations = {
        "det": (
            (_shifted(5.0, 2.2, 1), _shifted(2.0, 5.5, 2)),
            (_shifted(5.0, 1.8, 3), _shifted(2.0, 4.5, 4)),
        )
    }
    return templates_from_scores(
        sig, bkg, bins=10, variations=variations, normsys={"xsec": {"signal": (0.95, 1.05)}}
    )


@pytest.fixture(scope="module")
def full_measurement(full: Any) -> Any:
    """:class:`~aalearn.inference.Measurement` of :func:`full`."""
    from aalearn.inference import Measurement

    return Measurement(full)
