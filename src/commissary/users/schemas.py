from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from commissary.core.ids import Id
from commissary.core.listing import Page
from commissary.core.schemas import Input, Lax, NotNull
from commissary.core.text import Tags, free_text, plain_text
from commissary.models import Role
from commissary.users.rules import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PASSWORD_RULES,
    check_email,
    check_password,
    fold_email,
)


def _fold(value: object) -> object:
    return fold_email(value) if isinstance(value, str) else value


Email = Annotated[
    str,
    Field(
        max_length=254,
        json_schema_extra={"format": "email"},
        description="compared case-insensitively; letters that mix alphabets are refused",
    ),
    AfterValidator(check_email),
]
NewPassword = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description=f"A new password: {PASSWORD_RULES}.",
        json_schema_extra={"pattern": r"^[^\x00]*$"},
    ),
    AfterValidator(check_password),
]
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    AfterValidator(free_text),
]
Planet = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(free_text),
]
Allergies = Tags
Code = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Token = Annotated[str, Field(min_length=1, max_length=2048)]


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
    referral_code: str = Field(
        description="This member's own code: whoever registers with it is their referral."
    )


RestaurantIds = Annotated[
    list[Id],
    Field(
        max_length=50,
        description="The restaurants a waiter serves in, or a developer integrates (only for "
        "`role: waiter` and `role: developer`).",
    ),
    AfterValidator(lambda ids: list(dict.fromkeys(ids))),
]


class UserAdminRead(UserRead):
    restaurant_ids: list[int] = Field(
        description="The restaurants a waiter serves in or a developer integrates; empty for "
        "other roles."
    )
    is_active: bool
    verified_at: dt.datetime | None
    updated_at: dt.datetime


ReferralCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="The referral code of the member who invited you (case-insensitive).",
        json_schema_extra={"pattern": r"^[^\x00]*$"},
    ),
]


class RegisterIn(Input):
    email: Email
    password: NewPassword
    full_name: FullName
    planet: Planet | None = None
    allergies: Allergies = []
    referral_code: ReferralCode | None = None


class ReferralRead(BaseModel):
    """A member I referred: no e-mail, no id, only what tells them apart."""

    full_name: str
    joined_at: dt.datetime
    converted_at: dt.datetime | None = Field(
        description="When they completed a first order; null until then."
    )


class ReferralPage(Page[ReferralRead]):
    converted: int = Field(description="How many of all the members I referred converted.")


class VerifyIn(Input):
    """Either the 6-digit ``code`` mailed to ``email``, or the ``token`` of the mailed link."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["email", "code"]}, {"required": ["token"]}]}
    )

    email: Annotated[Email | None, NotNull] = None
    code: Annotated[Code | None, NotNull] = None
    token: Annotated[Token | None, NotNull] = None

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
        BeforeValidator(_fold),
        Field(min_length=1, max_length=254),
        AfterValidator(plain_text),
    ]
    password: Annotated[str, Field(min_length=1, max_length=128)]
    refresh_cookie: Annotated[
        bool,
        Field(
            description="Browsers: send the refresh token in an HttpOnly cookie "
            "(`__Host-commissary_refresh`) instead of the body."
        ),
    ] = False


class TokenPair(BaseModel):
    access_token: str
    refresh_token: Annotated[
        str | None, Field(description="Null when it travels in the refresh cookie instead.")
    ]
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class RefreshIn(Input):
    refresh_token: Annotated[str, Field(min_length=1, max_length=2048)]


class MeUpdate(Input):
    full_name: Annotated[FullName | None, NotNull] = None
    planet: Planet | None = None
    allergies: Annotated[Allergies | None, NotNull] = None
    current_password: Annotated[str, Field(max_length=128)] | None = None
    new_password: NewPassword | None = None

    @model_validator(mode="after")
    def _password_change(self) -> MeUpdate:
        if self.new_password is not None and not self.current_password:
            raise ValueError("`current_password` is required to set `new_password`")
        return self


class UserCreate(Input):
    """A new account. ``name`` is accepted for ``full_name``. A restaurateur creates only
    waiters (``role: waiter``) with ``restaurant_ids`` of restaurants they own."""

    email: Email
    password: NewPassword
    full_name: Annotated[
        FullName,
        Field(
            validation_alias=AliasChoices("full_name", "name"),
            description="The person's name; `name` is accepted as an alias.",
        ),
    ]
    role: Annotated[Role, Lax] = Role.CUSTOMER
    planet: Planet | None = None
    allergies: Allergies = []
    is_active: bool = True
    restaurant_ids: RestaurantIds | None = None


class UserReplace(Input):
    email: Email
    full_name: FullName
    role: Annotated[Role, Lax]
    planet: Planet | None = None
    allergies: Allergies = []
    is_active: bool = True
    is_verified: bool = True
    password: NewPassword | None = None
    restaurant_ids: RestaurantIds = []


class UserUpdate(Input):
    email: Annotated[Email | None, NotNull] = None
    full_name: Annotated[FullName | None, NotNull] = None
    role: Annotated[Role | None, Lax, NotNull] = None
    planet: Planet | None = None
    allergies: Annotated[Allergies | None, NotNull] = None
    is_active: Annotated[bool | None, NotNull] = None
    is_verified: Annotated[bool | None, NotNull] = None
    password: Annotated[NewPassword | None, NotNull] = None
    restaurant_ids: Annotated[RestaurantIds | None, NotNull] = None
