"""Administration: account tiers and admin rights."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.accounts import service as users_service
from app.accounts.deps import AdminUser
from app.accounts.schemas import AdminUserUpdate, UserRead
from app.api.deps import SessionDep
from app.api.schemas import error_responses

router = APIRouter(prefix="/admin", tags=["admin"])


@router.patch(
    "/users/{user_id}",
    summary="Change a user's tier or admin flag",
    description="Administrators only. Omitted fields are left unchanged; the change "
    "applies to the user's next request (tiers are never read from tokens). "
    "Demoting the last administrator (yourself included) is refused with 409.",
    status_code=status.HTTP_200_OK,
    response_model=UserRead,
    responses=error_responses(400, 401, 403, 404, 409, 429),
)
async def update_user(
    user_id: uuid.UUID, body: AdminUserUpdate, session: SessionDep, _: AdminUser
) -> UserRead:
    user = await users_service.update_account(
        session, user_id=user_id, tier=body.tier, is_admin=body.is_admin
    )
    return UserRead.model_validate(user)
