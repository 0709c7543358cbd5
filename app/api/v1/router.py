"""Everything under ``/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.v1.endpoints import admin, auth, backtest, catalog, progress

api_router = APIRouter(prefix="/v1")
api_router.include_router(auth.router)
api_router.include_router(admin.router)
api_router.include_router(backtest.router)
api_router.include_router(progress.router)
api_router.include_router(catalog.router)
