"""Paging headers every list route shares: ``X-Total-Count`` and an RFC 8288
``Link`` header with the neighbouring pages (same query, other offset)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request, Response

# The largest ``offset`` a list route accepts.
MAX_OFFSET = 10_000_000


def set_page_headers(
    request: Request, response: Response, *, total: int, limit: int, offset: int
) -> None:
    response.headers["X-Total-Count"] = str(total)
    if link := page_links(request, total=total, limit=limit, offset=offset):
        response.headers["Link"] = link


def page_links(request: Request, *, total: int, limit: int, offset: int) -> str:
    params = dict(request.query_params)
    base = str(request.url.remove_query_params(list(params)))
    links = []
    if offset + limit < total:
        links.append((offset + limit, "next"))
    if offset > 0:
        links.append((max(offset - limit, 0), "prev"))
    parts = []
    for new_offset, rel in links:
        query = urlencode({**params, "limit": limit, "offset": new_offset})
        parts.append(f'<{base}?{query}>; rel="{rel}"')
    return ", ".join(parts)
