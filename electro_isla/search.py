"""`?q=` as Django REST Framework's SearchFilter reads it: every word, each in any field.

"Bosch destornilladores" finds the producto named "destornilladores Bosch", and
"María Suárez" the usuario whose first and last names they are: the words are
split on spaces and commas, a quoted phrase ("luz solar") stays one word, and a
row matches when each word is found, case-insensitively, in one of the fields.
A word's `%`, `_` and `\\` are literal. At most MAX_TERMS words (a 422 beyond):
each one is a LIKE per field on every row of a public list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from marshmallow import ValidationError, fields, validate
from sqlalchemy import ColumnElement, and_, or_

from electro_isla.fields import storable_text

# A token: a run of non-spaces in which quoted parts ("…", '…') may hold spaces, else
# any run of non-spaces (the split Django's smart_split makes for DRF).
TOKEN = re.compile(r"""(?:[^\s'"]*(?:(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')[^\s'"]*)+)|\S+""")
ESCAPE = re.compile(r"\\(.)")
MAX_TERMS = 10  # each word is one more LIKE per searched field on every row


def search_terms(q: str | None) -> list[str]:
    """The words of `q`, each once, in order: DRF's split. A token quoted whole is one
    phrase; other tokens split on commas; quotes inside a word (O'Brien, 24") stay."""
    terms: dict[str, None] = {}
    for match in TOKEN.finditer((q or "").replace("\x00", "")):
        token = match.group().strip(",")
        if len(token) >= 2 and token[0] in "\"'" and token[0] == token[-1]:
            parts = [ESCAPE.sub(r"\1", token[1:-1])]
        else:
            parts = token.split(",")
        for part in parts:
            if part.strip():
                terms.setdefault(part.strip(), None)
    return list(terms)


def at_most_max_terms(q: str) -> None:
    """Validator of a `q` parameter: a 422 past MAX_TERMS words."""
    if len(search_terms(q)) > MAX_TERMS:
        raise ValidationError(f"At most {MAX_TERMS} words.")


def search_param(max_length: int, searched: str) -> fields.String:
    """A list's `q` query parameter, searching the fields named in `searched`."""
    return fields.String(
        validate=[validate.Length(max=max_length), storable_text, at_most_max_terms],
        metadata={
            "description": f"Up to {MAX_TERMS} words (split on spaces and commas; a quoted "
            f"phrase is one word), each found in {searched}, case-insensitively"
        },
    )


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
