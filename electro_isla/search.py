"""`?q=` as Django REST Framework's SearchFilter reads it: every word, each in any field.

"Bosch destornilladores" finds the producto named "destornilladores Bosch", and
"María Suárez" the usuario whose first and last names they are: the words are
split on spaces and commas, a quoted phrase ("luz solar") stays one word, and a
row matches when each word is found, case-insensitively, in one of the fields.
A word's `%`, `_` and `\\` are literal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, or_

# A quoted phrase, or a run of anything but spaces, commas and quotes.
TERM = re.compile(r'"([^"]*)"|\'([^\']*)\'|([^\s,"\']+)')


def search_terms(q: str | None) -> list[str]:
    """The words of `q`, each once, in order (DRF's smart split)."""
    terms: dict[str, None] = {}
    for match in TERM.finditer(q or ""):
        term = next(group for group in match.groups() if group is not None).strip()
        if term:
            terms.setdefault(term, None)
    return list(terms)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(columns: Sequence[ColumnElement], q: str | None) -> ColumnElement | None:
    """The condition a row meets when each word of `q` is in one of `columns`; None
    when `q` has no word (no filter)."""
    terms = search_terms(q)
    if not terms:
        return None
    return and_(
        *(or_(*(column.ilike(_like(term), escape="\\") for column in columns)) for term in terms)
    )
