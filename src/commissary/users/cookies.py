"""The refresh token in a cookie, for browser clients, and the checks that keep another
site from using it (CSRF).

The cookie is ``HttpOnly`` (page scripts never read it), ``Secure``, ``SameSite=Strict`` and
``__Host-`` prefixed (set by this host only, for every path, never for a parent domain). A
browser attaches it by itself, so the two routes that read it also demand what a form or
link from another site cannot produce:

- the ``X-Requested-With`` header: a cross-origin request with a custom header needs a CORS
  preflight, which only the ``CORS_ORIGINS`` pass;
- an ``Origin`` among ``CORS_ORIGINS`` or ``PUBLIC_URL``'s own, or, without ``Origin``, a
  ``Sec-Fetch-Site`` that is not ``cross-site``.

A token sent in the body carries no ambient authority and needs none of this.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

from commissary.config import Settings
from commissary.core.errors import Forbidden

COOKIE_NAME = "__Host-commissary_refresh"
CSRF_HEADER = "X-Requested-With"
SAME_SITE_FETCHES = frozenset({"same-origin", "same-site", "none"})


class CrossSiteRefused(Forbidden):
    code = "csrf_refused"


def set_refresh_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=settings.refresh_token_ttl,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_refresh_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", secure=True, httponly=True, samesite="strict")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings) -> frozenset[str]:
    return frozenset(_origin(o) for o in [*settings.cors_origins, settings.public_url])


def check_same_site(request: Request, settings: Settings) -> None:
    """Refuse a cookie-authenticated request that another site could have made (403)."""
    headers = request.headers
    if not headers.get(CSRF_HEADER, "").strip():
        raise CrossSiteRefused(
            f"a request that uses the refresh cookie needs a {CSRF_HEADER} header"
        )
    origin = headers.get("origin")
    if origin is not None:
        if origin.lower() not in allowed_origins(settings):
            raise CrossSiteRefused(
                f"requests from the origin '{origin}' may not use the refresh cookie"
            )
        return
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCHES:
        raise CrossSiteRefused("a cross-site request may not use the refresh cookie")
