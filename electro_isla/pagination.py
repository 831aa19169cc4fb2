"""DRF-style page-number pagination: {count, next, previous, results}."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, pre_load, validate
from sqlalchemy import Select, func, select

from electro_isla.extensions import db

MAX_PAGE_SIZE = 100


class QueryArgsSchema(Schema):
    """A list's query string: `?x=` means x not given, and each parameter comes once.

    Empty values are what a search form sends for inputs left blank (the document
    says `allowEmptyValue`); a repeated parameter (`?page=1&page=2`) is a 422, not
    a silent pick of one of them.
    """

    @pre_load
    def one_value_each_and_drop_empty(self, data: Any, **_: Any) -> dict[str, Any]:
        given = getattr(data, "data", data)  # webargs' proxy over the MultiDict
        getlist = getattr(given, "getlist", None)
        repeated = {
            name: ["Give this parameter once."]
            for name in self.fields
            if getlist is not None and len(getlist(name)) > 1
        }
        if repeated:
            raise ValidationError(repeated)
        return {k: data.get(k) for k in data if data.get(k) not in ("", None)}


class PaginationArgsSchema(QueryArgsSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The envelope schema of a paginated list of `item_schema`."""
    name = item_schema.__name__.removesuffix("Schema")
    return Schema.from_dict(
        {
            "count": fields.Integer(required=True),
            "next": fields.String(allow_none=True),
            "previous": fields.String(allow_none=True),
            "results": fields.List(fields.Nested(item_schema), required=True),
        },
        name=f"{name}PageSchema",
    )


def paginate(stmt: Select, page: int, page_size: int) -> tuple[int, list[Any]]:
    """Count and fetch one page of `stmt` (two queries whatever the table size)."""
    count = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = db.session.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).all()
    return count or 0, list(rows)


def with_links(count: int, results: list[Any], page: int, page_size: int) -> dict[str, Any]:
    """Add next/previous URLs built from this request (never cached: host-specific).

    A page past the last is DRF's 404 "Invalid page." (the request is valid
    by the schema: only the data says the page is not there); page 1 of an
    empty list is an empty page, as in DRF.
    """

    def url_for_page(n: int) -> str:
        args = request.args.to_dict()
        args["page"] = str(n)
        args.setdefault("page_size", str(page_size))
        query = urlencode(sorted(args.items()))
        return f"{request.base_url}?{query}"

    last_page = max(1, -(-count // page_size))
    if page > last_page:
        abort(404, message="Invalid page.")
    return {
        "count": count,
        "next": url_for_page(page + 1) if page < last_page else None,
        "previous": url_for_page(min(page - 1, last_page)) if page > 1 else None,
        "results": results,
    }
