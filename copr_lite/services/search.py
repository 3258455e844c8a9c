"""Search strings, as both APIs and the web UI read them."""

from __future__ import annotations

import logging
import unicodedata

from .. import forms

log = logging.getLogger(__name__)


def search_terms(query: str, field: str = "project") -> tuple[list[str], str | None, str | None]:
    """(words, owner part, name part) of a search string: `owner/name` substrings, or up
    to 20 words that must all match. A ValidationError on `field` when it is empty."""
    text = query.replace("*", "").strip()
    if not text:
        raise forms.validation_error(field, "Search string must have at least 1 character.")
    if any(unicodedata.category(c) == "Cc" and not c.isspace() for c in text):
        # SQLite's LIKE ends a pattern at NUL, so "a\0b" would search for "a".
        raise forms.validation_error(field, "Search string must not hold control characters.")
    if "/" in text:
        owner_part, _, rest = text.partition("/")
        return [], owner_part, rest.split("/", 1)[0]
    return text.split()[:20], None, None
