"""Heroes and meals named on the command line by id, e-mail or name, as a person knows them:
`--hero quill@cafeteria.example`, `--hero "Peter Quill"`, `--meal "Xandarian Star Soup":2`.
An unknown or ambiguous name is a clear error (exit status 2), never a guess."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as catalog_repo
from commissary.catalog import service as catalog
from commissary.cli.common import fail
from commissary.core.listing import parse_list_query
from commissary.models import Product, Role, User
from commissary.users import repository as user_repo
from commissary.users import service as users

HERO_HELP = "The hero's id, e-mail or full name."
MEAL_HELP = "The meal's id or name."


def _is_id(ref: str) -> bool:
    return ref.strip().isdigit()


async def _user(session: AsyncSession, ref: str) -> User:
    ref = ref.strip()
    if _is_id(ref):
        return await users.get_user(session, int(ref))
    if "@" in ref:
        found = await user_repo.get_by_email(session, ref)
        if found is None:
            fail(f"no hero has the e-mail {ref!r} (see `commissary heroes list`)")
        return found
    # The list filter narrows the search; the exact (case-insensitive) match decides.
    query = {"role": Role.CUSTOMER.value, "full_name__icontains": ref, "limit": "100"}
    candidates, _ = await users.list_users(session, parse_list_query(query, user_repo.USER_LIST))
    named = [u for u in candidates if u.full_name.casefold() == ref.casefold()]
    if not named:
        fail(f"no hero is named {ref!r} (see `commissary heroes list`)")
    if len(named) > 1:
        which = ", ".join(f"#{u.id} <{u.email}>" for u in named)
        fail(f"{len(named)} heroes are named {ref!r} ({which}): give the id or the e-mail")
    return named[0]


async def hero(session: AsyncSession, ref: str) -> User:
    """The customer account that ``ref`` (id, e-mail or full name) names."""
    user = await _user(session, ref)
    if user.role is not Role.CUSTOMER:
        article = "an" if user.role.value[0] in "aeiou" else "a"
        fail(f"{ref} is {article} {user.role.value} ({user.email}), not a hero")
    return user


async def meal(session: AsyncSession, ref: str) -> Product:
    """The product that ``ref`` (id or name) names."""
    ref = ref.strip()
    if _is_id(ref):
        return await catalog.get_product(session, int(ref))
    query = {"name__icontains": ref, "limit": "100", "sort": "id"}
    candidates, _ = await catalog.list_products(
        session, parse_list_query(query, catalog_repo.PRODUCT_LIST)
    )
    named = [p for p in candidates if p.name.casefold() == ref.casefold()]
    if not named:
        fail(f"no meal is named {ref!r} (see `commissary meals list`)")
    if len(named) > 1:
        which = ", ".join(f"#{p.id} (restaurant {p.restaurant_id})" for p in named)
        fail(f"{len(named)} meals are named {ref!r} ({which}): give the id")
    return named[0]


def meal_and_quantity(raw: str) -> tuple[str, int]:
    """Split ``MEAL[:QUANTITY]``; a name may itself hold a colon when no number follows it."""
    ref, colon, quantity = raw.rpartition(":")
    if colon and quantity.strip().isdigit():
        raw, count = ref, int(quantity)
    else:
        count = 1
    if not raw.strip():
        fail("--meal needs a meal: MEAL or MEAL:QUANTITY (MEAL is an id or a name)")
    return raw, count
