"""Request and response bodies of the catalog."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from commissary.catalog import images
from commissary.catalog.hours import is_valid_timezone
from commissary.catalog.repository import MAX_POSITION
from commissary.core.ids import Id
from commissary.core.money import MAX_PRICE, MoneyOut
from commissary.core.schemas import Input, Lax, NotNull
from commissary.core.text import Tags, free_text
from commissary.models import KitchenMode

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
OPENING_HOURS_HELP = (
    "Weekly hours in the restaurant's `timezone`: an object keyed by weekday (`mon` .. `sun`), "
    'each a list of up to 6 ranges `{"open": "HH:MM", "close": "HH:MM"}`. A range is open from '
    "`open` up to `close`; a `close` at or before `open` runs past midnight into the next day "
    "(fri 22:00-02:00 is open on saturday at 01:00). A weekday left out is closed. "
    "**An empty object (the default) means always open.**"
)


def _known_timezone(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError("not a known IANA time zone, e.g. 'Europe/Paris' or 'UTC'")
    return value


def _line(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Name = Annotated[str, _line(120), AfterValidator(free_text)]
CategoryName = Annotated[str, _line(80), AfterValidator(free_text)]
Origin = Annotated[str, _line(80), AfterValidator(free_text)]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(free_text)]
Address = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=300), AfterValidator(free_text)
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=40), AfterValidator(free_text)
]
Slug = Annotated[str, StringConstraints(max_length=80, pattern=SLUG_PATTERN)]
Timezone = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(
        description="An IANA time zone name; opening hours are read in it.",
        examples=["Europe/Paris", "America/New_York", "UTC"],
        json_schema_extra={"pattern": r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*$"},
    ),
    AfterValidator(_known_timezone),
]
OwnerIds = Annotated[
    list[Id],
    Field(max_length=50, description="Users with the role `restaurateur`; admins only."),
    AfterValidator(lambda ids: list(dict.fromkeys(ids))),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]

Price = Annotated[
    MoneyOut,
    Field(
        gt=0,
        le=MAX_PRICE,
        decimal_places=2,
        description='Exact, at most 2 decimals; answered as a string such as "12.50".',
    ),
    Lax,  # a JSON number or a decimal string
]
HourMinute = Annotated[str, StringConstraints(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$")]
Mode = Annotated[KitchenMode, Lax]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class TimeRange(Input):
    open: HourMinute
    close: HourMinute

    @field_validator("close")
    @classmethod
    def _not_empty(cls, close: str, info: ValidationInfo) -> str:
        if info.data.get("open") == close:
            raise ValueError("must differ from `open` (a `close` before `open` crosses midnight)")
        return close


OpeningHours = Annotated[
    dict[Weekday, Annotated[list[TimeRange], Field(max_length=6)]],
    Field(description=OPENING_HOURS_HELP),
]


class TimeRangeRead(BaseModel):
    open: str
    close: str


PAUSE_HELP = (
    "False pauses the restaurant: it stays listed but new orders are refused "
    "(409 `restaurant_paused`)."
)


class RestaurantRead(BaseModel):
    id: int
    name: str
    slug: str
    description: str
    address: str
    phone: str
    timezone: str
    opening_hours: Annotated[dict[str, list[TimeRangeRead]], Field(description=OPENING_HOURS_HELP)]
    kitchen_mode: KitchenMode
    is_active: bool
    is_accepting_orders: bool
    owner_ids: list[int]
    is_open_now: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class _RestaurantFields(Input):
    name: Name
    description: Description = ""
    address: Address = ""
    phone: Phone = ""
    timezone: Timezone = "UTC"
    opening_hours: OpeningHours = {}
    kitchen_mode: Mode = KitchenMode.SIMULATED
    is_active: bool = True
    is_accepting_orders: Annotated[bool, Field(description=PAUSE_HELP)] = True


class RestaurantCreate(_RestaurantFields):
    slug: Annotated[Slug | None, Field(description="Derived from `name` when omitted.")] = None
    owner_ids: OwnerIds = []


class RestaurantReplace(_RestaurantFields):
    slug: Slug
    owner_ids: Annotated[OwnerIds | None, Field(description="NotNull: unchanged.")] = None


class RestaurantUpdate(Input):
    name: Annotated[Name | None, NotNull] = None
    slug: Annotated[Slug | None, NotNull] = None
    description: Annotated[Description | None, NotNull] = None
    address: Annotated[Address | None, NotNull] = None
    phone: Annotated[Phone | None, NotNull] = None
    timezone: Annotated[Timezone | None, NotNull] = None
    opening_hours: Annotated[OpeningHours | None, NotNull] = None
    kitchen_mode: Annotated[KitchenMode | None, Lax, NotNull] = None
    is_active: Annotated[bool | None, NotNull] = None
    is_accepting_orders: Annotated[bool | None, NotNull, Field(description=PAUSE_HELP)] = None
    owner_ids: Annotated[OwnerIds | None, NotNull] = None


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    position: int
    created_at: dt.datetime
    updated_at: dt.datetime


class CategoryCreate(Input):
    name: CategoryName
    description: Description = ""
    position: Position = 0


class CategoryUpdate(Input):
    name: Annotated[CategoryName | None, NotNull] = None
    description: Annotated[Description | None, NotNull] = None
    position: Annotated[Position | None, NotNull] = None


MAX_CHOICES = 20
OptionName = Annotated[str, _line(80), AfterValidator(free_text)]
Choices = Annotated[int, Field(ge=0, le=MAX_CHOICES)]
PriceDelta = Annotated[
    MoneyOut,
    Field(
        ge=0,
        le=MAX_PRICE,
        decimal_places=2,
        description='Added to the product\'s price; exact, at most 2 decimals, e.g. "0.50".',
    ),
    Lax,
]


class OptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_id: int
    name: str
    price_delta: MoneyOut
    ingredients: list[str]
    allergens: list[str]
    is_available: bool
    position: int


class OptionCreate(Input):
    name: OptionName
    price_delta: PriceDelta = Decimal(0)
    ingredients: Tags = []
    allergens: Tags = []
    is_available: bool = True
    position: Position = 0


class OptionUpdate(Input):
    name: Annotated[OptionName | None, NotNull] = None
    price_delta: Annotated[PriceDelta | None, NotNull] = None
    ingredients: Annotated[Tags | None, NotNull] = None
    allergens: Annotated[Tags | None, NotNull] = None
    is_available: Annotated[bool | None, NotNull] = None
    position: Annotated[Position | None, NotNull] = None


class OptionGroupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    product_id: int
    name: str
    min_choices: int
    max_choices: int
    position: int
    options: list[OptionRead]


class OptionGroupCreate(Input):
    """A choice offered with the product: between `min_choices` and `max_choices` of its
    options (a required single choice such as a size is 1/1; optional extras 0/3)."""

    name: OptionName
    min_choices: Choices = 0
    max_choices: Annotated[int, Field(ge=1, le=MAX_CHOICES)] = 1
    position: Position = 0
    options: Annotated[list[OptionCreate], Field(max_length=MAX_CHOICES * 2)] = []

    @model_validator(mode="after")
    def _min_within_max(self) -> OptionGroupCreate:
        if self.min_choices > self.max_choices:
            raise ValueError("`min_choices` must not exceed `max_choices`")
        return self


class OptionGroupUpdate(Input):
    name: Annotated[OptionName | None, NotNull] = None
    min_choices: Annotated[Choices | None, NotNull] = None
    max_choices: Annotated[Annotated[int, Field(ge=1, le=MAX_CHOICES)] | None, NotNull] = None
    position: Annotated[Position | None, NotNull] = None


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    restaurant_id: int
    category_id: int | None
    name: str
    description: str
    price: MoneyOut
    currency: str
    ingredients: list[str]
    allergens: list[str]
    origin: str | None
    is_available: bool
    rating: float | None = Field(
        description="The average score of the product's ratings (1-10, one decimal); null "
        "before its first rating."
    )
    ratings_count: int
    image_url: Annotated[
        str | None,
        Field(
            validation_alias="image",
            description="Where the product's image is served (`/media/...`); null: none.",
        ),
    ] = None
    created_at: dt.datetime
    updated_at: dt.datetime
    option_groups: list[OptionGroupRead]

    @field_validator("image_url", mode="before")
    @classmethod
    def _image_url(cls, name: str | None) -> str | None:
        return images.url(name) if name else None


class ProductCreate(Input):
    restaurant_id: Id
    category_id: Id | None = None
    name: Name
    description: Description = ""
    price: Price
    currency: Currency = "EUR"
    ingredients: Tags = []
    allergens: Tags = []
    origin: Annotated[Origin | None, Field(description="The meal's origin planet.")] = None
    is_available: bool = True


class ProductUpdate(Input):
    restaurant_id: Annotated[Id | None, NotNull] = None
    category_id: Id | None = None
    name: Annotated[Name | None, NotNull] = None
    description: Annotated[Description | None, NotNull] = None
    price: Annotated[Price | None, NotNull] = None
    currency: Annotated[Currency | None, NotNull] = None
    ingredients: Annotated[Tags | None, NotNull] = None
    allergens: Annotated[Tags | None, NotNull] = None
    origin: Origin | None = None
    is_available: Annotated[bool | None, NotNull] = None


Comment = Annotated[str, StringConstraints(max_length=2000), AfterValidator(free_text)]


class RatingIn(Input):
    score: Annotated[int, Field(ge=1, le=10, description="From 1 (worst) to 10 (best).")]
    comment: Comment = ""


class RatingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    product_id: int
    score: int
    comment: str
    author: str = Field(description="The first name of the customer who rated.")
    created_at: dt.datetime
    updated_at: dt.datetime


class WaiterRead(BaseModel):
    """A waiter of a restaurant, as its owners see them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    is_active: bool
