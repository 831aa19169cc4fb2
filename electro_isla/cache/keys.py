"""Key layout: every key the cache writes is spelled here, in Python and in Lua.

`<prefix>:gen:{<name>}` and `<prefix>:gen:{<name>}:<row>` count a name's and a
row's generations; a value lives at `<prefix>:v:{<name>}:<row>:<version>:<params>`
(`<version>`: the generations it was read under, joined by "."), so a bump makes
every older value unreachable without deleting it. Its lock is
`<prefix>:lock:v:{<name>}:…`, a name's hit/miss counters `<prefix>:stats:{<name>}`
and the counters of no name (errors of ping, invalidate…) `<prefix>:stats`.

A composed name (catalogue pages) uses the same value layout with three params
suffixes: its id list (`<params>|ids`, row "-"), one fragment per row (row
`<id>`, version `<g>.<r>`, params `-|row`) and the joined page (`<params>|page`).

The `{<name>}` is a Redis Cluster hash tag: all of a name's keys live in one
slot, so a lookup stays one Lua script (one round trip) on a cluster too. The
scripts (scripts.py) get the generation and stats keys as KEYS and build value
keys only with `LUA_KEYS` below, the Lua twin of `value_key`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from electro_isla.cache.registry import REGISTRY, CachedName

MAX_PARAMS_IN_KEY = 120
NO_ROW = "-"
RENDERED = "|r"  # a rendered value beside the plain one ("|" never occurs in a params part)
IDS, PAGE, ROW = "|ids", "|page", "-|row"  # a composed name's id list, memo and fragments
GLOB_CHARS = re.compile(r"([*?\[\]\\])")

# The Lua twin of KeySpace.value_key / version / gen_key(name, row), pasted into every script.
LUA_KEYS = f"""
local NO_ROW, IDS, PAGE, ROW = '{NO_ROW}', '{IDS}', '{PAGE}', '{ROW}'
local function version(gens) return table.concat(gens, '.') end
local function value_key(vhead, row, ver, params) return vhead .. row .. ':' .. ver .. ':' .. params end
local function row_gen_key(gen_key, row) return gen_key .. ':' .. row end
"""


@dataclass(frozen=True)
class KeySpec:
    """What identifies one cached value, before the generations are known."""

    entry: CachedName
    row: object | None
    params: str
    gen_keys: list[str]

    @property
    def row_part(self) -> str:
        return NO_ROW if self.row is None else str(self.row)


class KeySpace:
    """Every key of one app (one `CACHE_KEY_PREFIX`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # -- generations and counters ------------------------------------------------

    def gen_key(self, name: str, row: object | None = None) -> str:
        base = f"{self.prefix}:gen:{{{name}}}"
        return base if row is None else f"{base}:{row}"

    def name_of(self, gen_key: str) -> str:
        return gen_key.removeprefix(f"{self.prefix}:gen:{{").split("}", 1)[0]

    def applied_key(self, gen_key: str, mark: str) -> str:
        """The mark that an outbox row (outbox.Effect.mark) moved `gen_key` (same slot)."""
        return f"{self.prefix}:applied:{{{self.name_of(gen_key)}}}:{mark}"

    def stats_key(self, name: str | None = None) -> str:
        """A name's counters (its slot), or with no name the counters of operations."""
        return f"{self.prefix}:stats" if name is None else f"{self.prefix}:stats:{{{name}}}"

    def lock_key(self, key: str) -> str:
        return f"{self.prefix}:lock:{key}"

    # -- values ------------------------------------------------------------------

    def full(self, key: str) -> str:
        """A value key as Redis sees it (Flask-Caching adds `prefix:` to relative ones)."""
        return f"{self.prefix}:{key}"

    @staticmethod
    def value_head(name: str) -> str:
        return f"v:{{{name}}}:"

    def spec(
        self,
        name: str,
        row: object | None,
        params: Mapping[str, Any] | None,
        rendered: bool = False,
    ) -> KeySpec:
        entry = REGISTRY[name]
        if (entry.row_table is None) != (row is None):
            raise ValueError(f"{name}: row is {'required' if entry.row_table else 'not allowed'}")
        gen_keys = [self.gen_key(name)] + ([self.gen_key(name, row)] if row is not None else [])
        part = self.params_part(entry, params) + (RENDERED if rendered else "")
        return KeySpec(entry, row, part, gen_keys)

    @staticmethod
    def params_part(entry: CachedName, params: Mapping[str, Any] | None) -> str:
        """The whitelisted query parameters, urlencoded and sorted (hashed when long)."""
        if not params:
            return "-"
        kept = sorted(
            (k, "" if v is None else str(v)) for k, v in params.items() if k in entry.params
        )
        part = urlencode(kept) or "-"
        if len(part) > MAX_PARAMS_IN_KEY:
            part = "h" + hashlib.sha256(part.encode()).hexdigest()[:32]
        return part

    @staticmethod
    def parts(spec: KeySpec) -> tuple[str, str]:
        """The value key around its version: (`v:{<name>}:<row>:`, `:<params>`)."""
        return f"v:{{{spec.entry.name}}}:{spec.row_part}:", f":{spec.params}"

    def value_key(self, spec: KeySpec, gens: Iterable[int | str]) -> str:
        """Key relative to the backend's prefix."""
        head, tail = self.parts(spec)
        return head + ".".join(str(n) for n in gens) + tail

    # -- a composed name's parts ---------------------------------------------------

    def composed_spec(self, entry: CachedName, params: str) -> KeySpec:
        """The id list of one page: row "-", under the name's generation only."""
        return KeySpec(entry, None, f"{params}{IDS}", [self.gen_key(entry.name)])

    @staticmethod
    def list_key(name: str, gen: str, params: str) -> str:
        return f"v:{{{name}}}:{NO_ROW}:{gen}:{params}{IDS}"

    @staticmethod
    def row_key(name: str, row: int, version: str) -> str:
        return f"v:{{{name}}}:{row}:{version}:{ROW}"

    # -- clearing ------------------------------------------------------------------

    @staticmethod
    def entry_glob(pattern: str) -> str:
        """`<name>[:<row>…]` glob -> glob over value keys after the prefix (`v:{<name>}:…`)."""
        name, _, rest = pattern.partition(":")
        if not rest:
            rest = "*"
        elif not rest.endswith("*"):
            rest = f"{rest}:*"
        return f"v:{{{name}}}:{rest}"

    def scan_glob(self, glob: str) -> str:
        """`entry_glob` over full keys: the prefix literal even if it holds glob characters."""
        return GLOB_CHARS.sub(r"\\\1", self.prefix) + f":{glob}"
