"""The sales overview endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from commissary.core.deps import SessionDep
from commissary.core.ids import MAX_ID
from commissary.orders import report
from commissary.stats import service
from commissary.stats.schemas import OverviewRead
from commissary.users.dependencies import CurrentUser

router = APIRouter(prefix="/stats", tags=["stats"])


def _day(name: str) -> object:
    return Query(
        alias=name,
        description=f"The {'first' if name == 'from' else 'last'} day counted, `YYYY-MM-DD`, "
        "in the time zone the days are read in.",
        examples=["2026-12-01"],
        json_schema_extra={"format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    )


@router.get(
    "/overview",
    response_model=OverviewRead,
    responses={
        400: {
            "description": "`from` or `to` is not a `YYYY-MM-DD` day, `from` is after `to`, "
            "the range is over 366 days, or `restaurant_id` names no restaurant; "
            "`parameter` names the one to change."
        },
        403: {"description": "Not admin, sales or a restaurateur, or not your restaurant."},
        409: {"description": "The sales are in several currencies: ask for one `restaurant_id`."},
    },
)
async def read_overview(
    user: CurrentUser,
    session: SessionDep,
    from_: Annotated[str | None, _day("from")] = None,
    to: Annotated[str | None, _day("to")] = None,
    restaurant_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this restaurant's orders.")
    ] = None,
) -> object:
    """The sales dashboard's figures over whole days (default: the last 30): orders placed by
    their status now, orders and revenue per day, the 10 most sold products, and each
    restaurant's orders and revenue. Cancelled orders bring no revenue. Admin and sales see
    every restaurant, a restaurateur their own. Days are read in the restaurant's time zone
    (UTC across restaurants of several)."""
    return await service.overview(
        session,
        user,
        report.parse_date("from", from_),
        report.parse_date("to", to),
        restaurant_id,
    )
