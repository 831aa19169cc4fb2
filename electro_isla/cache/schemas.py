"""Schemas of the cache admin endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

# Names, rows and glob characters only: nothing that could reach outside the prefix.
PATTERN = validate.Regexp(r"^[A-Za-z0-9_:*?\[\]\-.]+$", error="Not a cache key glob.")


class CacheFamilySchema(Schema):
    hits = fields.Integer(required=True)
    misses = fields.Integer(required=True)
    fetches = fields.Integer(required=True)
    invalidations = fields.Integer(required=True)


class CacheStatsSchema(Schema):
    backend = fields.String(required=True)
    hits = fields.Integer(required=True)
    misses = fields.Integer(required=True)
    fetches = fields.Integer(required=True)
    invalidations = fields.Integer(required=True)
    errors = fields.Integer(required=True)
    hit_ratio = fields.Float(required=True)
    last_updated = fields.String(allow_none=True, required=True)
    families = fields.Dict(
        keys=fields.String(), values=fields.Nested(CacheFamilySchema), required=True
    )
    ttl = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    circuit_open = fields.Boolean()
    pending_invalidations = fields.Integer()


class CacheClearArgsSchema(Schema):
    pattern = fields.String(
        validate=[validate.Length(min=1, max=200), PATTERN],
        metadata={"description": "Glob over `<name>[:<row>]`, e.g. `producto`, `estadisticas_*`"},
    )


class CacheClearSchema(Schema):
    deleted = fields.Integer(required=True)
