"""A small, self-contained HTML report builder.

Every aalearn command that writes a report (datasets, training, attacks, uncertainty,
simulation-based inference, surrogates, LLM studies) builds a :class:`Report` from
sections. A section has a title and any of: free text, a table and matplotlib figures.
The page is a single file: figures are embedded as base64 PNG, the CSS and the small
script are inline, and a Content-Security-Policy forbids any network access, so the
report can be mailed, archived or opened offline.

Example:
    >>> report = Report("Jet tagging", subtitle="TopoDNN on the challenge files")
    >>> report.add_metadata("seed", 7)
    >>> report.add_section("Metrics", text="AUC on the clean test set.",
    ...                    table=[{"model": "TopoDNN", "auc": 0.97654321, "loss": None}])
    >>> page = report.to_html()
    >>> "0.9765" in page and "—" in page
    True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aalearn import __version__
from aalearn.core.io import atomic_write
from aalearn.core.optional import require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["FIGURE_DPI", "Report", "format_value", "human_header", "render_figure"]

#: Resolution of the embedded PNGs. Images are shown at 100 CSS pixels per inch of
#: figure size, so 150 dpi stays sharp on high-density screens.
FIGURE_DPI: int = 150
_CSS_PX_PER_INCH = 100.0

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_ANCHOR_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_SNAKE_RE = re.compile(r"^[a-z0-9_]+$")
#: Tables with more columns than this get the compact style, so that they fit a 1280-px window.
_DENSE_COLUMNS = 8


# --------------------------------------------------------------------------- formatting
def format_value(value: Any) -> str:
    """Format one table value as text (not yet HTML-escaped).

    Rules: ``None`` → ``"—"``; booleans → ``"yes"``/``"no"``; integers as they are;
    floats to 4 significant digits, with a ``×10ⁿ`` exponent outside ``[10⁻³, 10⁴)``;
    NaN → ``"NaN"``, infinities → ``"∞"``/``"−∞"``; sequences joined with commas;
    NumPy scalars and 0-d arrays like their Python counterparts; anything else via ``str``.

    Args:
        value: Any value.

    Returns:
        The text to show.

    Example:
        >>> [format_value(v) for v in (None, 3, 0.123456, 123456.7, 2.5e-7, float("inf"))]
        ['—', '3', '0.1235', '1.235×10⁵', '2.5×10⁻⁷', '∞']
    """
    if value is None:
        return "—"
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if isinstance(value, (Sequence, np.ndarray, set, frozenset)) and not isinstance(
        value, (bytes, bytearray)
    ):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        return ", ".join(format_value(v) for v in items)
    return str(value)


#: Words of snake_case keys written differently in headers (acronyms, symbols, units).
_HEADER_WORDS: dict[str, str] = {
    "auc": "AUC",
    "ece": "ECE",
    "mad": "MAD",
    "jsd": "JSD",
    "nll": "NLL",
    "fr": "FR",
    "roc": "ROC",
    "fpr": "FPR",
    "tpr": "TPR",
    "ks": "KS",
    "chi2": "χ²",
    "linf": "L∞",
    "l1": "L1",
    "l2": "L2",
    "mu": "μ",
    "sigma": "σ",
    "eps": "ε",
    "pt": "pT",
    "corr": "correlation",
    "rel": "relative",
    "max": "max.",
    "min": "min.",
    "n": "number of",
}
#: Whole keys with a unit.
_HEADER_KEYS: dict[str, str] = {
    "seconds": "Time [s]",
    "wall_seconds": "Wall time [s]",
    "cpu_seconds": "CPU time [s]",
    "median_linf_sigma_fooled": "Median L∞ of fooled jets [σ]",
    "mean_total": "Mean total uncertainty [nats]",
    "mean_aleatoric": "Mean aleatoric uncertainty [nats]",
    "mean_epistemic": "Mean epistemic uncertainty [nats]",
}


def human_header(key: str) -> str:
    """A table header for a result key: ``snake_case`` becomes words, acronyms and units.

    Keys without an underscore are kept as they are (they are already words, or headers
    written for people, such as ``"Δμ̂/σ_μ"`` or ``"time [s]"``).

    Example:
        >>> human_header("fooling_ratio"), human_header("max_jsd"), human_header("seconds")
        ('Fooling ratio', 'Max. JSD', 'Time [s]')
        >>> human_header("auc"), human_header("wall time [s]")
        ('auc', 'wall time [s]')
    """
    if key in _HEADER_KEYS:
        return _HEADER_KEYS[key]
    if "_" not in key or not _SNAKE_RE.match(key):
        return key
    words = [_HEADER_WORDS.get(w, w) for w in key.split("_") if w]
    if not words:
        return key
    first = words[0]
    if first[:1].isascii() and first == first.lower():
        words[0] = first[:1].upper() + first[1:]
    return " ".join(words)


def _format_float(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0.0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def _is_numeric(value: Any) -> bool:
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.item() if np.ndim(value) == 0 else None
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return f"s-{slug}" if slug else "section"


# --------------------------------------------------------------------------- figures
def render_figure(figure: Figure, *, dpi: int = FIGURE_DPI, close: bool = True) -> tuple[bytes, int, int]:
    """Render a matplotlib figure to PNG with the Agg backend.

    The figure is drawn on a fresh Agg canvas, whatever backend created it, and closed
    afterwards (``close=True``) so that reports with many figures do not accumulate
    memory in pyplot's figure manager.

    Args:
        figure: The figure to render.
        dpi: Resolution of the PNG.
        close: Close the figure after rendering.

    Returns:
        ``(png_bytes, css_width_px, css_height_px)``; the CSS size is the figure size at
        100 pixels per inch.

    Raises:
        TypeError: If ``figure`` is not a matplotlib figure.

    Example:
        >>> from matplotlib.figure import Figure
        >>> fig = Figure(figsize=(2, 1)); _ = fig.add_subplot().plot([0, 1])
        >>> png, w, h = render_figure(fig)
        >>> png[:4], w, h
        (b'\\x89PNG', 200, 100)
    """
    require("matplotlib", purpose="rendering report figures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as _Figure

    if not isinstance(figure, _Figure):
        raise TypeError(f"figures must be matplotlib.figure.Figure objects, got {type(figure).__name__}")
    original_canvas = figure.canvas
    canvas = FigureCanvasAgg(figure)
    buf = io.BytesIO()
    try:
        canvas.print_figure(buf, format="png", dpi=dpi, facecolor="white", bbox_inches=None)
    finally:
        figure.set_canvas(original_canvas)
    width_in, height_in = figure.get_size_inches()
    if close:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(figure)
    return buf.getvalue(), round(width_in * _CSS_PX_PER_INCH), round(height_in * _CSS_PX_PER_INCH)


def _figure_caption(figure: Any) -> str:
    """The figure's label (``Figure.set_label``), used as caption; empty when unset."""
    get_label = getattr(figure, "get_label", None)
    label = get_label() if callable(get_label) else ""
    return label if isinstance(label, str) else ""


@dataclass(frozen=True)
class _Image:
    png: bytes
    width: int
    height: int
    alt: str
    caption: str


@dataclass
class _Section:
    title: str
    anchor: str
    text: str | None
    columns: list[str]
    rows: list[list[Any]]
    images: list[_Image] = field(default_factory=list)


# --------------------------------------------------------------------------- report
class Report:
    """A self-contained HTML report made of titled sections.

    Args:
        title: Page title (shown as the heading and in the browser tab).
        subtitle: Optional line under the title.

    Raises:
        ValueError: If ``title`` is empty.

    Example:
        >>> r = Report("Dataset <check>")
        >>> r.add_section("Summary", table={"jets": 1000, "top fraction": 0.5})
        >>> page = r.to_html()
        >>> "Dataset &lt;check&gt;" in page, 'href="#s-summary"' in page
        (True, True)
    """

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        if not isinstance(title, str) or not title.strip():
            raise ValueError("a report needs a non-empty title")
        if subtitle is not None and not isinstance(subtitle, str):
            raise TypeError(f"subtitle must be a string or None, got {type(subtitle).__name__}")
        self.title = title
        self.subtitle = subtitle
        self._sections: list[_Section] = []
        self._metadata: list[tuple[str, Any]] = []
        self._created = _dt.datetime.now(_dt.timezone.utc)

    # ------------------------------------------------------------------ building
    @property
    def section_titles(self) -> tuple[str, ...]:
        """Titles of the sections added so far, in order."""
        return tuple(s.title for s in self._sections)

    def add_metadata(self, key: str, value: Any) -> None:
        """Add a key/value pair to the run-information box at the top of the page.

        Adding an existing key replaces its value.

        Args:
            key: Label, for example ``"seed"`` or ``"model"``.
            value: Any value; formatted like table cells.

        Example:
            >>> r = Report("t"); r.add_metadata("seed", 1); r.add_metadata("seed", 2)
            >>> ">2<" in r.to_html()
            True
        """
        if not isinstance(key, str) or not key:
            raise ValueError("metadata keys must be non-empty strings")
        for i, (k, _) in enumerate(self._metadata):
            if k == key:
                self._metadata[i] = (key, value)
                return
        self._metadata.append((key, value))

    def add_section(
        self,
        title: str,
        *,
        text: str | None = None,
        table: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        figures: Sequence[Figure] = (),
        anchor: str | None = None,
    ) -> None:
        """Append a section.

        Figures are rendered to PNG immediately and closed, so the caller may create
        many of them without running out of memory.

        Args:
            title: Section heading (also the table-of-contents entry).
            text: Paragraphs of plain text; blank lines separate paragraphs. Escaped.
            table: Either rows (a sequence of mappings; the columns are the union of
                the keys in order of first appearance, missing cells show "—") or one
                mapping shown as a two-column key/value table.
            figures: matplotlib figures to embed, in order. A figure's label
                (``fig.set_label("...")``) becomes its caption and alt text.
            anchor: Id of the section for links (``#anchor``); derived from the title
                when omitted. Must start with a letter and contain only letters,
                digits, ``-`` and ``_``.

        Raises:
            ValueError: For an empty title, a malformed or duplicate anchor, or an empty
                section (no text, table or figure).
            TypeError: For table rows that are not mappings or figures that are not
                matplotlib figures.

        Example:
            >>> r = Report("t")
            >>> r.add_section("Losses", table=[{"epoch": 1, "loss": 0.69}, {"epoch": 2, "loss": 0.41}])
            >>> r.section_titles
            ('Losses',)
        """
        if not isinstance(title, str) or not title.strip():
            raise ValueError("a section needs a non-empty title")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"section text must be a string, got {type(text).__name__}")
        figs: list[Any] = [figures] if hasattr(figures, "savefig") else list(figures)  # one figure is fine
        columns, rows = self._table(table, section=title)
        if not (text and text.strip()) and not rows and not figs:
            raise ValueError(f"section {title!r} is empty: give text, a table or figures")
        anchor = self._anchor(title, anchor)
        images = []
        for i, fig in enumerate(figs, start=1):
            caption = _figure_caption(fig)
            png, width, height = render_figure(fig)
            images.append(_Image(png, width, height, alt=caption or f"{title}: figure {i}", caption=caption))
        self._sections.append(_Section(title, anchor, text, columns, rows, images))

    def _anchor(self, title: str, anchor: str | None) -> str:
        taken = {s.anchor for s in self._sections} | {"top", "contents", "run-information"}
        if anchor is not None:
            if not isinstance(anchor, str) or not _ANCHOR_RE.match(anchor):
                raise ValueError(
                    f"anchor {anchor!r} must start with a letter and contain only "
                    "letters, digits, '-' and '_'"
                )
            if anchor in taken:
                raise ValueError(f"anchor {anchor!r} is already used by another section")
            return anchor
        base = _slug(title)
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    @staticmethod
    def _table(
        table: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, *, section: str
    ) -> tuple[list[str], list[list[Any]]]:
        if table is None:
            return [], []
        if isinstance(table, Mapping):
            return ["", ""], [[str(k), v] for k, v in table.items()]
        if isinstance(table, (str, bytes)) or not isinstance(table, Sequence):
            raise TypeError(
                f"table of section {section!r} must be a mapping or a sequence of mappings, "
                f"got {type(table).__name__}"
            )
        columns: list[str] = []
        for i, row in enumerate(table):
            if not isinstance(row, Mapping):
                raise TypeError(
                    f"row {i} of the table of section {section!r} is a {type(row).__name__}, not a mapping"
                )
            for key in row:
                if str(key) not in columns:
                    columns.append(str(key))
        rows = [[{str(k): v for k, v in row.items()}.get(c) for c in columns] for row in table]
        return columns, rows

    # ------------------------------------------------------------------ output
    def to_html(self) -> str:
        """The complete page as a string.

        Returns:
            A standalone HTML5 document.
        """
        esc = html.escape
        parts: list[str] = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
            f'<meta name="generator" content="aalearn {esc(__version__)}">',
            f"<title>{esc(self.title)}</title>",
            f"<style>{_CSS}</style>",
            f"<script>{_SCRIPT}</script>",
            "</head>",
            "<body>",
            '<header id="top">',
            f"<h1>{esc(self.title)}</h1>",
        ]
        if self.subtitle:
            parts.append(f'<p class="subtitle">{esc(self.subtitle)}</p>')
        parts.append("</header>")
        parts.append('<div class="layout">')
        parts.append(self._toc_html())
        parts.append("<main>")
        if self._metadata:
            parts.append('<section id="run-information" class="meta"><h2>Run information</h2><dl>')
            for key, value in self._metadata:
                parts.append(f"<dt>{esc(key)}</dt><dd>{esc(format_value(value))}</dd>")
            parts.append("</dl></section>")
        for number, section in enumerate(self._sections, start=1):
            parts.append(self._section_html(number, section))
        if not self._sections:
            parts.append('<p class="empty">This report has no sections.</p>')
        parts.append("</main></div>")
        stamp = self._created.strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(
            f"<footer>Generated by aalearn {esc(__version__)} on {esc(stamp)} · "
            '<a href="#top">back to top</a></footer>'
        )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def _toc_html(self) -> str:
        esc = html.escape
        items = []
        if self._metadata:
            items.append('<li><a href="#run-information">Run information</a></li>')
        for number, s in enumerate(self._sections, start=1):
            items.append(
                f'<li><a href="#{esc(s.anchor)}"><span class="num">{number}</span>{esc(s.title)}</a></li>'
            )
        return f'<nav id="contents" aria-label="Contents"><h2>Contents</h2><ol>{"".join(items)}</ol></nav>'

    @staticmethod
    def _section_html(number: int, s: _Section) -> str:
        esc = html.escape
        out = [f'<section id="{esc(s.anchor)}">', f'<h2><span class="num">{number}</span>{esc(s.title)}</h2>']
        if s.text:
            for para in re.split(r"\n\s*\n", s.text.strip()):
                out.append(f"<p>{esc(para.strip())}</p>")
        if s.rows:
            out.append(_table_html(s.columns, s.rows))
        for i, img in enumerate(s.images, start=1):
            data = base64.b64encode(img.png).decode("ascii")
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" width="{img.width}" height="{img.height}" '
                f'alt="{esc(img.alt)}" loading="eager" decoding="sync">'
                f"<figcaption><b>Figure {number}.{i}</b>"
                f"{' — ' + esc(img.caption) if img.caption else ''}</figcaption></figure>"
            )
        out.append("</section>")
        return "\n".join(out)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the page atomically (temporary file + ``os.replace``).

        The parent directory is created when missing; a reader never sees a
        half-written file, and a failure leaves any previous report untouched.

        Args:
            path: Destination, for example ``"runs/train/report.html"``.

        Returns:
            The destination as a :class:`~pathlib.Path`.

        Example:
            >>> import tempfile, pathlib
            >>> out = Report("t").write(pathlib.Path(tempfile.mkdtemp()) / "sub" / "r.html")
            >>> out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
            True
        """
        dest = Path(path)
        if dest.exists() and dest.is_dir():
            raise IsADirectoryError(f"cannot write the report to {dest}: it is a directory")
        return atomic_write(dest, self.to_html())


def _table_html(columns: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    key_value = columns == ["", ""]
    numeric = [
        all(v is None or _is_numeric(v) for v in col) and any(v is not None for v in col)
        for col in zip(*rows, strict=True)
    ]
    cls = "kv" if key_value else "dense" if len(columns) > _DENSE_COLUMNS else ""
    out = ['<div class="table-wrap"><table' + (f' class="{cls}"' if cls else "") + ">"]
    if not key_value:
        head = "".join(
            f'<th scope="col"{" class=num-col" if numeric[j] else ""}>{esc(human_header(c))}</th>'
            for j, c in enumerate(columns)
        )
        out.append(f"<thead><tr>{head}</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = []
        for j, value in enumerate(row):
            classes = []
            if key_value and j == 0:
                label = human_header(value) if isinstance(value, str) else format_value(value)
                cells.append(f'<th scope="row">{esc(label)}</th>')
                continue
            if _is_numeric(value) or (numeric[j] and value is None):
                classes.append("num-col")
            if value is None:
                classes.append("missing")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{esc(format_value(value))}</td>")
        out.append(f"<tr>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


_SCRIPT = (
    'window.addEventListener("load",function(){'
    "var imgs=document.images,ok=0;"
    "for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}"
    'document.body.setAttribute("data-images-total",String(imgs.length));'
    'document.body.setAttribute("data-images-loaded",String(ok));'
    # layout check at the window's width: elements sticking out of the page (outside
    # scrolling table containers) and tables that need horizontal scrolling
    "var w=document.documentElement.clientWidth,over=0,wide=0,all=document.body.getElementsByTagName('*');"
    "for(var j=0;j<all.length;j++){var e=all[j];"
    "if(e.closest('.table-wrap')&&!e.classList.contains('table-wrap')){continue;}"
    "if(e.getBoundingClientRect().right>w+1){over++;}}"
    "var wraps=document.getElementsByClassName('table-wrap');"
    "for(var k=0;k<wraps.length;k++){if(wraps[k].scrollWidth>wraps[k].clientWidth+1){wide++;}}"
    'document.body.setAttribute("data-overflowing",String(over));'
    'document.body.setAttribute("data-wide-tables",String(wide));'
    'document.body.setAttribute("data-page-width",String(document.documentElement.scrollWidth));'
    'document.body.setAttribute("data-window-width",String(w));'
    "});"
)

_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dfe3ea;--bg:#ffffff;--panel:#f6f7fa;--accent:#1f5fa8;
--accent-soft:#e8f0fa;font-size:16px}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;color:var(--fg);background:var(--bg);
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif;
line-height:1.55}
header{padding:28px 32px 22px;border-bottom:1px solid var(--line);
background:linear-gradient(180deg,#f3f6fb 0%,#ffffff 100%)}
h1{margin:0;font-size:1.85rem;font-weight:650;letter-spacing:-0.01em}
.subtitle{margin:6px 0 0;color:var(--muted);font-size:1.05rem}
.layout{display:flex;align-items:flex-start;gap:30px;padding:0 32px;max-width:1500px}
nav{position:sticky;top:0;flex:0 0 200px;padding:24px 0;max-height:100vh;overflow-y:auto}
nav h2{font-size:.78rem;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);margin:0 0 8px;
border:0;padding:0}
nav ol{list-style:none;margin:0;padding:0}
nav li a{display:flex;gap:8px;padding:5px 10px;border-radius:6px;color:var(--fg);text-decoration:none;
font-size:.92rem}
nav li a:hover{background:var(--accent-soft);color:var(--accent)}
nav .num{color:var(--muted);min-width:1.2em}
main{flex:1 1 auto;min-width:0;padding:8px 0 40px}
section{padding:18px 0 10px;border-bottom:1px solid var(--line)}
section:last-child{border-bottom:0}
h2{font-size:1.3rem;font-weight:620;margin:6px 0 12px}
h2 .num{color:var(--accent);margin-right:10px}
p{margin:0 0 12px;max-width:75ch;white-space:pre-line}
.meta dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0;padding:12px 16px;
background:var(--panel);border:1px solid var(--line);border-radius:8px;font-size:.92rem}
.meta dt{color:var(--muted)}
.meta dd{margin:0;font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;word-break:break-all}
.table-wrap{overflow-x:auto;margin:6px 0 16px;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;font-size:.86rem;width:auto;min-width:40%}
th,td{padding:6px 9px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}
thead th{background:var(--panel);font-weight:600;color:#333c4d;border-bottom:2px solid var(--line);
white-space:normal;min-width:4em;max-width:8.5em;vertical-align:bottom;line-height:1.3}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:var(--accent-soft)}
tbody tr:last-child th,tbody tr:last-child td{border-bottom:0}
table.kv th{font-weight:500;color:var(--muted);background:var(--panel)}
table.dense{font-size:.78rem}
table.dense th,table.dense td{padding:4px 5px}
table.dense thead th{max-width:7em;min-width:3em}
.num-col{text-align:right;font-variant-numeric:tabular-nums}
td.missing{color:#a0a7b4}
figure{margin:10px 0 22px}
figure img{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px;
background:#fff}
figcaption{font-size:.82rem;color:var(--muted);margin-top:4px}
.empty{color:var(--muted)}
footer{padding:16px 32px 28px;color:var(--muted);font-size:.82rem;border-top:1px solid var(--line)}
footer a{color:var(--accent)}
@media (max-width:900px){.layout{display:block;padding:0 18px}nav{position:static;max-height:none}
header,footer{padding-left:18px;padding-right:18px}}
@media print{nav{display:none}.layout{display:block;padding:0}section{break-inside:avoid}}
""".strip().replace("\n", "")
