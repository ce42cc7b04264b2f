"""Request-scoped dependencies shared by every router."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commissary.core.db import commit, rollback
from commissary.core.errors import DomainError
from commissary.core.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: a plain ``def`` dependency costs a thread-pool hop per request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@contextlib.asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits (then runs its after-commit effects) when the block ends, and
    rolls back on an error; a ``DomainError`` that keeps its changes commits them first."""
    async with sessionmaker() as session:
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


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work. Scoped to the endpoint function, so it commits (and sends
    its after-commit effects) before the response goes out, and rolls back on any error."""
    async with unit_of_work(runtime.sessionmaker) as session:
        yield session


async def get_statement_session(
    request: Request, runtime: RuntimeDep
) -> AsyncIterator[AsyncSession]:
    """The unit of work of a request whose only write is one statement (see
    ``db.create_statement_sessionmaker``): its after-commit effects run as usual. With an
    ``Idempotency-Key`` the request also claims the key and stores its answer with the work
    (see ``core.idempotency``), so it gets a real transaction."""
    keyed = "idempotency-key" in request.headers
    sessionmaker = runtime.sessionmaker if keyed else runtime.statement_sessionmaker
    async with unit_of_work(sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
StatementSessionDep = Annotated[AsyncSession, Depends(get_statement_session, scope="function")]


async def client_address(request: Request) -> str:
    """The address that per-client limits count against: the peer of the connection, or the
    address a trusted proxy (FORWARDED_ALLOW_IPS, applied by the server before the app) says
    it saw. An IPv6 client holds a whole /64, so the /64 is what counts."""
    host = request.client.host if request.client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


ClientAddress = Annotated[str, Depends(client_address)]
