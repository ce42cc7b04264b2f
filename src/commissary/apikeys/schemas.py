from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from commissary.apikeys.scopes import KeyScope
from commissary.core.schemas import Input, Lax
from commissary.core.text import free_text

KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(free_text),
]


def _unique(scopes: list[KeyScope]) -> list[KeyScope]:
    return list(dict.fromkeys(scopes))


class ApiKeyCreate(Input):
    name: KeyName = Field(description="What the key is for, to tell keys apart.")
    scopes: Annotated[
        list[Annotated[KeyScope, Lax]],
        Field(min_length=1, max_length=len(KeyScope)),
        AfterValidator(_unique),
    ] = Field(description="What the key may reach; at least one.")
    rate_limit_per_minute: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Requests per minute; default `API_KEY_RATE_LIMIT_PER_MINUTE`, at most "
        "`API_KEY_MAX_RATE_LIMIT_PER_MINUTE`.",
    )
    daily_quota: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Requests per UTC day; default `API_KEY_DAILY_QUOTA`, at most "
        "`API_KEY_MAX_DAILY_QUOTA`.",
    )


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="The start of the key, to recognise it; never the secret.")
    scopes: list[KeyScope]
    rate_limit_per_minute: int
    daily_quota: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None = Field(
        description="Up to `API_KEY_USAGE_FLUSH_INTERVAL` seconds behind."
    )
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(
        description="The key itself, for `X-API-Key`. Shown this once: only its hash is kept."
    )


class ApiKeyUsageRead(BaseModel):
    day: dt.date = Field(description="Today, in UTC: the day the quota counts.")
    today: int = Field(description="Requests counted against today's quota.")
    refused_today: int = Field(description="Requests refused today with a 429.")
    total: int = Field(description="Requests counted since the key was created.")
    quota_remaining: int = Field(description="What is left of today's quota.")


class ApiKeyDetail(ApiKeyRead):
    usage: ApiKeyUsageRead
