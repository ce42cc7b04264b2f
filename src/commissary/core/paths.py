"""Where the API lives: one prefix for every versioned route, and the base of the absolute
links it answers with."""

from starlette.requests import HTTPConnection

API_PREFIX = "/api/v1"

# Base URLs by scheme, Host header, root path and server address: parsing them costs more
# than the rest of a link. Bounded, since the Host header is the client's to choose.
_BASES: dict[tuple[object, ...], str] = {}
_MAX_BASES = 256


def base_url(connection: HTTPConnection) -> str:
    """``connection.base_url`` without its trailing slash (``https://host/root``)."""
    scope = connection.scope
    host = next((value for key, value in scope["headers"] if key == b"host"), b"")
    # Without a Host header, the address the request came in on names the server.
    key = (scope.get("scheme", "http"), host, scope.get("root_path", ""), scope.get("server"))
    base = _BASES.get(key)
    if base is None:
        if len(_BASES) >= _MAX_BASES:
            _BASES.clear()
        base = _BASES[key] = str(connection.base_url).rstrip("/")
    return base
