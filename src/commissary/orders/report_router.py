"""The sales report endpoint, in JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from commissary.core.deps import SessionDep
from commissary.core.ids import MAX_ID
from commissary.orders import report
from commissary.orders.schemas import SalesReportRead
from commissary.users.dependencies import CurrentUser

router = APIRouter(prefix="/orders", tags=["orders"])

CSV_HEADER = ("product_name", "total_quantity", "total_price")
DateParam = Annotated[
    str | None,
    Query(
        description="An inclusive day, `YYYY-MM-DD`, in the restaurant's time zone.",
        examples=["2026-12-01"],
        json_schema_extra={"format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    ),
]


def _cell(value: str) -> str:
    """A spreadsheet runs a cell that starts like a formula: such a name is quoted as text."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(sales: report.SalesReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for item in sales.items:
        writer.writerow((_cell(item.product_name), item.total_quantity, f"{item.total_price:.2f}"))
    return out.getvalue()


@router.get(
    "/report",
    response_model=SalesReportRead,
    responses={
        400: {
            "description": "A date is not a `YYYY-MM-DD` day, the start is after the end, the "
            "range is over 366 days, or `restaurant_id` names no restaurant; `parameter` names "
            "the one to change."
        },
        409: {"description": "The sales are in several currencies: ask for one `restaurant_id`."},
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "The report; `Accept: text/csv` gives CSV with a header row.",
        },
    },
)
async def sales_report(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    start_date: DateParam = None,
    end_date: DateParam = None,
    restaurant_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this restaurant's sales.")
    ] = None,
) -> object:
    """What sold, by product, most sold first: units and money over whole days (default:
    the last 30). The same name, whatever its case or spacing, is one product. Cancelled
    orders do not count. Admin and sales see every restaurant, a restaurateur their own, a
    waiter the orders they keyed in. Days are read in the restaurant's time zone (UTC when
    the report spans restaurants of several)."""
    sales = await report.sales_report(
        session,
        user,
        report.parse_date("start_date", start_date),
        report.parse_date("end_date", end_date),
        restaurant_id,
    )
    if "text/csv" in request.headers.get("accept", ""):
        name = f"sales-{sales.start_date}-{sales.end_date}.csv"
        return Response(
            to_csv(sales),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return SalesReportRead.model_validate(
        {**sales.__dict__, "total_quantity": sales.total_quantity, "total_price": sales.total_price}
    )
