"""/dashboard without a browser: the page and its modules are served under a CSP that allows
no inline code and no other origin, the page has no inline script and the modules never
parse data as HTML, and Chart.js comes from node_modules (only its `dist` folder)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx

from commissary.dashboard import router as dashboard
from tests.conftest import Backend


class Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str | None] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.sources.append(found.get("src"))
            self._in_script = True
        self.inline += [name for name in found if name.startswith("on")]  # onclick=…

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


async def test_the_page_and_its_modules_are_served_without_inline_code(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    scripts = Scripts()
    scripts.feed(page.text)
    assert scripts.inline == []
    assert scripts.sources == [
        "/dashboard/vendor/chart.js/chart.umd.min.js",
        "/dashboard/static/dashboard.js",
    ]
    for module in ("dashboard.js", "api.js", "live.js"):
        answer = await client.get(f"/dashboard/static/{module}")
        assert answer.status_code == 200
        assert "javascript" in answer.headers["content-type"]
        assert "innerHTML" not in answer.text and "insertAdjacentHTML" not in answer.text


async def test_chart_js_comes_from_node_modules_and_nothing_else_of_it(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    installed = dashboard.node_modules(backend.settings) / "chart.js" / "dist"
    assert installed.is_dir(), "./scripts/bootstrap runs `npm ci`"
    library = await client.get("/dashboard/vendor/chart.js/chart.umd.min.js")
    assert library.status_code == 200
    assert library.content == (installed / "chart.umd.min.js").read_bytes()
    assert (await client.get("/dashboard/vendor/chart.js/../package.json")).status_code == 404
    assert (await client.get("/dashboard/vendor/@kurkle/color/package.json")).status_code == 404


def test_the_lock_pins_the_chart_library() -> None:
    root = Path(__file__).resolve().parents[1]
    lock = (root / "package-lock.json").read_text()
    assert '"node_modules/chart.js"' in lock and '"integrity": "sha512-' in lock
