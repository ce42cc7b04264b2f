from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

from commissary.core.schemas import Input
from commissary.core.text import Tags, plain_text
from commissary.models import Role

COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwerty123",
        "qwertyuiop",
        "iloveyou1",
        "letmein123",
        "welcome123",
        "admin1234",
        "abc12345",
        "passw0rd",
    }
)


def _strong_password(value: str) -> str:
    if value.lower() in COMMON_PASSWORDS:
        raise ValueError("this password is too common")
    if not any(c.isalpha() for c in value) or all(c.isalpha() for c in value):
        raise ValueError("use letters and at least one digit or symbol")
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Email = Annotated[EmailStr, BeforeValidator(_lower), Field(max_length=254)]
NewPassword = Annotated[str, Field(min_length=8, max_length=128), AfterValidator(_strong_password)]
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    AfterValidator(plain_text),
]
Planet = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(plain_text),
]
Allergies = Tags


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    role: Role
    is_verified: bool
    planet: str | None
    allergies: list[str]
    created_at: dt.datetime


class UserAdminRead(UserRead):
    is_active: bool
    verified_at: dt.datetime | None
    updated_at: dt.datetime


class RegisterIn(Input):
    email: Email
    password: NewPassword
    full_name: FullName
    planet: Planet | None = None
    allergies: Allergies = []


class VerifyIn(Input):
    email: Email | None = None
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None

    @model_validator(mode="after")
    def _code_or_token(self) -> VerifyIn:
        if self.token is None and (self.email is None or self.code is None):
            raise ValueError("give either `email` and `code`, or `token`")
        return self


class EmailIn(Input):
    email: Email


class LoginIn(Input):
    email: Annotated[
        str,
        BeforeValidator(_lower),
        Field(min_length=1, max_length=254),
        AfterValidator(plain_text),
    ]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class RefreshIn(Input):
    refresh_token: Annotated[str, Field(min_length=1, max_length=2048)]


class MeUpdate(Input):
    full_name: FullName | None = None
    planet: Planet | None = None
    allergies: Allergies | None = None
    current_password: Annotated[str, Field(max_length=128)] | None = None
    new_password: NewPassword | None = None

    @model_validator(mode="after")
    def _password_change(self) -> MeUpdate:
        if self.new_password is not None and not self.current_password:
            raise ValueError("`current_password` is required to set `new_password`")
        return self


class UserCreate(Input):
    email: Email
    password: NewPassword
    full_name: FullName
    role: Role = Role.CUSTOMER
    planet: Planet | None = None
    allergies: Allergies = []
    is_active: bool = True


class UserReplace(Input):
    email: Email
    full_name: FullName
    role: Role
    planet: Planet | None = None
    allergies: Allergies = []
    is_active: bool = True
    is_verified: bool = True
    password: NewPassword | None = None


class UserUpdate(Input):
    email: Email | None = None
    full_name: FullName | None = None
    role: Role | None = None
    planet: Planet | None = None
    allergies: Allergies | None = None
    is_active: bool | None = None
    is_verified: bool | None = None
    password: NewPassword | None = None
