"""The base of the absolute links the API answers with (``Location``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from commissary.core import paths


def _connection(scheme: str, host: bytes | None, root_path: str = "") -> HTTPConnection:
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": scheme,
        "server": ("10.0.0.5", 8000),
        "root_path": root_path,
        "path": f"{root_path}/api/v1/orders",
        "query_string": b"",
        "headers": [] if host is None else [(b"host", host)],
    }
    return HTTPConnection(scope)


def test_the_base_follows_the_scheme_the_host_and_the_root_path_of_each_request() -> None:
    cases = [
        (("http", b"shop.example"), "http://shop.example"),
        (("https", b"shop.example"), "https://shop.example"),
        (("https", b"other.example:8443"), "https://other.example:8443"),
        (("https", b"shop.example", "/commissary"), "https://shop.example/commissary"),
        (("http", None), "http://10.0.0.5:8000"),
    ]
    for _ in range(2):  # the second time from what the first one remembered
        for args, expected in cases:
            connection = _connection(*args)
            assert paths.base_url(connection) == expected
            assert paths.base_url(connection) == str(connection.base_url).rstrip("/")


def test_the_remembered_bases_are_bounded_whatever_hosts_clients_send() -> None:
    for n in range(3 * paths._MAX_BASES):
        assert paths.base_url(_connection("http", f"h{n}.example".encode())) == (
            f"http://h{n}.example"
        )
    assert len(paths._BASES) <= paths._MAX_BASES
