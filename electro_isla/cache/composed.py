"""Composed pages: an ordered id list per page plus one rendered fragment per row.

A page of a composed name (`rows_of` in the registry) is cached in two parts:
the page's ids and count, which depend only on the name's membership columns
and live under the name's generation; and one fragment per row (the row's
item rendered for the response body and for the ETag), under the name's
generation *and* the row's. A write to a column the page only displays bumps
that row's generation: its fragment is refilled on the next read of any page,
every id list stays. Both parts are stored under generations read before
their data was fetched, so a reader that raced a commit stores them where
nobody looks (the same stale-set argument as CacheManager.get).

Keys, all derived from one name plus row ids (the hash tag `{<name>}` puts them,
and the name's stats hash, in one Redis Cluster slot; nothing else is read):

    <prefix>:gen:{<name>}                       membership generation
    <prefix>:gen:{<name>}:<id>                  one row's generation
    <prefix>:v:{<name>}:-:<g>:<params>|ids      {"count": n, "ids": [...]}
    <prefix>:v:{<name>}:<id>:<g>.<r>:-|row      {"b": compact item, "t": sorted-key item}
    <prefix>:v:{<name>}:-:<g>:<params>|page     the joined page, with its rows' versions (Redis)

On Redis a HIT is one round trip: PAGE_SCRIPT reads the generation, the id
list, the rows' generations and their fragments, joins the fragments and
counts the hit, in Cluster mode too (every key it reaches is in the name's slot).
In-process the same steps run as separate calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from electro_isla.cache.keys import KeySpec
from electro_isla.cache.registry import REGISTRY
from electro_isla.cache.stores import RedisStore
from electro_isla.json import dumps, loads
from electro_isla.shared_store import REDIS_ERRORS

if TYPE_CHECKING:
    from electro_isla.cache.manager import CacheManager

# KEYS[1]: `<prefix>:gen:{<name>}`. ARGV[1]: the params part; ARGV[2]: a seeded
# counter's lifetime; ARGV[3]: "1" to count the lookup as a hit or miss; ARGV[4]:
# the name's TTL. A page joined from its fragments is kept as a memo
# (`...|page`: the rows' versions, the body, the tagged text): while every row
# is at the version it was joined from, a HIT reads the memo instead of every
# fragment. It is made of exactly those fragments, so it is exactly as fresh.
# Returns {g} when the id list is missing; {g, count, 1, body, tagged} when every
# fragment is there (joined as the JSON lists they form); else
# {g, count, 0, id1, version1, fragment1 or "", id2, ...}.
PAGE_SCRIPT = """
local gen_key = KEYS[1]
local prefix, name = string.match(gen_key, '^(.*):gen:{([^}]*)}$')
local now = redis.call('TIME')
local seed = now[1] .. string.format('%06d', now[2]) .. '000'
local function seeded(keys, values)
  for i = 1, #keys do
    if not values[i] then
      redis.call('SET', keys[i], seed, 'NX', 'EX', ARGV[2])
      values[i] = redis.call('GET', keys[i])
    end
  end
  return values
end
local g = seeded({gen_key}, {redis.call('GET', gen_key)})[1]
local vhead = prefix .. ':v:{' .. name .. '}:'
local raw = redis.call('GET', vhead .. '-:' .. g .. ':' .. ARGV[1] .. '|ids')
local result = {g}
local hit = false
if raw then
  local list = cjson.decode(raw)
  local ids, gkeys, vkeys = {}, {}, {}
  for i, id in ipairs(list['ids']) do
    ids[i] = string.format('%d', id)
    gkeys[i] = gen_key .. ':' .. ids[i]
  end
  local gens = {}
  if #ids > 0 then gens = seeded(gkeys, redis.call('MGET', unpack(gkeys))) end
  -- The page as last joined, valid while every row is at the version it was joined from.
  local versions = table.concat(gens, '.')
  local memo_key = vhead .. '-:' .. g .. ':' .. ARGV[1] .. '|page'
  local memo = redis.call('GET', memo_key)
  if memo then
    local a = string.find(memo, '\\n', 1, true)
    if string.sub(memo, 1, a - 1) == versions then
      local b = string.find(memo, '\\n', a + 1, true)
      hit = true
      result = {g, list['count'], 1, string.sub(memo, a + 1, b - 1), string.sub(memo, b + 1)}
    end
  end
  local values = {}
  if not hit and #ids > 0 then
    for i = 1, #ids do
      vkeys[i] = vhead .. ids[i] .. ':' .. g .. '.' .. gens[i] .. ':-|row'
    end
    values = redis.call('MGET', unpack(vkeys))
  end
  local bodies, tagged, complete = {}, {}, true
  for i = 1, #ids do
    if hit then break end
    if values[i] then
      local row = cjson.decode(values[i])
      bodies[i], tagged[i] = row['b'], row['t']
    else
      complete = false
    end
  end
  if hit then
    -- answered from the memo
  elseif complete then
    hit = true
    local body, joined = table.concat(bodies, ','), table.concat(tagged, ', ')
    redis.call('SET', memo_key, versions .. '\\n' .. body .. '\\n' .. joined, 'EX', ARGV[4])
    result = {g, list['count'], 1, body, joined}
  else
    result = {g, list['count'], 0}
    for i = 1, #ids do
      result[#result + 1] = ids[i]
      result[#result + 1] = g .. '.' .. gens[i]
      result[#result + 1] = values[i] or ''
    end
  end
end
if ARGV[3] == '1' then
  local field = 'misses'
  if hit then field = 'hits' end
  local stats = prefix .. ':stats:{' .. name .. '}'
  redis.call('HINCRBY', stats, field, 1)
  redis.call('HSET', stats, 'last_updated', now[1] .. '.' .. string.format('%06d', now[2]))
end
return result
"""

Fragment = dict[str, str]  # {"b": compact item JSON, "t": sorted-key item JSON}


@dataclass
class Lookup:
    """What one lookup found: the id list (or None) and each row's fragment (or its version)."""

    gen: str
    count: int | None = None
    ids: list[int] | None = None
    fragments: dict[int, Fragment] | None = None
    missing: dict[int, str] | None = None  # row id -> version its fragment belongs under
    joined: tuple[str, str] | None = None  # every fragment found, already joined


class ComposedPages:
    """Composed-page reads of one CacheManager (see the module docstring)."""

    def __init__(self, manager: CacheManager) -> None:
        self.manager = manager
        store = manager.store
        self.script = (
            store.client.register_script(PAGE_SCRIPT)
            if isinstance(store, RedisStore) and store.lookup_script is not None
            else None
        )

    # -- keys ------------------------------------------------------------------

    @staticmethod
    def list_key(name: str, gen: str, params: str) -> str:
        return f"v:{{{name}}}:-:{gen}:{params}|ids"

    @staticmethod
    def row_key(name: str, row: int, version: str) -> str:
        return f"v:{{{name}}}:{row}:{version}:-|row"

    # -- lookups -------------------------------------------------------------------

    def _script_lookup(self, gen_key: str, params: str, count: bool) -> Lookup:
        assert self.script is not None
        ttl = self.manager.ttls[self.manager.keys.name_of(gen_key)]
        args = (gen_key, params, self.manager.gen_ttl, "1" if count else "0", ttl)
        client = self.manager.store.client
        try:
            reply = client.execute_command("EVALSHA", self.script.sha, 1, *args)
        except NoScriptError:  # the server restarted or was flushed since
            self.script.sha = client.script_load(self.script.script)
            reply = client.execute_command("EVALSHA", self.script.sha, 1, *args)
        found = Lookup(reply[0].decode())
        if len(reply) == 1:
            return found
        found.count = int(reply[1])
        if int(reply[2]) == 1:
            found.joined = (reply[3].decode(), reply[4].decode())
            return found
        found.ids, found.fragments, found.missing = [], {}, {}
        for i in range(3, len(reply), 3):
            row = int(reply[i])
            found.ids.append(row)
            if reply[i + 2]:
                found.fragments[row] = loads(reply[i + 2])
            else:
                found.missing[row] = reply[i + 1].decode()
        return found

    def _plain_lookup(self, name: str, gen_key: str, params: str, count: bool) -> Lookup:
        manager = self.manager
        gen = str(manager.store.generations([gen_key])[0])
        found = Lookup(gen)
        listed = manager.backend.get(self.list_key(name, gen, params))
        if listed is not None:
            found.count, found.ids = int(listed["count"]), [int(i) for i in listed["ids"]]
            gens = manager.store.generations([manager.gen_key(name, row) for row in found.ids])
            versions = {row: f"{gen}.{g}" for row, g in zip(found.ids, gens, strict=True)}
            keys = [self.row_key(name, row, versions[row]) for row in found.ids]
            values = manager.backend.get_many(*keys) if keys else []
            found.fragments, found.missing = {}, {}
            for row, value in zip(found.ids, values, strict=True):
                if value is None:
                    found.missing[row] = versions[row]
                else:
                    found.fragments[row] = value
            if not found.missing:
                ordered = [found.fragments[row] for row in found.ids]
                found.joined = (
                    ",".join(f["b"] for f in ordered),
                    ", ".join(f["t"] for f in ordered),
                )
        if count:
            hit = found.ids is not None and not found.missing
            manager._count("hits" if hit else "misses", name)
        return found

    def _lookup(self, name: str, gen_key: str, params: str, count: bool) -> Lookup:
        if self.script is not None:
            return self._script_lookup(gen_key, params, count)
        return self._plain_lookup(name, gen_key, params, count)

    # -- the read --------------------------------------------------------------------

    def get(
        self,
        name: str,
        params: Mapping[str, Any] | None,
        fetch_ids: Callable[[], dict[str, Any]],
        fetch_rows: Callable[[Sequence[int]], list[dict[str, Any]]],
        render_row: Callable[[dict[str, Any]], Fragment],
        shown: Callable[[dict[str, Any]], bool] = lambda row: True,
        record: bool = True,
    ) -> dict[str, Any]:
        """{count, body, tagged}: the page's results as JSON text, in both renderings.

        fetch_ids() -> {"count", "ids"}; fetch_rows(ids) -> those rows' data (any
        order, one query); render_row(normalised row) -> its fragment; shown(row)
        says whether a row still belongs on a page (a page that races a write
        which took a row off it is answered straight from the database).
        """
        manager = self.manager
        entry = REGISTRY[name]
        if entry.rows_of is None:
            raise ValueError(f"{name} is not a composed name")
        direct = lambda: self._direct(fetch_ids, fetch_rows, render_row, shown)  # noqa: E731
        if not manager.enabled:
            return manager._bypass(entry, direct, record, reason="disabled")
        if not manager._usable():
            return manager._bypass(entry, direct, record, reason="circuit open")
        gen_key = manager.gen_key(name)
        params_part = manager.keys.params_part(entry, params)
        try:
            found = self._lookup(name, gen_key, params_part, count=True)
            key = self.list_key(name, found.gen, params_part)
            manager.breaker.success()
            if found.joined is not None:
                manager._event("HIT", entry, key, record)
                return self._page(found.count, *found.joined)
            manager._event("MISS", entry, key, record)
            if found.ids is None:
                spec = KeySpec(entry, None, f"{params_part}|ids", [gen_key])
                listed = manager._fill(spec, key, fetch_ids, record)
                found = self._lookup(name, gen_key, params_part, count=False)
                if found.joined is not None:
                    return self._page(found.count, *found.joined)
                if found.ids is None:  # not stored (uncommitted writes) or bumped meanwhile
                    return self._direct(lambda: listed, fetch_rows, render_row, shown)
            return self._complete(entry.name, found, fetch_rows, render_row, shown, direct)
        except REDIS_ERRORS as exc:
            manager._failed(name, f"{manager.prefix}:v:{{{name}}}:?", exc)
            return manager._bypass(entry, direct, record, reason="error")

    def _complete(
        self,
        name: str,
        found: Lookup,
        fetch_rows: Callable[[Sequence[int]], list[dict[str, Any]]],
        render_row: Callable[[dict[str, Any]], Fragment],
        shown: Callable[[dict[str, Any]], bool],
        direct: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Fetch the rows whose fragments are missing (one query), store and splice them."""
        manager = self.manager
        entry = REGISTRY[name]
        assert found.ids is not None and found.fragments is not None and found.missing is not None
        wanted = sorted(found.missing)
        label = f"{manager.prefix}:v:{{{name}}}:{','.join(map(str, wanted))}"
        rows = manager._fetch(entry, label, lambda: fetch_rows(wanted))
        by_id = {int(row["id"]): row for row in rows}
        if set(by_id) != set(wanted) or not all(shown(row) for row in rows):
            return direct()  # a row left the page after its id list was read
        fresh = {row: render_row(by_id[row]) for row in wanted}
        if not manager._uncommitted_writes(entry):
            ttl = manager.ttls[name]
            manager.backend.set_many(
                {self.row_key(name, row, found.missing[row]): fresh[row] for row in wanted},
                timeout=ttl,
            )
        fragments = {**found.fragments, **fresh}
        ordered = [fragments[row] for row in found.ids]
        return self._page(
            found.count, ",".join(f["b"] for f in ordered), ", ".join(f["t"] for f in ordered)
        )

    @staticmethod
    def _page(count: int | None, body: str, tagged: str) -> dict[str, Any]:
        return {"count": int(count or 0), "body": f"[{body}]", "tagged": f"[{tagged}]"}

    def _direct(
        self,
        fetch_ids: Callable[[], dict[str, Any]],
        fetch_rows: Callable[[Sequence[int]], list[dict[str, Any]]],
        render_row: Callable[[dict[str, Any]], Fragment],
        shown: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any]:
        """The page straight from the database, nothing stored."""
        listed = fetch_ids()
        ids = [int(i) for i in listed["ids"]]
        rows = {int(r["id"]): r for r in loads(dumps(fetch_rows(ids))) if shown(r)}
        ordered = [render_row(rows[row]) for row in ids if row in rows]
        return self._page(
            listed["count"], ",".join(f["b"] for f in ordered), ", ".join(f["t"] for f in ordered)
        )
