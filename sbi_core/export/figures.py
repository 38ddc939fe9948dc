"""A plotly figure as a PNG or SVG file: plotly's static export through kaleido, offline.

kaleido (>= 1.0) draws a figure with the real plotly.js inside a headless
Chromium that it drives over the DevTools protocol (through ``choreographer``).
What this module chose, so that an export never touches the network:

* **the browser** is one already installed: ``$BROWSER_PATH`` if set, else the
  first Chromium-based browser on ``PATH`` or in its usual place (Debian:
  ``/usr/bin/chromium``), as ``choreographer``'s own search finds it. Nothing
  is ever downloaded; without a browser :class:`FigureExportError` says what
  to install (``apt install chromium``, or set ``BROWSER_PATH``).
* **plotly.js** is the copy bundled with the installed ``plotly`` package
  (kaleido's default), and **MathJax is off** (kaleido would load it from a CDN;
  no figure of this project uses LaTeX).
* **one browser, started once**: starting Chromium costs about 2 s, a figure
  after that about 0.15 s. The first export starts a kaleido session on an
  event loop of its own (a daemon thread) and every later export, from any
  thread, renders in it; :func:`close_exporter` (also run at exit) stops it.
  kaleido's own ``start_sync_server`` is not used: it can wait forever when
  its browser fails to start, and hands results back through a shared queue
  that two threads calling at once could mix up.

Sizes are in layout pixels: ``width`` and ``height`` default to the figure's
layout (else plotly's 700 x 500), and a PNG has ``scale * width`` by
``scale * height`` pixels. An SVG is vector data; ``scale`` only scales it.

Example (needs a Chromium):

>>> import plotly.graph_objects as go
>>> png = figure_png(go.Figure(go.Scatter(y=[1, 3, 2])), width=300, height=200)  # doctest: +SKIP
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"  # doctest: +SKIP
True
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from typing import Any, Optional

from sbi_core.errors import SBIError

__all__ = ["FigureExportError", "figure_png", "figure_svg", "find_browser", "close_exporter"]

DEFAULT_WIDTH, DEFAULT_HEIGHT = 700, 500  # plotly's own defaults, for a figure whose layout has none
RENDER_TIMEOUT_S = 90.0
_INSTALL = ("Static image export needs Chrome or Chromium installed on the server: install it "
            "(Debian/Ubuntu: `apt install chromium`) or set BROWSER_PATH to its executable.")


class FigureExportError(SBIError, RuntimeError):
    """A figure could not be exported as an image; the message says what to install or fix."""


def find_browser() -> str:
    """The Chromium-based browser kaleido will drive: ``$BROWSER_PATH``, else the first one found.

    Raises:
        FigureExportError: kaleido is not installed, or no browser is.
    """
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        raise FigureExportError("Static image export needs the kaleido package: `pip install 'kaleido>=1.0'`.") \
            from None
    path = Chromium.find_browser(skip_local=False)  # a search only: it never downloads
    if not path:
        raise FigureExportError(_INSTALL)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):  # $BROWSER_PATH is taken as given
        raise FigureExportError(f"The browser {path} (BROWSER_PATH) is not an executable file. " + _INSTALL)
    return str(path)


class _Exporter:
    """One kaleido session (one browser) on its own event loop, in a daemon thread."""

    def __init__(self, browser: str) -> None:
        from kaleido import Kaleido

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kaleido", daemon=True)
        self.thread.start()
        self.kaleido = Kaleido(path=browser, mathjax=False, timeout=RENDER_TIMEOUT_S)
        try:
            self._call(self.kaleido.open())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    def _call(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=RENDER_TIMEOUT_S + 30)

    def render(self, fig_dict: dict, opts: dict) -> bytes:
        return self._call(self.kaleido.calc_fig(fig_dict, opts=opts))

    def close(self) -> None:
        try:
            self._call(self.kaleido.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


_LOCK = threading.Lock()
_EXPORTER: Optional[_Exporter] = None


def _exporter() -> _Exporter:
    """The running session, started on first use."""
    global _EXPORTER
    with _LOCK:
        if _EXPORTER is None:
            browser = find_browser()
            try:
                _EXPORTER = _Exporter(browser)
            except Exception as err:
                raise FigureExportError(f"The browser {browser} did not start for image export ({err}). "
                                        + _INSTALL) from err
        return _EXPORTER


def close_exporter() -> None:
    """Stop the export browser (a later export starts a new one); nothing happens if none runs."""
    global _EXPORTER
    with _LOCK:
        exporter, _EXPORTER = _EXPORTER, None
    if exporter is not None:
        with contextlib.suppress(Exception):  # a crashed browser cannot close cleanly; its thread still stops
            exporter.close()


atexit.register(close_exporter)


def _render(fig: Any, fmt: str, width: Optional[int], height: Optional[int], scale: float) -> bytes:
    """``fig`` (a ``go.Figure`` or its dict) as ``fmt`` bytes; one retry on a fresh browser if it died."""
    fig_dict = fig.to_dict() if hasattr(fig, "to_dict") else dict(fig)
    layout = fig_dict.get("layout", {})
    opts = dict(format=fmt, width=int(width or layout.get("width") or DEFAULT_WIDTH),
                height=int(height or layout.get("height") or DEFAULT_HEIGHT), scale=float(scale))
    if opts["width"] <= 0 or opts["height"] <= 0 or opts["scale"] <= 0:
        raise FigureExportError(f"Image size must be positive: got {opts['width']} x {opts['height']} "
                                f"at scale {opts['scale']}.")
    failure: Optional[Exception] = None
    for _ in range(2):  # a second try on a fresh browser when the first crashed or hung
        try:
            return _exporter().render(fig_dict, opts)
        except FigureExportError:
            raise
        except Exception as err:
            failure = err
            close_exporter()
    raise FigureExportError(f"Exporting the figure as {fmt.upper()} failed: {failure}") from failure


def figure_png(fig: Any, width: Optional[int] = None, height: Optional[int] = None, scale: float = 2) -> bytes:
    """``fig`` as PNG bytes of ``scale * width`` x ``scale * height`` pixels.

    Args:
        fig: a ``plotly.graph_objects.Figure`` (or its dict).
        width, height: layout pixels; default: the figure's layout, else 700 x 500.
        scale: pixels per layout pixel (2: sharp on high-density screens and in print).

    Raises:
        FigureExportError: no browser or kaleido, a bad size, or the export failed.
    """
    return _render(fig, "png", width, height, scale)


def figure_svg(fig: Any, width: Optional[int] = None, height: Optional[int] = None, scale: float = 1) -> bytes:
    """``fig`` as SVG bytes (UTF-8 XML with an ``<svg>`` root), ``width`` x ``height`` layout pixels.

    Arguments and errors as :func:`figure_png`.
    """
    return _render(fig, "svg", width, height, scale)
