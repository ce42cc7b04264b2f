"""A realistic starting point: a menu (through the API, as an admin would build it), accounts
(one through the API, cloned in SQL so creating a thousand does not take minutes), access
tokens (signed in through the API at a controlled pace) and a few thousand past orders
(cloned in SQL from orders placed through the API), then ANALYZE.

Past orders matter: on empty, freshly analysed tables PostgreSQL plans foreign-key checks as
sequential scans and a write benchmark collapses as rows arrive."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import httpx

from stack import ADMIN_PASSWORD

PASSWORD = "bench-Pass-42"
API = "/api/v1"

MEALS = [
    ("Nebula Noodles", "12.50", ["noodles", "chili", "void mushrooms"], []),
    ("Xandarian Star Soup", "8.90", ["star carrots", "nova beans", "sunroot"], []),
    ("Kree Kale Salad", "9.40", ["kale", "lemon", "seeds"], ["citrus"]),
    ("Groot Root Tea", "2.80", ["root", "water"], []),
    ("Asgardian Mead Cake", "6.20", ["flour", "honey", "mead"], ["gluten"]),
    ("Sakaaran Satay", "11.00", ["chicken", "peanuts", "spices"], ["nuts"]),
    ("Contraxian Curry", "13.20", ["rice", "lentils", "curry"], []),
    ("Knowhere Dumplings", "7.60", ["flour", "cabbage", "pork"], ["gluten"]),
    ("Titan Tacos", "10.10", ["corn", "beans", "salsa"], []),
    ("Hala Hummus", "5.50", ["chickpeas", "tahini", "garlic"], ["sesame"]),
]
ALLERGIC_TO = "peanuts"


@dataclass
class Menu:
    restaurant_id: int
    product_ids: list[int]
    other_restaurant_id: int
    # Products a customer allergic to ALLERGIC_TO may not eat: their orders get cancelled.
    unsafe_ids: list[int] = field(default_factory=list)


def api_client(base: str, *, connections: int = 100, timeout: float = 30.0) -> httpx.AsyncClient:
    """A pooled client. Idle connections are dropped after 3 s, before uvicorn's 5 s
    keep-alive time-out closes them: a request sent on a connection the server is closing
    fails with a read error that says nothing about the server."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=3.0
    )
    return httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _post(
    client: httpx.AsyncClient, path: str, token: str, body: object
) -> dict[str, object]:
    answer = await client.post(f"{API}{path}", json=body, headers=bearer(token))
    if answer.status_code >= 300:
        raise RuntimeError(f"POST {path} -> {answer.status_code}: {answer.text}")
    data: dict[str, object] = answer.json()
    return data


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    answer = await client.post(f"{API}/auth/login", json={"email": email, "password": password})
    if answer.status_code != 200:
        raise RuntimeError(f"login {email} -> {answer.status_code}: {answer.text}")
    return str(answer.json()["access_token"])


async def admin_login(client: httpx.AsyncClient, admin_email: str) -> str:
    return await login(client, admin_email, ADMIN_PASSWORD)


async def seed_menu(client: httpx.AsyncClient, token: str) -> Menu:
    """Two always-open restaurants with a simulated kitchen, 2 x 20 products."""
    restaurant_ids = []
    for name in ("Bench Bistro", "Bench Canteen"):
        restaurant = await _post(
            client,
            "/restaurants",
            token,
            {"name": name, "opening_hours": {}, "kitchen_mode": "simulated"},
        )
        restaurant_ids.append(int(str(restaurant["id"])))
    category_ids = []
    for position, name in enumerate(("Mains", "Soups", "Drinks", "Desserts")):
        category = await _post(client, "/categories", token, {"name": name, "position": position})
        category_ids.append(int(str(category["id"])))
    menu = Menu(restaurant_ids[0], [], restaurant_ids[1])
    for restaurant_id in restaurant_ids:
        for i in range(20):
            name, price, ingredients, allergens = MEALS[i % len(MEALS)]
            product = await _post(
                client,
                "/products",
                token,
                {
                    "restaurant_id": restaurant_id,
                    "category_id": category_ids[i % len(category_ids)],
                    "name": f"{name} {i // len(MEALS) + 1}",
                    "description": f"{name}, the house's way.",
                    "price": price,
                    "ingredients": ingredients,
                    "allergens": allergens,
                    "origin": "Xandar",
                },
            )
            if restaurant_id == menu.restaurant_id:
                product_id = int(str(product["id"]))
                menu.product_ids.append(product_id)
                if ALLERGIC_TO in ingredients:
                    menu.unsafe_ids.append(product_id)
    return menu


async def create_accounts(
    client: httpx.AsyncClient,
    admin_token: str,
    database_url: str,
    prefix: str,
    role: str,
    count: int,
    *,
    allergic_share: float = 0.0,
    restaurant_ids: Sequence[int] = (),
) -> list[str]:
    """``count`` verified, active accounts ``{prefix}{n}@bench.example``; returns the e-mails.
    Waiters serve in ``restaurant_ids`` (their memberships are cloned with them).

    One is created through the API, as an admin creates accounts; the others are cloned from
    it in one SQL statement (argon2 a thousand times would take minutes). Every column is
    copied but those that make an account itself, so columns added later are filled as the
    application fills them; single-column unique ones get a random value."""
    template = await _post(
        client,
        "/users",
        admin_token,
        {
            "email": f"{prefix}-template@bench.example",
            "password": PASSWORD,
            "full_name": f"{prefix.title()} template",
            "role": role,
            "planet": "Terra",
            **({"restaurant_ids": list(restaurant_ids)} if restaurant_ids else {}),
        },
    )
    conn = await asyncpg.connect(database_url)
    try:
        columns = await _columns(conn, "user_account")
        overrides = {
            "email": f"'{prefix}' || n || '@bench.example'",
            "full_name": f"'{prefix.title()} ' || n",
            "allergies": (
                f"CASE WHEN random() < {float(allergic_share)} "
                f"THEN json_build_array('{ALLERGIC_TO}') ELSE json_build_array() END"
            ),
        }
        for column, length in await _unique_text_columns(conn, "user_account"):
            overrides.setdefault(column, f"left(md5(random()::text || n), {min(length, 32)})")
        await conn.execute(
            f"""INSERT INTO user_account ({", ".join(f'"{c}"' for c in columns)})
                SELECT {", ".join(overrides.get(c, f't."{c}"') for c in columns)}
                FROM user_account t, generate_series(1, $1::int) AS n
                WHERE t.id = $2""",  # noqa: S608 - names from the catalog, values are numbers
            count,
            int(str(template["id"])),
        )
        await conn.execute(
            """INSERT INTO restaurant_staff (restaurant_id, user_id)
               SELECT s.restaurant_id, u.id FROM restaurant_staff s, user_account u
               WHERE s.user_id = $1 AND u.email LIKE $2 AND u.id <> $1""",
            int(str(template["id"])),
            f"{prefix}%@bench.example",
        )
    finally:
        await conn.close()
    return [f"{prefix}{n}@bench.example" for n in range(1, count + 1)]


async def _unique_text_columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, int]]:
    """Text columns with a unique index of their own (but ``email``), and their length."""
    rows = await conn.fetch(
        """SELECT a.attname AS name, coalesce(c.character_maximum_length, 32) AS length
           FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           JOIN information_schema.columns c
             ON c.table_name = $1 AND c.column_name = a.attname
            AND c.table_schema = current_schema()
           WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnatts = 1
             AND a.attname NOT IN ('id', 'email')
             AND c.data_type IN ('character varying', 'text')""",
        table,
    )
    return [(str(row["name"]), int(row["length"])) for row in rows]


async def sign_in(
    client: httpx.AsyncClient, emails: Sequence[str], *, concurrency: int = 8
) -> list[str]:
    """One access token per e-mail, signing in ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(email: str) -> str:
        async with gate:
            return await login(client, email, PASSWORD)

    return list(await asyncio.gather(*(one(email) for email in emails)))


async def place_orders(
    client: httpx.AsyncClient,
    tokens: Sequence[str],
    menu: Menu,
    count: int,
    *,
    concurrency: int = 64,
) -> list[int]:
    """Place ``count`` two-line orders through the API; returns their ids (raises on any
    answer but 202)."""
    gate = asyncio.Semaphore(concurrency)
    safe = [p for p in menu.product_ids if p not in menu.unsafe_ids] or menu.product_ids

    async def one(n: int) -> int:
        body = {
            "restaurant_id": menu.restaurant_id,
            "items": [
                {"product_id": random.choice(safe), "quantity": random.randint(1, 3)},
                {"product_id": random.choice(safe), "quantity": 1},
            ],
        }
        async with gate:
            answer = await client.post(
                f"{API}/orders", json=body, headers=bearer(tokens[n % len(tokens)])
            )
        if answer.status_code != 202:
            raise RuntimeError(f"POST /orders -> {answer.status_code}: {answer.text}")
        return int(answer.json()["id"])

    return list(await asyncio.gather(*(one(n) for n in range(count))))


CLONE_HISTORY = """
DO $$
DECLARE
    templates bigint[] := $TEMPLATES$;
    customers bigint[] := (SELECT array_agg(id) FROM user_account WHERE role = 'customer');
    template bigint;
    new_id bigint;
BEGIN
    FOR i IN 1..$COUNT$ LOOP
        template := templates[1 + i % array_length(templates, 1)];
        EXECUTE format(
            'INSERT INTO customer_order (%s) SELECT %s FROM customer_order '
            'WHERE id = $1 RETURNING id',
            $ORDER_COLS$, $ORDER_VALUES$)
            INTO new_id
            USING template, customers[1 + i % array_length(customers, 1)],
                  now() - make_interval(mins => i);
        EXECUTE format(
            'INSERT INTO order_line (%s) SELECT %s FROM order_line WHERE order_id = $1',
            $LINE_COLS$, $LINE_VALUES$) USING template, new_id;
        EXECUTE format(
            'INSERT INTO order_event (%s) SELECT %s FROM order_event WHERE order_id = $1',
            $EVENT_COLS$, $EVENT_VALUES$) USING template, new_id;
    END LOOP;
END $$;
"""

# Columns given a new value in the clones; every other column is copied from the template,
# so columns added later are filled as the application filled them.
ORDER_OVERRIDES = {
    "customer_id": "$2",
    "status": "'completed'",
    "order_time": "$3",
    "completed_time": "$3 + interval '3 seconds'",
    "updated_at": "$3 + interval '3 seconds'",
}


async def seed_history(
    client: httpx.AsyncClient,
    database_url: str,
    tokens: Sequence[str],
    menu: Menu,
    count: int,
) -> None:
    """``count`` completed past orders, cloned from a few placed through the API."""
    templates = await place_orders(client, tokens, menu, 10, concurrency=4)
    conn = await asyncpg.connect(database_url)
    try:
        order_cols = await _columns(conn, "customer_order")
        line_cols = await _columns(conn, "order_line")
        event_cols = await _columns(conn, "order_event")
        sql = (
            CLONE_HISTORY.replace("$TEMPLATES$", f"ARRAY{templates}::bigint[]")
            .replace("$COUNT$", str(count))
            .replace("$ORDER_COLS$", _names(order_cols))
            .replace("$ORDER_VALUES$", _names(order_cols, ORDER_OVERRIDES))
            .replace("$LINE_COLS$", _names(line_cols))
            .replace("$LINE_VALUES$", _names(line_cols, {"order_id": "$2"}))
            .replace("$EVENT_COLS$", _names(event_cols))
            .replace("$EVENT_VALUES$", _names(event_cols, {"order_id": "$2"}))
        )
        await conn.execute(sql)
        # The templates are history too (their queued jobs then find nothing to do).
        await conn.execute(
            "UPDATE customer_order SET status = 'completed', completed_time = order_time "
            "WHERE id = ANY($1::bigint[])",
            templates,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT column_name FROM information_schema.columns
           WHERE table_name = $1 AND table_schema = current_schema()
             AND column_name <> 'id' AND is_generated = 'NEVER'
           ORDER BY ordinal_position""",
        table,
    )
    return [str(row["column_name"]) for row in rows]


def _names(columns: list[str], overrides: dict[str, str] | None = None) -> str:
    """The quoted column list (or value list, with ``overrides``) as an SQL string literal."""
    parts = [(overrides or {}).get(c, f'"{c}"') for c in columns]
    return _literal(", ".join(parts))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
