"""Database engine, session factory, declarative base and the unit of work.

One transaction per request or job: the boundary (a request dependency or the job runner)
calls :func:`commit`, services only flush. Effects registered with :func:`after_commit`
run once the transaction is durable and are dropped on rollback.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    ORMExecuteState,
    Session,
    SessionTransaction,
    mapped_column,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from commissary.config import Settings

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


IdPk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
# The ``__table_args__`` of every table with an ``IdPk``: SQLite otherwise hands the id of
# a deleted row to the next insert (PostgreSQL's identity never does), and a stale
# reference (a token, a link, a log line) would then name someone else.
NEVER_REUSE_IDS: dict[str, Any] = {"sqlite_autoincrement": True}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, hide_parameters=True
        )
        _serialise_sqlite_writers(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection found dead (a PostgreSQL
    # restart) fails its request with a 503 and invalidates the pool, so the next requests
    # connect afresh. Waiting for a pooled connection is bounded (`DB_POOL_TIMEOUT`) and
    # answered with a 503 too: overload sheds load instead of queueing clients for 30 s.
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        hide_parameters=True,  # row values (hashes, e-mails) never reach an error log
    )


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    """SQLite: WAL, foreign keys, and `BEGIN IMMEDIATE` so concurrent writers queue instead of
    failing with "database is locked" when a read lock is upgraded."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """SQLite's lower() folds ASCII only; case-insensitive filters and the unique folded
    category name must match "Ø" too. Migrations register it as well, so an index on
    lower() is built with the function that later reads and writes it."""
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    # SQLite has no time zone database: ``local_date(at, zone)`` (see ``stats.repository``)
    # reads a stored UTC instant's day in ``zone`` through Python's.
    dbapi_connection.create_function("commissary_local_date", 2, _local_date, deterministic=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _local_date(value: object, zone: object) -> str | None:
    if not isinstance(value, str) or not isinstance(zone, str):
        return None
    at = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return at.astimezone(ZoneInfo(zone)).date().isoformat()


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any]
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


_DRIVER = "statement_driver_connection"


class _StatementSyncSession(Session):
    """The synchronous side of a :class:`StatementSession` (see its events below)."""


@event.listens_for(_StatementSyncSession, "do_orm_execute")
def _before_session_statement(state: ORMExecuteState) -> None:
    _release_lean(state.session)


@event.listens_for(_StatementSyncSession, "before_flush")
def _before_session_flush(session: Session, _context: Any, _instances: Any) -> None:
    _release_lean(session)


def _release_lean(session: Session) -> None:
    """The session is about to take a connection of its own: give the lean one back first,
    so a request never holds two (with a small pool, it would wait for itself)."""
    lean: PoolProxiedConnection | None = session.info.pop(_DRIVER, None)
    if lean is not None:
        lean.close()  # in the greenlet the session runs in


class StatementSession(AsyncSession):
    """The session of a use case whose only write is ONE statement, on PostgreSQL.

    Its statements run in autocommit, each its own transaction, so the request saves the
    BEGIN and COMMIT round trips. Until the session needs a connection of its own, a
    :class:`DriverStatement` runs on one taken straight from the engine's pool
    (:meth:`lean_connection`): the session's connection, transaction and commit, through
    SQLAlchemy's greenlet bridge, cost an order placement more CPU than its statements.
    When the session does connect (an ORM read on a rarer path: a drink's options, a
    waiter's walk-in), the lean connection goes back first, and the statements after that
    run on the session's: one connection at a time. Every statement is its own transaction
    either way. The lean connection also goes back when the session commits, rolls back or
    closes."""

    sync_session_class = _StatementSyncSession

    async def lean_connection(self) -> PoolProxiedConnection:
        lean: PoolProxiedConnection | None = self.info.get(_DRIVER)
        if lean is None:
            assert isinstance(self.bind, AsyncEngine), "a statement session binds an engine"
            lean = self.info[_DRIVER] = await self.bind.raw_connection()
        return lean

    async def release_lean(self, error: BaseException | None = None) -> None:
        """Give the lean connection back; after ``error`` on a closed connection, throw it
        away so the pool connects afresh (a PostgreSQL restart)."""
        lean: PoolProxiedConnection | None = self.info.pop(_DRIVER, None)
        if lean is None:
            return
        if error is not None:
            await greenlet_spawn(lean.invalidate, error)
        await greenlet_spawn(lean.close)

    def _has_work(self) -> bool:
        return self.in_transaction() or bool(self.new or self.dirty or self.deleted)

    async def commit(self) -> None:
        await self.release_lean()
        if self._has_work():
            await super().commit()

    async def rollback(self) -> None:
        await self.release_lean()
        if self._has_work():
            await super().rollback()

    def _untouched(self) -> bool:
        """No lean connection, no transaction, no objects: closing does no I/O."""
        sync = self.sync_session
        return (
            _DRIVER not in self.info
            and not sync.in_transaction()
            and not sync.identity_map
            and not sync.new
        )

    async def close(self) -> None:
        await self.release_lean()
        if self._untouched():
            self.sync_session.close()
        else:
            await super().close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        # The usual exit closes in a shielded task, so that a cancelled request still gives
        # its connection back: a placement has already given it back when it commits.
        if self._untouched():
            self.sync_session.close()
        else:
            await super().__aexit__(type_, value, traceback)


def create_statement_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any]
) -> async_sessionmaker[AsyncSession]:
    """Sessions for a use case whose only write is ONE statement (placing an order): on
    PostgreSQL a :class:`StatementSession` in autocommit. SQLite writes in several
    statements and keeps real transactions."""
    if engine.dialect.name == "postgresql":
        return async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"),
            class_=StatementSession,
            expire_on_commit=False,
            autoflush=False,
            info=info,
        )
    return create_sessionmaker(engine, info)


Effect = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, effect: Effect) -> None:
    """Run ``effect`` once the session's transaction has committed; drop it on rollback.
    An effect registered again in the same transaction still runs once."""
    effects: list[Effect] = session.info.setdefault("after_commit", [])
    if effect not in effects:
        effects.append(effect)


async def commit(session: AsyncSession) -> None:
    """Commit the unit of work, then run its buffered effects. An effect that fails is
    logged: the data is already durable and the outbox relay retries what was missed."""
    await session.commit()
    effects: list[Effect] = session.info.pop("after_commit", [])
    for effect in effects:
        try:
            await effect()
        except Exception:
            log.exception("after_commit_effect_failed", effect=getattr(effect, "__qualname__", "?"))


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    session.info["wrote"] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["wrote"] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop("wrote", None)


def only_read(session: AsyncSession) -> bool:
    """Whether the unit of work has written nothing yet (flushed or pending)."""
    return not (session.new or session.dirty or session.deleted or session.info.get("wrote"))


async def release(session: AsyncSession) -> None:
    """End a read-only stretch of the unit of work before slow work (password hashing), so
    no pooled connection or SQLite write lock is held meanwhile. Loaded objects expire:
    read what is needed first. Nothing buffered is lost; nothing had been written."""
    if not only_read(session):
        raise RuntimeError("release() would drop changes")
    await session.rollback()


async def rollback(session: AsyncSession) -> None:
    session.info.pop("after_commit", None)
    await session.rollback()


Processor = Callable[[Any], Any] | None


class DriverStatement:
    """A Core statement run on PostgreSQL through asyncpg's own API, on the session's
    connection: compiled once, its parameters converted by the columns' own bind processors,
    and none of SQLAlchemy's per-execution work (cache key, execution context, result
    objects), which costs several times the round trip on a hot path.

    The session's transaction, connection and pool are SQLAlchemy's as usual, and errors are
    raised as SQLAlchemy's (``DBAPIError``; a connection found closed is invalidated, so the
    pool reconnects). Rows come back as named tuples of the selected columns, with the
    driver's values: use it for columns asyncpg returns as the application wants them
    (numbers, text, booleans, JSON decoded by the dialect's codec, aware datetimes); an
    Enum column comes back as its string value. Other engines run the statement through the
    session (see :meth:`fetch`)."""

    def __init__(self, statement: Any, *, writes: bool = False) -> None:
        self.statement = statement
        self.writes = writes
        self.row = collections.namedtuple(  # type: ignore[misc]
            "DriverRow", list(statement.selected_columns.keys()), rename=True
        )
        self._compiled: tuple[Dialect, str, list[tuple[str, Processor]]] | None = None

    def _compile(self, dialect: Dialect) -> tuple[str, list[tuple[str, Processor]]]:
        if self._compiled is None or self._compiled[0] is not dialect:
            compiled = self.statement.compile(dialect=dialect)
            plan = [
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in compiled.positiontup or ()
            ]
            self._compiled = (dialect, compiled.string, plan)
        return self._compiled[1], self._compiled[2]

    async def fetch(self, session: AsyncSession, params: dict[str, Any]) -> list[Any]:
        """The statement's rows; on engines other than PostgreSQL, through the session."""
        bind = session.get_bind()
        if self.writes:
            session.info["wrote"] = True  # as ``only_read`` expects of any write
        if bind.dialect.name != "postgresql":
            result = await session.execute(self.statement, params)
            return [self.row(*row) for row in result]
        sql, plan = self._compile(bind.dialect)
        args = [params[name] if fn is None else fn(params[name]) for name, fn in plan]
        invalidate: Callable[[BaseException], Awaitable[None]]
        if isinstance(session, StatementSession) and not session.in_transaction():
            driver: Any = (await session.lean_connection()).driver_connection
            invalidate = session.release_lean
        else:
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            invalidate = connection.invalidate
        try:
            records = await driver.fetch(sql, *args)
        except Exception as exc:
            invalidated = bool(driver.is_closed())
            if invalidated:
                await invalidate(exc)  # the pool connects afresh (a PostgreSQL restart)
            raise sa_exc.DBAPIError(
                sql, None, exc, hide_parameters=True, connection_invalidated=invalidated
            ) from exc
        return [self.row(*record) for record in records]
