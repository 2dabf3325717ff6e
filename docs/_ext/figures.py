"""Regenerate the static figures of the guides: ``.venv/bin/python docs/_ext/figures.py``.

Each figure is drawn by aalearn's own plotting functions from the same toy data as the guide's
example, so that the picture and the example agree. ``img/report-measure.png`` is a screenshot of a report
(``chromium --headless --window-size=1000,1300 --screenshot=... report.html``; the command that wrote the
report is in its caption in ``getting-started.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aalearn.uncertainty import TemperatureScaling, plot_reliability, reliability_curve

IMG = Path(__file__).resolve().parents[1] / "img"


def reliability() -> Path:
    """Reliability diagram of an overconfident toy classifier before and after temperature scaling."""
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0.0, 2.0, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    overconfident = 3.0 * true_logit
    scaler = TemperatureScaling().fit(overconfident[::2], labels[::2])
    odd = slice(1, None, 2)
    curves = {
        "before (T = 1)": reliability_curve(labels[odd], 1 / (1 + np.exp(-overconfident[odd]))),
        "after temperature scaling": reliability_curve(labels[odd], scaler.transform(overconfident[odd])),
    }
    fig = plot_reliability(curves)
    path = IMG / "reliability.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path


if __name__ == "__main__":
    print(reliability())
