from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class QueueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    backend: Literal["rq", "inline"] = Field(
        description="`rq`: an RQ queue served by `commissary worker`; `inline`: jobs run in "
        "this api process (no `REDIS_URL`), and the figures are this process's."
    )
    depth: int = Field(description="Jobs waiting to start.")
    running: int
    scheduled: int = Field(description="Jobs due later (delays, retries).")
    failed: int = Field(description="Failed jobs kept for a requeue.")
    workers: int


class FailedJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="What `POST /ops/queues/failed/{job_id}/requeue` takes.")
    queue: str
    name: str | None = Field(description="The job's name, e.g. `orders.process`.")
    source: Literal["rq", "outbox"] = Field(
        description="`rq`: its retries ran out; `outbox`: the outbox relay gave it up."
    )
    failed_at: dt.datetime | None
    error: str | None = Field(description="The last line of the error, when RQ kept it.")


class QueuesRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    queues: list[QueueRead]
    outbox_backlog: int = Field(description="Jobs recorded in the outbox and not done yet.")
    outbox_given_up: int
    failed: list[FailedJobRead] = Field(description="The newest 100 failed jobs, newest first.")


class RequeuedRead(BaseModel):
    job_id: str
    source: Literal["rq", "outbox"]


class AuditLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_id: int | None
    action: str
    entity: str
    entity_id: str | None
    data: dict[str, Any] | None
    at: dt.datetime
