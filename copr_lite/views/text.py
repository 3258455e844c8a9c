"""What users type, made safe for the pages: Markdown without raw HTML, and links only to
web and mail addresses."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

# CommonMark with raw HTML off: a <script> in the instructions is shown as text. The
# renderer also refuses javascript:, vbscript: and data: link targets by itself.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[A-Za-z]{2,}$")


def markdown(text: str) -> Markup:
    """`text` rendered as CommonMark, every raw HTML tag escaped, no images."""
    return Markup(_MARKDOWN.render(text or ""))


def _web_url(text: str) -> str | None:
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme in ("http", "https") and parts.netloc else None


def homepage_link(text: str) -> Markup:
    """A link to an http(s) homepage; anything else stays text."""
    url = _web_url(text.strip())
    if url is None:
        return escape(text)
    return Markup('<a href="{0}" rel="nofollow noopener">{1}</a>').format(url, text)


def contact_link(text: str) -> Markup:
    """A mailto: link for an e-mail address, a link for an http(s) URL, else text."""
    text = text.strip()
    if _EMAIL.match(text):
        return Markup('<a href="mailto:{0}">{0}</a>').format(text)
    return homepage_link(text)
