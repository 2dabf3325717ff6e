"""Figure helpers shared by every layer that draws: one style, one figure factory.

The pillars draw their own diagnostic figures (``attacks``, ``uncertainty``,
``inference``, ...) and the report layer embeds them; both need the same look, so the
style and the figure constructor live here, below every layer. matplotlib (the
``report`` extra) is imported only when a figure is made.

Example:
    >>> from aalearn.core.plotting import new_figure, style
    >>> with style():
    ...     fig = new_figure((3.0, 2.0), "demo")
    ...     ax = fig.add_subplot()
    >>> fig.get_label()
    'demo'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from aalearn.core.optional import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BASE_RC", "new_figure", "style"]

BASE_RC: dict[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "legend.fontsize": 9.5,
    "legend.frameon": False,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.minor.visible": True,
    "ytick.minor.visible": True,
    "xtick.major.size": 5,
    "ytick.major.size": 5,
    "xtick.minor.size": 2.5,
    "ytick.minor.size": 2.5,
    "axes.linewidth": 0.9,
    "axes.grid": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "lines.linewidth": 1.6,
    "figure.dpi": 100,
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """rcParams for aalearn plots; mplhep's CMS style as a base when it is installed."""
    mpl = require("matplotlib", purpose="plotting report figures")
    rc: dict[str, Any] = {}
    try:  # optional: a CMS-like look, with aalearn's sizes on top
        import mplhep  # type: ignore[import-not-found,unused-ignore]

        cms = mplhep.style.CMS
        styles = cms if isinstance(cms, list) else [cms]
        for sty in styles:
            if isinstance(sty, Mapping):
                rc.update({k: v for k, v in sty.items() if k in mpl.rcParams and not k.startswith("figure.")})
    except Exception:  # mplhep is optional and its style API varies between versions
        rc = {}
    rc.update(BASE_RC)
    with mpl.rc_context(rc):
        yield


def new_figure(figsize: tuple[float, float], label: str) -> Figure:
    """A constrained-layout figure of ``figsize`` inches whose label becomes its caption."""
    require("matplotlib", purpose="plotting report figures")
    from matplotlib.figure import Figure as _Figure

    fig = _Figure(figsize=figsize, layout="constrained")
    fig.set_label(label)
    return fig
