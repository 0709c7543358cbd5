"""`python -m app.cli users ...`: account management against Settings' database."""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.output import error_line

if TYPE_CHECKING:  # the heavy imports happen inside the command (`--help` is fast)
    from app.core.config import Settings

app = typer.Typer(no_args_is_help=True)


class TierChoice(enum.StrEnum):
    """The choices of ``--tier``: app.core.security.Tier's values (a unit test keeps
    them equal), repeated so that ``--help`` need not import the security stack."""

    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


def _fail(message: str) -> typer.Exit:
    typer.echo(error_line(message), err=True)
    return typer.Exit(code=1)


async def _create(
    settings: Settings, *, username: str, password: str, tier: str, admin: bool
) -> str:
    from app.accounts import service as users_service  # noqa: PLC0415
    from app.core.security import Tier  # noqa: PLC0415
    from app.db.session import create_engine, create_sessionmaker  # noqa: PLC0415

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await users_service.create_user(
                session,
                username=username,
                password=password,
                tier=Tier(tier),
                is_admin=admin,
            )
            return str(user.id)
    finally:
        await engine.dispose()


@app.command("create")
def create(
    username: Annotated[str, typer.Option(help="3–64 of [A-Za-z0-9_.-]")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="8–256 characters")
    ],
    tier: Annotated[TierChoice, typer.Option(case_sensitive=False)] = TierChoice.FREE,
    admin: Annotated[bool, typer.Option("--admin", help="Grant admin rights")] = False,
    exist_ok: Annotated[
        bool,
        typer.Option("--exist-ok", help="Succeed (unchanged) if the user exists."),
    ] = False,
) -> None:
    """Create a user (creating or migrating the database schema first)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from app.accounts.schemas import RegisterRequest  # noqa: PLC0415
    from app.core.config import get_settings  # noqa: PLC0415
    from app.core.errors import AppError  # noqa: PLC0415
    from app.core.logging import configure_logging  # noqa: PLC0415
    from app.db.migrate import upgrade_to_head  # noqa: PLC0415

    try:
        RegisterRequest(username=username, password=password)
    except ValidationError as exc:  # the API's messages for POST /v1/auth/register
        for error in exc.errors():
            field = ".".join(map(str, error["loc"]))
            typer.echo(error_line(error["msg"], field=field), err=True)
        raise typer.Exit(code=1) from None
    settings = get_settings()
    configure_logging(settings)
    try:
        upgrade_to_head(settings.resolved_database_url)
        user_id = asyncio.run(
            _create(
                settings,
                username=username,
                password=password,
                tier=tier.value,
                admin=admin,
            )
        )
    except AppError as exc:
        if exist_ok and exc.status_code == 409:
            typer.echo(f"user {username!r} already exists (unchanged)")
            return
        raise _fail(exc.message) from None
    except (OSError, ConnectionError) as exc:
        raise _fail(f"cannot reach the database: {exc}") from None
    role = "admin" if admin else "user"
    typer.echo(f"created {role} {username!r} (tier {tier.value}, id {user_id})")
