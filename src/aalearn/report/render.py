"""Render a report in headless Chromium to check that it displays.

:func:`render_check` loads the page with Chromium's ``--dump-dom`` (optionally taking a
screenshot) and reads the attributes ``data-images-total`` and ``data-images-loaded``
that the report's inline script writes onto ``<body>`` once the page has loaded. A
report whose figures all decoded has ``images_loaded == images_total``.

Chromium runs with a fresh, temporary profile and without network-facing background
services; the report itself forbids network access through its Content-Security-Policy.

Example:
    >>> from aalearn.report import Report, render_check
    >>> path = Report("t").write("/tmp/aalearn-doc/report.html")  # doctest: +SKIP
    >>> render_check(path).all_images_loaded  # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["CHROMIUM_CANDIDATES", "RenderResult", "find_chromium", "render_check"]

#: Executable names looked up on ``PATH`` (after ``$AALEARN_CHROMIUM``).
CHROMIUM_CANDIDATES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome")
_INSTALL_HINT = (
    "install Debian's chromium: apt-get install chromium (or set AALEARN_CHROMIUM to a Chrome binary)"
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or ``None``.

    Search order: the environment variable ``AALEARN_CHROMIUM`` (a path or a command
    name), then ``chromium``, ``chromium-browser`` and ``google-chrome`` on ``PATH``.
    An ``AALEARN_CHROMIUM`` that names no executable triggers a warning and the
    ``PATH`` search.

    Returns:
        The executable's path, or ``None`` when none is found.

    Example:
        >>> find_chromium()  # doctest: +SKIP
        '/usr/bin/chromium'
    """
    env = os.environ.get("AALEARN_CHROMIUM", "").strip()
    if env:
        found = shutil.which(env)
        if found:
            return found
        warnings.warn(
            f"AALEARN_CHROMIUM={env!r} is not an executable; "
            f"searching PATH for {', '.join(CHROMIUM_CANDIDATES)}",
            RuntimeWarning,
            stacklevel=2,
        )
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class RenderResult:
    """What headless Chromium saw.

    Attributes:
        images_total: Number of ``<img>`` elements (``None`` if the page's script did not run).
        images_loaded: Number of images that decoded (``None`` likewise).
        title: The page title after rendering.
        screenshot: Path of the requested screenshot, or ``None``.
        screenshot_written: Whether the screenshot file was written and is non-empty.
        dom: The serialised DOM after the load event.
        overflowing: Elements whose right edge lies beyond the window's width (outside
            scrolling table containers); ``None`` if the page's script did not run.
        wide_tables: Tables wider than their container (they scroll horizontally).
        page_width: Scroll width of the page in CSS pixels.
        window_width: Width of the window (client width) in CSS pixels.
    """

    images_total: int | None
    images_loaded: int | None
    title: str
    screenshot: Path | None = None
    screenshot_written: bool = False
    dom: str = field(default="", repr=False)
    overflowing: int | None = None
    wide_tables: int | None = None
    page_width: int | None = None
    window_width: int | None = None

    @property
    def fits_window(self) -> bool:
        """Whether the script ran, nothing sticks out of the page and no table scrolls sideways."""
        return self.overflowing == 0 and self.wide_tables == 0

    @property
    def all_images_loaded(self) -> bool:
        """Whether the script ran and every image decoded."""
        return self.images_total is not None and self.images_loaded == self.images_total


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.body_attrs: dict[str, str | None] = {}
        self.title_parts: list[str] = []
        self._in_title = False
        self._seen_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and not self._seen_body:
            self.body_attrs = dict(attrs)
            self._seen_body = True
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)


def _int_attr(attrs: dict[str, str | None], key: str) -> int | None:
    value = attrs.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop the Chromium we started and its helper processes (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def render_check(
    html_path: str | os.PathLike[str],
    *,
    screenshot: str | os.PathLike[str] | None = None,
    timeout: float = 60,
    window_width: int = 1280,
) -> RenderResult:
    """Render ``html_path`` in headless Chromium and report how its images fared.

    Args:
        html_path: The HTML file (for example a written :class:`~aalearn.report.Report`).
        screenshot: If given, also write a 1280×2000 PNG screenshot there (the parent
            directory is created).
        timeout: Seconds before Chromium is stopped.
        window_width: Width of the browser window in CSS pixels (the layout check of
            :attr:`RenderResult.fits_window` is made at this width).

    Returns:
        A :class:`RenderResult`.

    Raises:
        FileNotFoundError: If ``html_path`` does not exist.
        RuntimeError: If Chromium is missing, times out or fails.

    Example:
        >>> result = render_check("report.html", screenshot="report.png")  # doctest: +SKIP
        >>> result.images_loaded == result.images_total, result.screenshot_written  # doctest: +SKIP
        (True, True)
    """
    page = Path(html_path).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"no HTML file at {page}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(
            f"headless Chromium is needed to render the report but was not found; {_INSTALL_HINT}"
        )
    shot: Path | None = None
    if screenshot is not None:
        shot = Path(screenshot).resolve()
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="aalearn-chromium-", ignore_cleanup_errors=True) as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
        ]
        cmd.append(f"--window-size={int(window_width)},2000")
        if shot is not None:
            cmd.append(f"--screenshot={shot}")
        cmd += ["--dump-dom", page.as_uri()]
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,  # own process group, so a timeout stops every helper
            )
        except OSError as exc:
            raise RuntimeError(f"could not start Chromium ({chromium}): {exc}; {_INSTALL_HINT}") from exc
        try:
            dom, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise RuntimeError(
                f"headless Chromium ({chromium}) did not render {page} within {timeout:g} s"
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
    if proc.returncode != 0 or not dom.strip():
        tail = "\n".join(err.strip().splitlines()[-8:])
        raise RuntimeError(
            f"headless Chromium ({chromium}) failed on {page} (exit status {proc.returncode}):\n{tail}"
        )
    parser = _DomParser()
    parser.feed(dom)
    parser.close()
    written = shot is not None and shot.is_file() and shot.stat().st_size > 0
    return RenderResult(
        images_total=_int_attr(parser.body_attrs, "data-images-total"),
        images_loaded=_int_attr(parser.body_attrs, "data-images-loaded"),
        title="".join(parser.title_parts).strip(),
        screenshot=shot,
        screenshot_written=written,
        dom=dom,
        overflowing=_int_attr(parser.body_attrs, "data-overflowing"),
        wide_tables=_int_attr(parser.body_attrs, "data-wide-tables"),
        page_width=_int_attr(parser.body_attrs, "data-page-width"),
        window_width=_int_attr(parser.body_attrs, "data-window-width"),
    )
