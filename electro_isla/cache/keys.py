"""Key layout: generation counters, versioned value keys and their params part.

`<prefix>:gen:{<name>}` and `<prefix>:gen:{<name>}:<row>` count a name's and a
row's generations; a value lives at `<prefix>:v:{<name>}:<row>:<gens>:<params>`,
so a bump makes every older value unreachable without deleting it. Its lock is
`<prefix>:lock:v:{<name>}:…` and its hit/miss counters `<prefix>:stats:{<name>}`.

The `{<name>}` is a Redis Cluster hash tag: all of a name's keys live in one
slot, so the lookup stays one Lua script (one round trip) on a cluster too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from electro_isla.cache.registry import REGISTRY, CachedName

MAX_PARAMS_IN_KEY = 120


@dataclass(frozen=True)
class KeySpec:
    """What identifies one cached value, before the generations are known."""

    entry: CachedName
    row: object | None
    params: str
    gen_keys: list[str]


class KeySpace:
    """Every key of one app (one `CACHE_KEY_PREFIX`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def gen_key(self, name: str, row: object | None = None) -> str:
        base = f"{self.prefix}:gen:{{{name}}}"
        return base if row is None else f"{base}:{row}"

    def name_of(self, gen_key: str) -> str:
        return gen_key.removeprefix(f"{self.prefix}:gen:{{").split("}", 1)[0]

    def stats_key(self, name: str) -> str:
        return f"{self.prefix}:stats:{{{name}}}"

    @staticmethod
    def entry_glob(pattern: str) -> str:
        """`<name>[:<row>…]` glob -> glob over value keys after the prefix (`v:{<name>}:…`)."""
        name, _, rest = pattern.partition(":")
        if not rest:
            rest = "*"
        elif not rest.endswith("*"):
            rest = f"{rest}:*"
        return f"v:{{{name}}}:{rest}"

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

    def spec(self, name: str, row: object | None, params: Mapping[str, Any] | None) -> KeySpec:
        entry = REGISTRY[name]
        if (entry.row_table is None) != (row is None):
            raise ValueError(f"{name}: row is {'required' if entry.row_table else 'not allowed'}")
        gen_keys = [self.gen_key(name)] + ([self.gen_key(name, row)] if row is not None else [])
        return KeySpec(entry, row, self.params_part(entry, params), gen_keys)

    @staticmethod
    def parts(spec: KeySpec) -> tuple[str, str]:
        """The value key around its generations: (`v:{<name>}:<row>:`, `:<params>`)."""
        row = "-" if spec.row is None else spec.row
        return f"v:{{{spec.entry.name}}}:{row}:", f":{spec.params}"

    def value_key(self, spec: KeySpec, gens: Iterable[int | str]) -> str:
        """Key relative to the backend's prefix (Flask-Caching adds `prefix:`)."""
        head, tail = self.parts(spec)
        return head + ".".join(str(n) for n in gens) + tail
