"""/dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
Selenium) against a real uvicorn, on both modes: the page signs in with a sales account,
draws the charts from the overview, shows the technical status, and a new order placed
through the API appears in the live orders without a reload."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from commissary.models import Role
from tests.conftest import Backend, MakeUser
from tests.menu import make_menu
from tests.test_sales_report import sold

WAIT = 30  # seconds the page may take to show something (a hang guard, not a timing)
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER):
    reason = "Debian's chromium and chromium-driver are missing: ./scripts/bootstrap --servers"
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must run the browser tests: {reason}")
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only once Chromium is known to be there
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.test_support_ws import uvicorn_server  # noqa: E402


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a free loopback port; yields its base URL."""
    async with uvicorn_server(app) as url:
        yield url.replace("ws://", "http://")


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


async def in_browser(call: Callable[[], Any]) -> Any:
    """Selenium blocks: it runs in a thread while this loop serves the page's requests."""
    return await asyncio.to_thread(call)


def until(driver: webdriver.Chrome, script: str, *args: Any) -> Any:
    """Wait until ``script`` returns something truthy; that value."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: d.execute_script(script, *args), message=script
    )


CHART_DRAWN = """
const canvas = document.getElementById(arguments[0]);
const chart = window.Chart && Chart.getChart(canvas);
if (!chart || !chart.data.labels.length) return null;
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) return chart.data.labels;
return null;
"""


async def test_the_dashboard_signs_in_draws_charts_and_follows_orders_live(
    backend: Backend, make_user: MakeUser
) -> None:
    menu = await make_menu(backend)
    sales = await make_user(Role.SALES, full_name="Nova Prime")
    customer = await make_user()
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await sold(backend, menu.restaurant, yesterday, ("Solar Soup", "7.50", 3))
    await sold(backend, menu.restaurant, yesterday, ("Comet Cake", "4.00", 1))
    async with served(backend.app) as base, httpx.AsyncClient(base_url=base) as http:
        with chromium() as driver:
            await in_browser(lambda: driver.get(f"{base}/dashboard"))
            await in_browser(
                lambda: until(driver, "return !document.getElementById('sign-in-panel').hidden")
            )

            def sign_in() -> None:
                driver.find_element(By.ID, "email").send_keys(sales.user.email)
                driver.find_element(By.ID, "password").send_keys(sales.password)
                driver.find_element(By.ID, "sign-in").submit()

            await in_browser(sign_in)
            await in_browser(
                lambda: until(driver, "return !document.getElementById('board').hidden")
            )
            days = await in_browser(lambda: until(driver, CHART_DRAWN, "revenue-chart"))
            assert len(days) == 30
            products = await in_browser(lambda: until(driver, CHART_DRAWN, "products-chart"))
            assert products == ["Solar Soup", "Comet Cake"]
            revenue = await in_browser(lambda: driver.find_element(By.ID, "total-revenue").text)
            assert revenue == "26.50 EUR"
            health = await in_browser(
                lambda: until(driver, "return document.getElementById('health').textContent")
            )
            assert "database" in health
            assert await in_browser(lambda: driver.find_element(By.ID, "who").text) == (
                "Nova Prime (sales)"
            )
            await in_browser(
                lambda: until(
                    driver, "return document.getElementById('live-state').textContent === 'live'"
                )
            )
            await in_browser(lambda: driver.execute_script("window.notReloaded = true"))

            placed = await http.post(
                "/api/v1/orders",
                headers=customer.headers,
                json={"items": [{"product_id": menu.soup.id, "quantity": 2}]},
            )
            assert placed.status_code == 202, placed.text
            order_id = placed.json()["id"]
            await backend.run_jobs()  # the sequencer numbers the event (a worker on RQ)
            row = await in_browser(
                lambda: until(
                    driver,
                    "const row = document.querySelector(`tr[data-order-id='${arguments[0]}']`);"
                    "return row && row.textContent;",
                    order_id,
                )
            )
            assert f"#{order_id}" in row
            assert "Cosmic Cafeteria" in row
            assert await in_browser(lambda: driver.execute_script("return window.notReloaded"))
