"""What a user typed or uploaded, shown as text: never as markdown, HTML or a link.

Run titles, prior parameter names, uploaded file names, an upload's docstring, a CSV header, the names in
a shared link: all of them reach pages that render Streamlit markdown (``st.markdown``, ``st.caption``,
``st.info``, expander and widget labels, toasts) or plotly text (titles, axis labels, hover text, which
understand a little HTML). Rendered as they are, a title ``![i](http://host/T.png)`` makes every browser
that shows the run fetch that image (a student could put any picture on the projector, or log who looks
at their run), and ``:red[...]``, ``:material/...:`` or ``$...$`` restyle the page.

* :func:`plain` makes a string safe to put *inside* markdown: every ASCII punctuation character is
  backslash-escaped (CommonMark renders an escaped punctuation character as itself, and Streamlit's
  directives, icons, emoji short codes and LaTeX all start with one), and line breaks become spaces,
  so it cannot start a heading, list or code block either.
* :func:`plot_text` makes a string safe for plotly's titles, labels and hover text: ``&``, ``<`` and
  ``>`` become HTML entities, which plotly shows as the characters.
* :func:`plain_paragraphs` does the same for several paragraphs (an upload's docstring).

Every page uses these; ``tests/test_user_text.py`` and ``tests/test_browser_hostile_text.py`` check them.
"""

from __future__ import annotations

import html
import re
import string
from typing import Any

__all__ = ["WORD_JOINER", "plain", "plain_paragraphs", "plot_text"]


_PUNCTUATION = frozenset(string.punctuation)  # every ASCII punctuation character, each escapable in CommonMark
# GitHub-flavoured markdown turns "http://", "www." and "name@host" in text into links even when their
# punctuation is escaped (it looks for them after the escapes are read), so an invisible word joiner
# goes between the scheme or "www" and what follows, and before "@".
_AUTOLINK = re.compile(r"(?i)(https?|ftps?|www)(?=\\[:.])|(?=\\@)")
WORD_JOINER = "\u2060"


def plain(value: Any) -> str:
    """``value`` as markdown that renders as exactly its text (whitespace runs shown as one space).

    Backslash-escapes each ASCII punctuation character (so no link, image, emphasis, code, HTML tag,
    table, heading, list, ``:red[...]`` colour, ``:material/...:`` icon, emoji short code or ``$``
    formula can start), puts an invisible word joiner (U+2060) where a bare web or mail address would
    become a link, and turns line breaks, tabs and other whitespace runs into one space (markdown shows
    them so anyway, and a line break could start a block).
    """
    text = " ".join(str(value).split())
    escaped = "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text)
    return _AUTOLINK.sub(lambda m: (m.group(1) or "") + WORD_JOINER, escaped)


def plain_paragraphs(value: Any) -> str:
    """Several paragraphs of user text (an upload's docstring) as markdown: each through :func:`plain`,
    blank lines between them kept as paragraph breaks."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(value))]
    return "\n\n".join(plain(p) for p in paragraphs if p)


def plot_text(value: Any) -> str:
    """``value`` for plotly text (titles, axis titles, legend names, hover text): its HTML escaped."""
    return html.escape(str(value), quote=False)

