"""Lookups named ahead of time, so that they share the token check's round trip.

An authenticated request made three Redis round trips before its answer: the
token's revocation check (ZMSCORE), the usuario's access entry
(`acceso_usuario`: role and is_active) and the view's own entry. The check
knows who calls as soon as the token is decoded, so `authenticate()` and a view
that knows its entry beforehand (each statistic) name those lookups here, and
the revocation check sends them in its own pipeline: one round trip for all.

Nothing gets weaker. The lookups are the same script a read runs, sent after
the request began and after the outbox drain the check runs first, in the same
pipeline as the revocation check: as fresh as the lookups made a moment later
were. The role and is_active are still checked in Python, from the value found,
before the view reads anything. A lookup found here is used once, by the read of
the same key in the same request (cache/reads.py); one a refused request never
reads is dropped with the request (the script counted it, as it counts every
lookup).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import g, has_request_context

from electro_isla.cache.keys import KeySpec
from electro_isla.cache.stores import Found

# Given the caller's usuario id, the spec of one lookup to make ahead.
Ahead = Callable[[int], KeySpec]


def identity(spec: KeySpec) -> tuple[str, str, str]:
    return spec.entry.name, spec.row_part, spec.params


def want(ahead: Ahead) -> None:
    """Ask for a lookup in the next token check of this request."""
    if has_request_context():
        g.setdefault("cache_ahead", []).append(ahead)


def wanted(usuario_id: int) -> list[KeySpec]:
    """The lookups asked for, as specs for this usuario; asked once, so they are forgotten."""
    if not has_request_context():
        return []
    return [ahead(usuario_id) for ahead in g.pop("cache_ahead", [])]


def keep(found: dict[tuple[str, str, str], Found]) -> None:
    """What the token check's pipeline found, for this request's reads."""
    g.cache_found = found


def take(spec: KeySpec) -> Found | None:
    """The lookup of `spec` made ahead in this request, once; None when there was none."""
    if not has_request_context():
        return None
    found = g.get("cache_found")
    return found.pop(identity(spec), None) if found else None
