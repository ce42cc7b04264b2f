"""The support chat over REST: who sees what, the conversation's life (open, take, reply,
close), message history with `after_id`, stored text without HTML, limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from commissary.models import Role
from tests.conftest import Account, Backend, MakeUser

BASE = "/api/v1/support/conversations"


async def open_conversation(
    client: httpx.AsyncClient, account: Account, subject: str = "Cold soup", message: str = "Hi"
) -> dict[str, Any]:
    response = await client.post(
        BASE, json={"subject": subject, "message": message}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def send(
    client: httpx.AsyncClient, account: Account, conversation_id: int, body: str
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{conversation_id}/messages", json={"body": body}, headers=account.headers
    )


async def messages(
    client: httpx.AsyncClient, account: Account, conversation_id: int, **params: Any
) -> httpx.Response:
    return await client.get(
        f"{BASE}/{conversation_id}/messages", params=params, headers=account.headers
    )


async def test_customer_opens_support_takes_replies_and_either_side_closes(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    conversation = await open_conversation(client, customer, "Missing fork", "No fork in my bag")
    assert conversation["status"] == "open"
    assert conversation["customer_id"] == customer.user.id
    assert conversation["assignee_id"] is None
    assert conversation["message_count"] == 1

    queue = await client.get(
        BASE, params={"status": "open", "assignee_id__isnull": "true"}, headers=agent.headers
    )
    assert queue.status_code == 200, queue.text
    assert [c["id"] for c in queue.json()["items"]] == [conversation["id"]]

    taken = await client.post(f"{BASE}/{conversation['id']}/take", headers=agent.headers)
    assert taken.status_code == 200, taken.text
    assert taken.json()["assignee_id"] == agent.user.id
    reply = await send(client, agent, conversation["id"], "Sorry! A fork is on its way.")
    assert reply.status_code == 201, reply.text
    assert reply.json()["seq"] == 2

    history = await messages(client, customer, conversation["id"])
    assert [(m["author_id"], m["seq"]) for m in history.json()["items"]] == [
        (customer.user.id, 1),
        (agent.user.id, 2),
    ]

    closed = await client.post(f"{BASE}/{conversation['id']}/close", headers=customer.headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_by_id"] == customer.user.id
    again = await client.post(f"{BASE}/{conversation['id']}/close", headers=agent.headers)
    assert again.status_code == 200
    assert again.json()["closed_by_id"] == customer.user.id


async def test_a_message_in_a_closed_conversation_is_a_409_and_not_stored(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer, agent = await make_user(), await make_user(Role.SUPPORT)
    conversation = await open_conversation(client, customer)
    await client.post(f"{BASE}/{conversation['id']}/close", headers=agent.headers)

    for account in (customer, agent):
        response = await send(client, account, conversation["id"], "hello?")
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "conversation_closed"
    take = await client.post(f"{BASE}/{conversation['id']}/take", headers=agent.headers)
    assert take.status_code == 409
    assert (await messages(client, customer, conversation["id"])).json()["total"] == 1


async def test_customers_see_only_their_own_conversations(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    alice, bob = await make_user(), await make_user()
    mine = await open_conversation(client, alice, "Alice's")
    await open_conversation(client, bob, "Bob's")
    cid = mine["id"]

    listed = await client.get(BASE, headers=bob.headers)
    assert [c["subject"] for c in listed.json()["items"]] == ["Bob's"]
    for response in (
        await client.get(f"{BASE}/{cid}", headers=bob.headers),
        await messages(client, bob, cid),
        await send(client, bob, cid, "let me in"),
        await client.post(f"{BASE}/{cid}/close", headers=bob.headers),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "conversation_not_found"
    forbidden = await client.post(f"{BASE}/{cid}/take", headers=alice.headers)
    assert forbidden.status_code == 403
    assert (await client.get(f"{BASE}/{cid}", headers=alice.headers)).json()["status"] == "open"


async def test_staff_see_every_conversation(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice, bob = await make_user(), await make_user()
    await open_conversation(client, alice, "Alice's")
    await open_conversation(client, bob, "Bob's")
    for role in (Role.SUPPORT, Role.ADMIN):
        staff = await make_user(role)
        listed = await client.get(BASE, params={"sort": "id"}, headers=staff.headers)
        assert [c["subject"] for c in listed.json()["items"]] == ["Alice's", "Bob's"]
    for role in (Role.SALES, Role.WAITER):
        other = await make_user(role)
        assert (await client.get(BASE, headers=other.headers)).json()["total"] == 0


async def test_routes_need_a_signed_in_member(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", BASE),
        ("POST", BASE),
        ("GET", f"{BASE}/1"),
        ("GET", f"{BASE}/1/messages"),
        ("POST", f"{BASE}/1/messages"),
        ("POST", f"{BASE}/1/take"),
        ("POST", f"{BASE}/1/close"),
        ("POST", "/api/v1/ws-tickets"),
    ):
        response = await client.request(method, path, json={"subject": "x", "message": "y"})
        assert response.status_code == 401, (method, path, response.text)


async def test_a_conversation_taken_by_another_support_member_is_a_409(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer = await make_user()
    first, second = await make_user(Role.SUPPORT), await make_user(Role.SUPPORT)
    admin = await make_user(Role.ADMIN)
    cid = (await open_conversation(client, customer))["id"]
    reply = await send(client, first, cid, "On it")  # the first reply takes it
    assert reply.status_code == 201
    assert (await client.get(f"{BASE}/{cid}", headers=customer.headers)).json()[
        "assignee_id"
    ] == first.user.id

    for response in (
        await client.post(f"{BASE}/{cid}/take", headers=second.headers),
        await send(client, second, cid, "Me too"),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "conversation_taken"
    over = await client.post(f"{BASE}/{cid}/take", headers=admin.headers)
    assert over.status_code == 200
    assert over.json()["assignee_id"] == admin.user.id


async def test_html_is_removed_from_stored_text(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer = await make_user()
    conversation = await open_conversation(
        client, customer, "<b>Help</b>", "<script>alert(1)</script>Hi <i>there</i> & 1 < 2"
    )
    assert conversation["subject"] == "Help"
    sent = await send(client, customer, conversation["id"], "&lt;img src=x onerror=1&gt;ok")
    assert sent.json()["body"] == "ok"
    stored = [
        m["body"] for m in (await messages(client, customer, conversation["id"])).json()["items"]
    ]
    assert stored == ["Hi there & 1 < 2", "ok"]

    only_html = await send(client, customer, conversation["id"], "<script>x</script>")
    assert only_html.status_code == 422, only_html.text
    assert only_html.json()["errors"][0]["field"] == "body"


async def test_message_length_is_limited(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    customer = await make_user()
    cid = (await open_conversation(client, customer))["id"]
    assert (await send(client, customer, cid, "x" * 4000)).status_code == 201
    too_long = await send(client, customer, cid, "x" * 4001)
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "body"
    for body in ("", "   ", "a\x00b"):
        assert (await send(client, customer, cid, body)).status_code == 422, body
    assert (await messages(client, customer, cid)).json()["total"] == 2


async def test_messages_are_rate_limited_per_member(
    client: httpx.AsyncClient,
    backend: Backend,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = backend.settings.model_copy(update={"support_message_rate_limit": 3})
    monkeypatch.setattr(backend.runtime, "settings", settings)
    customer, other = await make_user(), await make_user()
    cid = (await open_conversation(client, customer))["id"]  # the first of three
    assert (await send(client, customer, cid, "two")).status_code == 201
    assert (await send(client, customer, cid, "three")).status_code == 201
    limited = await send(client, customer, cid, "four")
    assert limited.status_code == 429, limited.text
    assert limited.json()["code"] == "message_rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    assert (await messages(client, customer, cid)).json()["total"] == 3
    assert (await open_conversation(client, other))["message_count"] == 1  # others still can


async def test_history_pages_after_an_id(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    customer = await make_user()
    cid = (await open_conversation(client, customer, message="m1"))["id"]
    for n in range(2, 7):
        assert (await send(client, customer, cid, f"m{n}")).status_code == 201
    ids = [m["id"] for m in (await messages(client, customer, cid)).json()["items"]]

    after = await messages(client, customer, cid, after_id=ids[2], limit=2)
    assert after.status_code == 200, after.text
    assert [m["body"] for m in after.json()["items"]] == ["m4", "m5"]
    assert after.json()["total"] == 3
    rest = await messages(client, customer, cid, after_id=ids[2], limit=2, offset=2)
    assert [m["body"] for m in rest.json()["items"]] == ["m6"]
    newest = await messages(client, customer, cid, sort="-id", limit=1, search="M6")
    assert [m["body"] for m in newest.json()["items"]] == ["m6"]


async def test_list_parameters_are_whitelisted(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    customer = await make_user()
    cid = (await open_conversation(client, customer, "Late order"))["id"]
    found = await client.get(BASE, params={"search": "late"}, headers=customer.headers)
    assert [c["id"] for c in found.json()["items"]] == [cid]
    for path, params in (
        (BASE, {"customer": "1"}),
        (BASE, {"sort": "subject"}),
        (BASE, {"status": "lost"}),
        (f"{BASE}/{cid}/messages", {"body": "x"}),
        (f"{BASE}/{cid}/messages", {"sort": "seq"}),
    ):
        response = await client.get(path, params=params, headers=customer.headers)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["code"] in {
            "unknown_filter",
            "unknown_sort_field",
            "invalid_query_parameter",
        }
    bad_after = await messages(client, customer, cid, after_id="x")
    assert bad_after.status_code == 422


async def test_openapi_declares_the_message_list_and_its_after_id(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][f"{BASE}/{{conversation_id}}/messages"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"after_id", "limit", "offset", "sort", "search", "author_id", "seq__gt"} <= names
    assert {"404", "401", "400"} <= set(operation["responses"])
    ticket = document["paths"]["/api/v1/ws-tickets"]["post"]
    assert ticket["operationId"] == "realtime_create_ws_ticket"
