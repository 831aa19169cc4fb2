"""Composed pages: an ordered id list per page plus one rendered fragment per row.

A page of a composed name (`rows_of` in the registry) is cached in two parts:
the page's ids and count, which depend only on the name's membership columns
and live under the name's generation; and one fragment per row (the row's
item rendered for the response body and for the ETag), under the name's
generation *and* the row's. A write to a column the page only displays bumps
that row's generation: its fragment is refilled on the next read of any page,
every id list stays. Both parts are stored under generations read before
their data was fetched, so a reader that raced a commit stores them where
nobody looks (the same stale-set argument as reads.py). The key layout is in
keys.py (`list_key`, `row_key`).

A page goes through the same pipeline as a plain value (reads.py): admit,
lookup (on Redis one round trip, scripts.PAGE_LOOKUP, which joins the fragments
and counts the hit), fill the id list under single flight, then fetch the
missing rows in one query and store their fragments; any Redis error bypasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from electro_isla.cache.reads import ReadPipeline, uncommitted_writes
from electro_isla.cache.registry import REGISTRY
from electro_isla.cache.stores import Fragment, PageFound, join_fragments
from electro_isla.json import dumps, loads
from electro_isla.shared_store import REDIS_ERRORS

FetchRows = Callable[[Sequence[int]], list[dict[str, Any]]]
RenderRow = Callable[[dict[str, Any]], Fragment]
Shown = Callable[[dict[str, Any]], bool]


def _page(count: int | None, body: str, tagged: str) -> dict[str, Any]:
    return {"count": int(count or 0), "body": f"[{body}]", "tagged": f"[{tagged}]"}


class ComposedPages:
    """Composed-page reads over one read pipeline (see the module docstring)."""

    def __init__(self, reads: ReadPipeline) -> None:
        self.reads = reads

    def get(
        self,
        name: str,
        params: Mapping[str, Any] | None,
        fetch_ids: Callable[[], dict[str, Any]],
        fetch_rows: FetchRows,
        render_row: RenderRow,
        shown: Shown = lambda row: True,
        record: bool = True,
    ) -> dict[str, Any]:
        """{count, body, tagged}: the page's results as JSON text, in both renderings.

        fetch_ids() -> {"count", "ids"}; fetch_rows(ids) -> those rows' data (any
        order, one query); render_row(normalised row) -> its fragment; shown(row)
        says whether a row still belongs on a page (a page that races a write
        which took a row off it is answered straight from the database).
        """
        reads = self.reads
        entry = REGISTRY[name]
        if entry.rows_of is None:
            raise ValueError(f"{name} is not a composed name")
        direct = lambda: self.direct(fetch_ids, fetch_rows, render_row, shown)  # noqa: E731
        reason = reads.admit()
        if reason is not None:
            return reads.bypass(entry, direct, record, reason)
        parts = reads.parts
        keys, store, ttl = parts.keys, parts.store, parts.ttls[name]
        params_part = keys.params_part(entry, params)
        try:
            found = store.lookup_page(name, params_part, True, ttl)
            key = keys.list_key(name, found.gen, params_part)
            parts.breaker.success()
            reads.looked_up(entry, key, found.joined is not None, found.counted, record)
            if found.joined is not None:
                return _page(found.count, *found.joined)
            if found.ids is None:
                spec = keys.composed_spec(entry, params_part)
                listed = reads.fill(spec, key, fetch_ids, record)
                found = store.lookup_page(name, params_part, False, ttl)
                if found.joined is not None:
                    return _page(found.count, *found.joined)
                if found.ids is None:  # not stored (uncommitted writes) or bumped meanwhile
                    return self.direct(lambda: listed, fetch_rows, render_row, shown)
            return self.complete(name, found, fetch_rows, render_row, shown, direct)
        except REDIS_ERRORS as exc:
            reads.failed(name, keys.full(f"{keys.value_head(name)}?"), exc)
            return reads.bypass(entry, direct, record, reason="error")

    def complete(
        self,
        name: str,
        found: PageFound,
        fetch_rows: FetchRows,
        render_row: RenderRow,
        shown: Shown,
        direct: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Fetch the rows whose fragments are missing (one query), store and splice them."""
        reads = self.reads
        entry = REGISTRY[name]
        assert found.ids is not None and found.fragments is not None and found.missing is not None
        wanted = sorted(found.missing)
        keys = reads.parts.keys
        label = keys.full(f"{keys.value_head(name)}{','.join(map(str, wanted))}")
        rows = reads.fetch(entry, label, lambda: fetch_rows(wanted))
        by_id = {int(row["id"]): row for row in rows}
        if set(by_id) != set(wanted) or not all(shown(row) for row in rows):
            return direct()  # a row left the page after its id list was read
        fresh = {row: render_row(by_id[row]) for row in wanted}
        if not uncommitted_writes(entry):
            reads.parts.store.set_many(
                {keys.row_key(name, row, found.missing[row]): fresh[row] for row in wanted},
                reads.parts.ttls[name],
            )
        fragments = {**found.fragments, **fresh}
        return _page(found.count, *join_fragments([fragments[row] for row in found.ids]))

    @staticmethod
    def direct(
        fetch_ids: Callable[[], dict[str, Any]],
        fetch_rows: FetchRows,
        render_row: RenderRow,
        shown: Shown,
    ) -> dict[str, Any]:
        """The page straight from the database, nothing stored."""
        listed = fetch_ids()
        ids = [int(i) for i in listed["ids"]]
        rows = {int(r["id"]): r for r in loads(dumps(fetch_rows(ids))) if shown(r)}
        ordered = [render_row(rows[row]) for row in ids if row in rows]
        return _page(listed["count"], *join_fragments(ordered))
