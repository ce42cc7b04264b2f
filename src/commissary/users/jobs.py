"""Worker entry points of the users package: thin, taking ids."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core import jobs
from commissary.users import auth_service, service


@jobs.job("users.send_verification")
async def send_verification(session: AsyncSession, user_id: int) -> None:
    await auth_service.send_verification(session, user_id)


@jobs.job("users.purge_unverified")
async def purge_unverified(session: AsyncSession) -> None:
    await service.purge_unverified_batch(session)
