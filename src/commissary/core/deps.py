"""Request-scoped dependencies shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from commissary.core.db import commit, rollback
from commissary.core.errors import DomainError
from commissary.core.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: a plain ``def`` dependency costs a thread-pool hop per request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work. Scoped to the endpoint function, so it commits (and sends
    its after-commit effects) before the response goes out, and rolls back on any error."""
    async with runtime.sessionmaker() as session:
        try:
            yield session
        except DomainError as exc:
            if exc.keep_changes:
                await commit(session)
            else:
                await rollback(session)
            raise
        except BaseException:
            await rollback(session)
            raise
        else:
            await commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
