"""Own profile, the admin's account management, who may call what, and the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from commissary.models import AuditLog, OutboxJob, RefreshToken, Role, User
from tests.conftest import PASSWORD, Account, Backend, MakeUser
from tests.servers import Mailbox

USERS = "/api/v1/users"
ME = "/api/v1/users/me"
NEW_PASSWORD = "nebula-mk2-77"
NON_ADMIN_ROLES = [role for role in Role if role is not Role.ADMIN]
USER_READ_FIELDS = {
    "id",
    "email",
    "full_name",
    "role",
    "is_verified",
    "planet",
    "allergies",
    "created_at",
    "referral_code",
}
ADMIN_READ_FIELDS = USER_READ_FIELDS | {"is_active", "verified_at", "updated_at", "restaurant_ids"}
GAMORA = {
    "email": "Gamora@Example.com",
    "password": "zen-whoberi-1",
    "full_name": "Gamora",
    "role": "waiter",
    "planet": "Zen-Whoberi",
    "allergies": ["Shellfish"],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def token_pair(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def load_user(backend: Backend, user_id: int) -> User | None:
    async with backend.runtime.sessionmaker() as session:
        return await session.get(User, user_id)


async def count(backend: Backend, model: type[Any]) -> int:
    async with backend.runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def audit_trail(backend: Backend) -> list[AuditLog]:
    async with backend.runtime.sessionmaker() as session:
        return list((await session.scalars(select(AuditLog).order_by(AuditLog.id))).all())


def problem_fields(response: httpx.Response) -> set[str]:
    return {error["field"].split(".")[0] for error in response.json().get("errors", [])}


# --- /users/me ---------------------------------------------------------------------------


async def test_me_returns_own_account_without_secrets(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user(planet="Terra", allergies=["Peanuts"])
    response = await client.get(ME, headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_READ_FIELDS
    assert body["id"] == account.user.id
    assert body["email"] == account.user.email
    assert body["planet"] == "Terra"
    assert body["allergies"] == ["Peanuts"]
    assert "password" not in response.text
    assert account.user.password_hash not in response.text


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_patch_me_changes_name_planet_and_deduplicates_allergies(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user(planet="Terra", allergies=["Soy"])
    response = await client.patch(
        ME,
        headers=account.headers,
        json={
            "full_name": "  Peter Quill ",
            "planet": " Missouri ",
            "allergies": [" Peanuts ", "peanuts", "GLUTEN", "gluten ", "Soy"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["full_name"] == "Peter Quill"
    assert body["planet"] == "Missouri"
    assert body["allergies"] == ["Peanuts", "GLUTEN", "Soy"]
    again = (await client.get(ME, headers=account.headers)).json()
    assert again == body  # stored, not only echoed


async def test_patch_me_leaves_omitted_fields_and_clears_planet_on_null(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user(full_name="Drax", planet="Kylos", allergies=["Gluten"])
    response = await client.patch(ME, headers=account.headers, json={"planet": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["planet"] is None
    assert body["full_name"] == "Drax"
    assert body["allergies"] == ["Gluten"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("role", "admin"), ("is_verified", True), ("email", "new@example.com"), ("nickname", "x")],
)
async def test_patch_me_unknown_field_is_422_naming_it(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, field: str, value: object
) -> None:
    account = await make_user(verified=False)
    response = await client.patch(ME, headers=account.headers, json={field: value})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert field in problem_fields(response)
    stored = await load_user(backend, account.user.id)
    assert stored is not None
    assert stored.role is Role.CUSTOMER
    assert stored.is_verified is False
    assert stored.email == account.user.email


@pytest.mark.parametrize("field", ["full_name", "allergies"])
async def test_patch_me_null_for_a_required_field_is_refused_naming_it(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, field: str
) -> None:
    account = await make_user(full_name="Mantis", allergies=["Pollen"])
    response = await client.patch(ME, headers=account.headers, json={field: None})
    assert 400 <= response.status_code < 500
    assert field in problem_fields(response), response.json()
    assert field in response.json()["detail"]
    stored = await load_user(backend, account.user.id)
    assert stored is not None
    assert stored.full_name == "Mantis"
    assert stored.allergies == ["Pollen"]


async def test_password_change_with_wrong_current_password_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    response = await client.patch(
        ME,
        headers=account.headers,
        json={"current_password": "not-my-password-1", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "wrong_current_password"
    assert (await login(client, account.user.email, PASSWORD)).status_code == 200
    assert (await login(client, account.user.email, NEW_PASSWORD)).status_code == 401


async def test_password_change_without_current_password_is_422(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    response = await client.patch(ME, headers=account.headers, json={"new_password": NEW_PASSWORD})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert (await login(client, account.user.email, NEW_PASSWORD)).status_code == 401


async def test_password_change_to_a_weak_password_is_422(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    account = await make_user()
    response = await client.patch(
        ME,
        headers=account.headers,
        json={"current_password": PASSWORD, "new_password": "password1"},
    )
    assert response.status_code == 422
    assert "new_password" in problem_fields(response)


async def test_password_change_swaps_passwords_and_revokes_refresh_tokens(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    pair = await token_pair(client, account.user.email, PASSWORD)
    response = await client.patch(
        ME,
        headers=bearer(pair["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.text
    async with backend.runtime.sessionmaker() as session:
        tokens = (await session.scalars(select(RefreshToken))).all()
    assert len(tokens) == 1
    assert tokens[0].revoked_at is not None
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    old = await login(client, account.user.email, PASSWORD)
    assert old.status_code == 401
    assert old.json()["code"] == "invalid_credentials"
    assert (await login(client, account.user.email, NEW_PASSWORD)).status_code == 200


# --- admin: list -----------------------------------------------------------------------


async def make_crew(make_user: MakeUser) -> dict[str, Account]:
    """An admin and four accounts whose e-mails sort the same under any collation."""
    return {
        "admin": await make_user(Role.ADMIN, email="admin@example.com", full_name="Admin"),
        "bravo": await make_user(Role.WAITER, email="bravo@acme.io", full_name="Yondu Udonta"),
        "charlie": await make_user(
            Role.CUSTOMER, email="charlie@example.com", full_name="Nova Prime", verified=False
        ),
        "delta": await make_user(Role.WAITER, email="delta@ACME.io", full_name="Kraglin"),
        "echo": await make_user(
            Role.COURIER, email="echo@example.com", full_name="Nebula", verified=False
        ),
    }


async def list_users(client: httpx.AsyncClient, admin: Account, **params: object) -> httpx.Response:
    return await client.get(USERS, headers=admin.headers, params=params)


def emails(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["email"] for item in response.json()["items"]]


async def test_list_users_paginates_with_total(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    crew = await make_crew(make_user)
    admin = crew["admin"]
    first = await list_users(client, admin, limit=2)
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 0
    assert [item["id"] for item in page["items"]] == [crew["admin"].user.id, crew["bravo"].user.id]
    assert emails(await list_users(client, admin, limit=2, offset=2)) == [
        "charlie@example.com",
        "delta@acme.io",
    ]
    last = await list_users(client, admin, limit=2, offset=4)
    assert emails(last) == ["echo@example.com"]
    assert last.json()["total"] == 5
    beyond = await list_users(client, admin, offset=50)
    assert beyond.json()["items"] == []
    assert beyond.json()["total"] == 5
    assert (await list_users(client, admin)).json()["limit"] == 20


async def test_list_users_items_are_admin_views_without_secrets(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    crew = await make_crew(make_user)
    response = await list_users(client, crew["admin"])
    assert response.status_code == 200
    for item in response.json()["items"]:
        assert set(item) == ADMIN_READ_FIELDS
    assert "password" not in response.text


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"role": "waiter"}, ["bravo@acme.io", "delta@acme.io"]),
        ({"is_verified": "false"}, ["charlie@example.com", "echo@example.com"]),
        ({"email__icontains": "ACME"}, ["bravo@acme.io", "delta@acme.io"]),
        ({"role__in": "courier,customer"}, ["charlie@example.com", "echo@example.com"]),
        ({"role": "waiter", "sort": "-email"}, ["delta@acme.io", "bravo@acme.io"]),
        (
            {"sort": "-email"},
            [
                "echo@example.com",
                "delta@acme.io",
                "charlie@example.com",
                "bravo@acme.io",
                "admin@example.com",
            ],
        ),
        ({"search": "NEBU"}, ["echo@example.com"]),
        ({"search": "acme"}, ["bravo@acme.io", "delta@acme.io"]),
        ({"search": "nobody-matches"}, []),
    ],
)
async def test_list_users_filters_sorts_and_searches(
    client: httpx.AsyncClient, make_user: MakeUser, params: dict[str, str], expected: list[str]
) -> None:
    crew = await make_crew(make_user)
    response = await list_users(client, crew["admin"], **params)
    assert emails(response) == expected
    assert response.json()["total"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [{"search": "ørjan"}, {"search": "ØRJAN"}, {"full_name__icontains": "ÅLESUND"}],
    ids=["search-lower", "search-upper", "icontains"],
)
async def test_list_users_case_insensitive_match_covers_non_ascii_letters(
    client: httpx.AsyncClient, make_user: MakeUser, params: dict[str, str]
) -> None:
    admin = await make_user(Role.ADMIN)
    await make_user(email="orjan@example.com", full_name="Ørjan Ålesund")
    assert emails(await list_users(client, admin, **params)) == ["orjan@example.com"]


async def test_list_users_filters_by_creation_time_in_any_timezone(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    admin = await make_user(Role.ADMIN, email="admin@example.com")
    veteran = await make_user(email="veteran@example.com")
    async with backend.runtime.sessionmaker() as session:
        long_ago = dt.datetime(2020, 1, 1, 12, 0, tzinfo=dt.UTC)
        await session.execute(
            update(User).where(User.id == veteran.user.id).values(created_at=long_ago)
        )
        await session.commit()
    # 2020-01-01T15:00+05:00 is 10:00 UTC: before the veteran's 12:00 UTC.
    before = await list_users(client, admin, created_at__lt="2020-01-01T15:00:00+05:00")
    assert emails(before) == []
    # 2020-01-01T09:00-05:00 is 14:00 UTC: after it.
    after = await list_users(client, admin, created_at__lt="2020-01-01T09:00:00-05:00")
    assert emails(after) == ["veteran@example.com"]
    recent = await list_users(client, admin, created_at__gte="2021-01-01T00:00:00")
    assert emails(recent) == ["admin@example.com"]


async def test_list_users_unknown_filter_is_400_naming_it(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await list_users(client, admin, password_hash__contains="$argon")
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "unknown_filter"
    assert problem["parameter"] == "password_hash__contains"
    assert "password_hash" in problem["detail"]


async def test_list_users_unknown_operator_is_400(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await list_users(client, admin, is_verified__icontains="t")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_filter_operator"
    assert response.json()["parameter"] == "is_verified__icontains"


async def test_list_users_cannot_sort_by_password_hash(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await list_users(client, admin, sort="email,-password_hash")
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "unknown_sort_field"
    assert problem["parameter"] == "sort"
    assert "password_hash" in problem["detail"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"role": "emperor"}, "role"),
        ({"is_verified": "maybe"}, "is_verified"),
        ({"created_at__gte": "yesterday"}, "created_at__gte"),
    ],
)
async def test_list_users_bad_parameter_values_are_400(
    client: httpx.AsyncClient, make_user: MakeUser, params: dict[str, str], parameter: str
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await list_users(client, admin, **params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_query_parameter"
    assert response.json()["parameter"] == parameter


# --- admin: create -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.WAITER, Role.COURIER, Role.ADMIN], ids=str)
async def test_admin_creates_a_verified_account_of_any_role_without_mail(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    backend: Backend,
    mailbox: Mailbox,
    role: Role,
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await client.post(USERS, headers=admin.headers, json={**GAMORA, "role": role.value})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == ADMIN_READ_FIELDS
    assert body["email"] == "gamora@example.com"
    assert body["role"] == role.value
    assert body["is_verified"] is True
    assert body["verified_at"] is not None
    assert body["is_active"] is True
    assert body["planet"] == "Zen-Whoberi"
    assert "password" not in response.text
    await backend.run_jobs()
    assert mailbox.to("gamora@example.com") == []
    assert await count(backend, OutboxJob) == 0
    assert (await login(client, "gamora@example.com", GAMORA["password"])).status_code == 200
    read = await client.get(f"{USERS}/{body['id']}", headers=admin.headers)
    assert read.status_code == 200
    assert read.json() == body


async def test_admin_create_with_taken_email_is_409(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    admin = await make_user(Role.ADMIN)
    await make_user(email="gamora@example.com")
    response = await client.post(USERS, headers=admin.headers, json=GAMORA)
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert await count(backend, User) == 2


async def test_admin_create_rejects_unknown_fields(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await client.post(
        USERS, headers=admin.headers, json={**GAMORA, "is_verified": False}
    )
    assert response.status_code == 422
    assert "is_verified" in problem_fields(response)
    assert await count(backend, User) == 1


# --- admin: read, replace, update, delete ---------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_unknown_user_id_is_404(
    client: httpx.AsyncClient, make_user: MakeUser, method: str
) -> None:
    admin = await make_user(Role.ADMIN)
    body: dict[str, Any] | None = {
        "PUT": {"email": "x@example.com", "full_name": "X", "role": "customer"},
        "PATCH": {"full_name": "X"},
    }.get(method)
    response = await client.request(
        method, f"{USERS}/{admin.user.id + 999}", headers=admin.headers, json=body
    )
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"


async def test_admin_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user(full_name="Kraglin", planet="Contraxia", allergies=["Soy"])
    response = await client.patch(
        f"{USERS}/{target.user.id}", headers=admin.headers, json={"role": "courier"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == "courier"
    assert body["full_name"] == "Kraglin"
    assert body["planet"] == "Contraxia"
    assert body["allergies"] == ["Soy"]
    assert body["email"] == target.user.email
    me = await client.get(ME, headers=target.headers)
    assert me.json()["role"] == "courier"


async def test_admin_put_replaces_the_whole_account(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user(full_name="Kraglin", planet="Contraxia", allergies=["Soy"])
    response = await client.put(
        f"{USERS}/{target.user.id}",
        headers=admin.headers,
        json={"email": "Kraglin@Ravagers.space", "full_name": "Kraglin Obfonteri", "role": "sales"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == "kraglin@ravagers.space"
    assert body["full_name"] == "Kraglin Obfonteri"
    assert body["role"] == "sales"
    assert body["planet"] is None  # omitted on PUT means cleared
    assert body["allergies"] == []
    assert (await login(client, "kraglin@ravagers.space", PASSWORD)).status_code == 200
    assert (await login(client, target.user.email, PASSWORD)).status_code == 401


async def test_admin_put_without_a_required_field_is_422(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user()
    response = await client.put(
        f"{USERS}/{target.user.id}", headers=admin.headers, json={"email": "a@example.com"}
    )
    assert response.status_code == 422
    assert {"full_name", "role"} <= problem_fields(response)


async def test_admin_password_reset_revokes_refresh_tokens(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user()
    pair = await token_pair(client, target.user.email, PASSWORD)
    response = await client.patch(
        f"{USERS}/{target.user.id}", headers=admin.headers, json={"password": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await login(client, target.user.email, PASSWORD)).status_code == 401
    assert (await login(client, target.user.email, NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_changing_email_to_a_taken_one_in_other_case_is_409(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, method: str
) -> None:
    admin = await make_user(Role.ADMIN)
    await make_user(email="rocket@example.com")
    target = await make_user(email="groot@example.com", full_name="Groot")
    body: dict[str, Any] = {"email": "ROCKET@Example.COM"}
    if method == "PUT":
        body |= {"full_name": "I am Groot", "role": "customer"}
    trail_before = len(await audit_trail(backend))
    response = await client.request(
        method, f"{USERS}/{target.user.id}", headers=admin.headers, json=body
    )
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    stored = await load_user(backend, target.user.id)
    assert stored is not None
    assert stored.email == "groot@example.com"
    assert stored.full_name == "Groot"
    assert len(await audit_trail(backend)) == trail_before  # the failed change left no trace


async def test_changing_email_to_own_email_in_other_case_is_fine(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user(email="groot@example.com")
    response = await client.patch(
        f"{USERS}/{target.user.id}", headers=admin.headers, json={"email": "GROOT@example.com"}
    )
    assert response.status_code == 200
    assert response.json()["email"] == "groot@example.com"


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"role": "customer"}),
        ("PATCH", {"is_active": False}),
        ("PUT", {"email": "admin@example.com", "full_name": "Admin", "role": "support"}),
        (
            "PUT",
            {
                "email": "admin@example.com",
                "full_name": "Admin",
                "role": "admin",
                "is_active": False,
            },
        ),
        ("DELETE", None),
    ],
)
async def test_admin_cannot_demote_deactivate_or_delete_themself(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    backend: Backend,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    admin = await make_user(Role.ADMIN, email="admin@example.com", full_name="Admin")
    response = await client.request(
        method, f"{USERS}/{admin.user.id}", headers=admin.headers, json=body
    )
    assert response.status_code == 409
    assert response.json()["code"] == "cannot_modify_own_admin"
    stored = await load_user(backend, admin.user.id)
    assert stored is not None
    assert stored.role is Role.ADMIN
    assert stored.is_active is True
    assert (await client.get(USERS, headers=admin.headers)).status_code == 200


async def test_admin_may_rename_themself_and_demote_another_admin(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    other = await make_user(Role.ADMIN)
    renamed = await client.patch(
        f"{USERS}/{admin.user.id}", headers=admin.headers, json={"full_name": "Yondu"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["role"] == "admin"
    demoted = await client.patch(
        f"{USERS}/{other.user.id}", headers=admin.headers, json={"role": "support"}
    )
    assert demoted.status_code == 200
    assert (await client.get(USERS, headers=other.headers)).status_code == 403


async def test_deactivated_user_cannot_log_in_and_their_tokens_stop_working(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user()
    pair = await token_pair(client, target.user.email, PASSWORD)
    assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    response = await client.patch(
        f"{USERS}/{target.user.id}", headers=admin.headers, json={"is_active": False}
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    for headers in (target.headers, bearer(pair["access_token"])):
        me = await client.get(ME, headers=headers)
        assert me.status_code == 401
        assert me.json()["code"] == "invalid_token"
    denied = await login(client, target.user.email, PASSWORD)
    assert denied.status_code == 401
    assert denied.json()["code"] == "invalid_credentials"
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    # Reactivated, the account signs in again, but the sessions of before stay revoked.
    await client.patch(f"{USERS}/{target.user.id}", headers=admin.headers, json={"is_active": True})
    assert (await login(client, target.user.email, PASSWORD)).status_code == 200
    stale = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert stale.status_code == 401


async def test_deleted_user_is_gone_and_cannot_sign_in(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    admin = await make_user(Role.ADMIN)
    target = await make_user()
    pair = await token_pair(client, target.user.email, PASSWORD)
    response = await client.delete(f"{USERS}/{target.user.id}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    gone = await client.get(f"{USERS}/{target.user.id}", headers=admin.headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "user_not_found"
    again = await client.delete(f"{USERS}/{target.user.id}", headers=admin.headers)
    assert again.status_code == 404
    assert (await client.get(ME, headers=target.headers)).status_code == 401
    assert (await login(client, target.user.email, PASSWORD)).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert await count(backend, RefreshToken) == 0
    assert await count(backend, User) == 1


# --- authorization ------------------------------------------------------------------------


def admin_calls(user_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", USERS, None),
        ("POST", USERS, GAMORA),
        ("GET", f"{USERS}/{user_id}", None),
        (
            "PUT",
            f"{USERS}/{user_id}",
            {"email": "x@example.com", "full_name": "X", "role": "admin"},
        ),
        ("PATCH", f"{USERS}/{user_id}", {"role": "admin"}),
        ("DELETE", f"{USERS}/{user_id}", None),
    ]


@pytest.mark.parametrize("role", NON_ADMIN_ROLES, ids=str)
async def test_non_admin_roles_get_403_on_every_admin_endpoint(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, role: Role
) -> None:
    caller = await make_user(role)
    target = await make_user(full_name="Target")
    for user_id in (target.user.id, caller.user.id):
        for method, path, body in admin_calls(user_id):
            response = await client.request(method, path, headers=caller.headers, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["code"] == "forbidden"
    for account in (caller, target):
        stored = await load_user(backend, account.user.id)
        assert stored is not None
        assert stored.role is account.user.role
        assert stored.email == account.user.email
    assert await count(backend, User) == 2


async def test_anonymous_callers_get_401_on_every_admin_endpoint(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    target = await make_user()
    for method, path, body in admin_calls(target.user.id):
        response = await client.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "not_authenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    assert await count(backend, User) == 1


# --- audit log ----------------------------------------------------------------------------


async def test_account_actions_are_written_to_the_audit_log(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    admin = await make_user(Role.ADMIN)
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": "mantis@example.com", "password": "ego-planet-3", "full_name": "Mantis"},
    )
    assert registered.status_code == 201
    self_id = registered.json()["id"]
    await token_pair(client, "mantis@example.com", "ego-planet-3")
    created = await client.post(USERS, headers=admin.headers, json=GAMORA)
    assert created.status_code == 201
    new_id = created.json()["id"]
    patched = await client.patch(
        f"{USERS}/{new_id}", headers=admin.headers, json={"full_name": "Gamora Zen"}
    )
    assert patched.status_code == 200
    assert (await client.delete(f"{USERS}/{new_id}", headers=admin.headers)).status_code == 204

    trail = await audit_trail(backend)
    assert [(r.action, r.entity, r.entity_id, r.actor_id) for r in trail] == [
        ("user.create", "user", str(admin.user.id), admin.user.id),  # make_user's own row
        ("user.create", "user", str(self_id), self_id),
        ("user.login", "user", str(self_id), self_id),
        ("user.create", "user", str(new_id), admin.user.id),
        ("user.update", "user", str(new_id), admin.user.id),
        ("user.delete", "user", str(new_id), admin.user.id),
    ]
    assert trail[1].data == {"role": "customer"}
    assert trail[3].data == {"role": "waiter"}
    assert trail[4].data == {"fields": ["full_name"]}
    assert all(row.at is not None for row in trail)


async def test_own_profile_change_is_audited_with_the_user_as_actor(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend
) -> None:
    account = await make_user()
    response = await client.patch(ME, headers=account.headers, json={"planet": "Sakaar"})
    assert response.status_code == 200
    last = (await audit_trail(backend))[-1]
    assert (last.action, last.entity, last.entity_id, last.actor_id) == (
        "user.update",
        "user",
        str(account.user.id),
        account.user.id,
    )
    assert last.data == {"fields": ["planet"]}


@pytest.mark.parametrize("via", ["me", "admin"])
async def test_password_change_is_audited_naming_the_password_field(
    client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, via: str
) -> None:
    admin = await make_user(Role.ADMIN)
    account = await make_user()
    if via == "me":
        response = await client.patch(
            ME,
            headers=account.headers,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
    else:
        response = await client.patch(
            f"{USERS}/{account.user.id}", headers=admin.headers, json={"password": NEW_PASSWORD}
        )
    assert response.status_code == 200, response.text
    last = (await audit_trail(backend))[-1]
    assert (last.action, last.entity_id) == ("user.update", str(account.user.id))
    assert last.actor_id == (account.user.id if via == "me" else admin.user.id)
    assert last.data == {"fields": ["password"]}
