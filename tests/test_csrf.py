"""The refresh token in an HttpOnly cookie for browsers, and the checks that stop another
site from using it (CSRF): a custom header, and an allowed Origin or Sec-Fetch-Site."""

from __future__ import annotations

import httpx
import pytest

from commissary.users.cookies import COOKIE_NAME
from tests.conftest import PASSWORD, Account, Backend, MakeUser

AUTH = "/api/v1/auth"
SAME_SITE = {"X-Requested-With": "fetch", "Origin": "http://127.0.0.1:8000"}


@pytest.fixture
async def hero(make_user: MakeUser) -> Account:
    return await make_user()


def refresh_cookie(response: httpx.Response) -> str:
    """The refresh token that ``response`` sets, after checking the cookie's attributes."""
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME)]
    value, *attributes = (part.strip() for part in header.split(";"))
    flags = {a.split("=")[0].lower(): a.partition("=")[2] for a in attributes}
    assert flags.keys() >= {"httponly", "secure", "samesite", "path", "max-age"}, header
    assert flags["samesite"].lower() == "strict" and flags["path"] == "/"
    assert "domain" not in flags  # a __Host- cookie belongs to this host only
    return value.partition("=")[2]


async def cookie_login(client: httpx.AsyncClient, hero: Account) -> tuple[str, httpx.Response]:
    response = await client.post(
        f"{AUTH}/login",
        json={"email": hero.user.email, "password": PASSWORD, "refresh_cookie": True},
    )
    assert response.status_code == 200, response.text
    return refresh_cookie(response), response


def with_cookie(token: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={token}", **headers}


async def test_a_cookie_login_keeps_the_refresh_token_out_of_the_body(
    client: httpx.AsyncClient, hero: Account, backend: Backend
) -> None:
    token, response = await cookie_login(client, hero)
    body = response.json()
    assert body["refresh_token"] is None and body["access_token"]
    assert f"max-age={backend.settings.refresh_token_ttl}" in response.headers["set-cookie"].lower()
    assert response.headers["cache-control"] == "no-store"

    # A login without it is as before: the token in the body, no cookie.
    plain = await client.post(
        f"{AUTH}/login", json={"email": hero.user.email, "password": PASSWORD}
    )
    assert plain.json()["refresh_token"] and "set-cookie" not in plain.headers
    assert token != plain.json()["refresh_token"]


async def test_the_cookie_refreshes_from_our_own_site_and_rotates(
    client: httpx.AsyncClient, hero: Account
) -> None:
    token, _ = await cookie_login(client, hero)

    refreshed = await client.post(f"{AUTH}/refresh", headers=with_cookie(token, **SAME_SITE))

    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] is None
    newer = refresh_cookie(refreshed)
    assert newer != token
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    )
    assert me.json()["id"] == hero.user.id
    # Same-origin fetches without Origin (a GET-less POST from a page of ours) are fine too.
    same_origin = {"X-Requested-With": "fetch", "Sec-Fetch-Site": "same-origin"}
    again = await client.post(f"{AUTH}/refresh", headers=with_cookie(newer, **same_origin))
    assert again.status_code == 200, again.text
    # The spent cookie presented again: reuse is detected as with a body token.
    reused = await client.post(f"{AUTH}/refresh", headers=with_cookie(token, **SAME_SITE))
    assert reused.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no custom header (a form post)"),
        pytest.param({"Origin": "http://127.0.0.1:8000"}, id="allowed origin, no header"),
        pytest.param({"X-Requested-With": "x", "Origin": "https://evil.example"}, id="origin"),
        pytest.param({"X-Requested-With": "x", "Origin": "null"}, id="sandboxed origin"),
        pytest.param({"X-Requested-With": "x", "Sec-Fetch-Site": "cross-site"}, id="cross-site"),
    ],
)
async def test_a_cross_site_request_cannot_use_the_cookie(
    client: httpx.AsyncClient, hero: Account, headers: dict[str, str]
) -> None:
    token, _ = await cookie_login(client, hero)
    for route in ("refresh", "logout"):
        refused = await client.post(f"{AUTH}/{route}", headers=with_cookie(token, **headers))
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "csrf_refused"
        assert "set-cookie" not in refused.headers
    # Nothing was spent or revoked: our own page still refreshes with it.
    ok = await client.post(f"{AUTH}/refresh", headers=with_cookie(token, **SAME_SITE))
    assert ok.status_code == 200, ok.text


async def test_cookie_logout_revokes_and_clears_the_cookie(
    client: httpx.AsyncClient, hero: Account
) -> None:
    token, _ = await cookie_login(client, hero)
    out = await client.post(f"{AUTH}/logout", headers=with_cookie(token, **SAME_SITE))
    assert out.status_code == 204, out.text
    cleared = out.headers["set-cookie"]
    assert cleared.startswith(f'{COOKIE_NAME}=""') or cleared.startswith(f"{COOKIE_NAME}=;")
    assert "max-age=0" in cleared.lower()
    after = await client.post(f"{AUTH}/refresh", headers=with_cookie(token, **SAME_SITE))
    assert after.status_code == 401


async def test_refresh_without_body_or_cookie_is_401_and_a_body_token_needs_no_header(
    client: httpx.AsyncClient, hero: Account
) -> None:
    missing = await client.post(f"{AUTH}/refresh", headers=SAME_SITE)
    assert missing.status_code == 401
    assert "refresh cookie" in missing.json()["detail"]
    pair = (
        await client.post(f"{AUTH}/login", json={"email": hero.user.email, "password": PASSWORD})
    ).json()
    # A token in the body is no ambient credential: no header or origin is asked for.
    body = await client.post(
        f"{AUTH}/refresh",
        json={"refresh_token": pair["refresh_token"]},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert body.status_code == 200 and body.json()["refresh_token"]
