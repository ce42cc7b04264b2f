"""``/dashboard``: the page, its own static files, and the chart library from
``node_modules`` (installed by ``scripts/bootstrap`` with ``npm ci``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from commissary.config import Settings

STATIC = Path(__file__).parent / "static"
PAGE = STATIC / "index.html"
PATH = "/dashboard"
# The checkout's node_modules: src/commissary/dashboard/router.py -> the repository's root.
CHECKOUT_MODULES = Path(__file__).resolve().parents[3] / "node_modules"

router = APIRouter(include_in_schema=False)


@router.api_route(PATH, methods=["GET", "HEAD"])
async def dashboard_page() -> FileResponse:
    """The dashboard page; it signs in through `/api/v1/auth` and reads the API."""
    return FileResponse(PAGE, media_type="text/html; charset=utf-8")


def node_modules(settings: Settings) -> Path:
    return settings.dashboard_node_modules or CHECKOUT_MODULES


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the page, its scripts and styles, and Chart.js's browser build (only its
    ``dist`` folder: nothing else of ``node_modules`` is reachable)."""
    app.include_router(router)
    app.mount(f"{PATH}/static", StaticFiles(directory=STATIC), name="dashboard-static")
    chart = node_modules(settings) / "chart.js" / "dist"
    app.mount(
        f"{PATH}/vendor/chart.js",
        StaticFiles(directory=chart, check_dir=False),
        name="dashboard-chart-js",
    )
