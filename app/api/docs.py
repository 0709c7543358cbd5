"""The interactive API docs (/docs: Swagger UI, /redoc: ReDoc), served offline.

FastAPI's built-in pages load their JavaScript and CSS from a CDN at an unpinned major
version, so with no outside network /docs is blank and the code a browser runs changes
whenever the CDN's "latest" does. Here the same pages (FastAPI's own HTML generators)
point at bundles vendored under ``app/web/vendor/`` by ``scripts/vendor_docs.sh``
(pinned versions, checksums in each folder's ``SHA256SUMS``), served from ``/static``.
The OpenAPI document is untouched: these routes are not part of it.

Use: ``FastAPI(docs_url=None, redoc_url=None)`` then ``install(app)``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
VENDOR_URL = "/static/vendor"
SWAGGER_JS_URL = f"{VENDOR_URL}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS_URL = f"{VENDOR_URL}/swagger-ui/swagger-ui.css"
REDOC_JS_URL = f"{VENDOR_URL}/redoc/redoc.standalone.js"
FAVICON_URL = "/static/favicon.svg"


def router(app: FastAPI) -> APIRouter:
    """The doc routes for ``app`` (its title, its OpenAPI URL); not in the schema."""
    docs = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"

    @docs.get(DOCS_URL)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=SWAGGER_JS_URL,
            swagger_css_url=SWAGGER_CSS_URL,
            swagger_favicon_url=FAVICON_URL,
        )

    @docs.get(OAUTH2_REDIRECT_URL)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @docs.get(REDOC_URL)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=REDOC_JS_URL,
            redoc_favicon_url=FAVICON_URL,
            with_google_fonts=False,
        )

    return docs


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc from the vendored bundles (``app`` must have been built
    with ``docs_url=None, redoc_url=None``; ``/static`` is mounted by the app)."""
    app.include_router(router(app))
