"""Share links: ``POST|DELETE /v1/backtest/{id}/share`` (owner), the public JSON
``GET /v1/public/{token}`` and the page ``/s/{token}`` (anyone with the link, rate
limited per client IP, ``noindex``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import HTMLResponse

from app.accounts.deps import CurrentUser
from app.api.deps import LimiterDep, SessionDep, SettingsDep
from app.api.schemas import error_responses
from app.core.rate_limit import STATE_KEY as RATE_LIMIT_STATE
from app.core.rate_limit import client_ip, count_rejection
from app.shares import page, service
from app.shares.schemas import PublicResult, ShareCreated

KIND = "backtest"
router = APIRouter(tags=["shares"])
page_router = APIRouter()
PUBLIC_HEADERS = {
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",  # a revoked link must stop working at once
    "Referrer-Policy": "no-referrer",
}


async def limit_public_ip(
    request: Request, limiter: LimiterDep, settings: SettingsDep
) -> None:
    """``SHARE_RATE_LIMIT`` per client address; fails open."""
    if not limiter.enabled:
        return
    peer = request.client.host if request.client else None
    address = client_ip(
        peer, request.headers.get("x-forwarded-for"), limiter.trusted_proxies
    )
    rule = settings.share_rate_limit
    decision = await limiter.hit_or_fail_open(rule, "public", address)
    if decision is None:
        return
    setattr(request.state, RATE_LIMIT_STATE, decision)
    if not decision.allowed:
        count_rejection("anonymous")
        raise decision.error(
            f"Too many requests from this address; retry in {decision.retry_after()} s."
        )


PublicIpLimit = Depends(limit_public_ip)


@router.post(
    "/backtest/{task_id}/share",
    summary="Create a public link to a completed backtest",
    description="Returns `{token, url}` (the page `/s/{token}`; JSON at "
    "`GET /v1/public/{token}`). Anyone with the link sees the configuration, metrics "
    "and charts, never the owner or the backtest id. A new link replaces the "
    "previous one. 409 unless completed.",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareCreated,
    responses=error_responses(401, 404, 409),
)
async def share_backtest(
    task_id: str, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> ShareCreated:
    return await service.share(
        session, user=user, task_id=task_id, kind=KIND, settings=settings
    )


@router.delete(
    "/backtest/{task_id}/share",
    summary="Revoke the public link",
    description="The link answers 404 from now on. Idempotent.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def revoke_share(
    task_id: str, session: SessionDep, user: CurrentUser
) -> Response:
    await service.revoke(session, user=user, task_id=task_id, kind=KIND)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/public/{token}",
    summary="A shared result (no authentication)",
    response_model=PublicResult,
    responses=error_responses(404, 429),
    dependencies=[PublicIpLimit],
)
async def public_result(
    token: str, session: SessionDep, response: Response
) -> PublicResult:
    response.headers.update(PUBLIC_HEADERS)
    return await service.public(session, token=token)


@page_router.get("/s/{token}", include_in_schema=False, dependencies=[PublicIpLimit])
async def public_page(token: str, session: SessionDep) -> HTMLResponse:
    result = await service.public(session, token=token)
    return HTMLResponse(page.render(result), headers=PUBLIC_HEADERS)
