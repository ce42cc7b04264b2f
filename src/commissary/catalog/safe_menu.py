"""Menus without what a customer must avoid: ``safe_for_me=true`` (the signed-in customer's
allergies) and ``exclude_allergens=a,b`` on the product list.

A product is hidden when its own ingredients or allergen tags match, or when one of its
required option groups cannot be filled with available options that do not match; a product
whose options only *might* clash (oat milk, when soy milk is offered too) stays, since a safe
choice exists. Terms match as the allergen check matches them (trimmed, case-folded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from commissary.catalog import repository as repo
from commissary.core.errors import Unauthorized
from commissary.core.listing import BadListQuery, ListQuery, parse_bool
from commissary.models import Product, User
from commissary.orders import pricing
from commissary.orders.allergens import clashes, normalize
from commissary.users import auth_service

SAFE_FOR_ME = "safe_for_me"
EXCLUDE = "exclude_allergens"
MAX_TERMS = 20
MAX_TERM_LENGTH = 80


def is_personal(params: Mapping[str, str]) -> bool:
    """Whether the answer depends on who asks: such an answer is neither read from nor stored
    in the shared menu cache."""
    return SAFE_FOR_ME in params


def _wants_safe(params: Mapping[str, str]) -> bool:
    try:
        return parse_bool(params[SAFE_FOR_ME]) if SAFE_FOR_ME in params else False
    except ValueError:
        raise BadListQuery(
            f"'{SAFE_FOR_ME}' must be true or false", extra={"parameter": SAFE_FOR_ME}
        ) from None


def excluded_terms(params: Mapping[str, str]) -> list[str]:
    """The terms of ``exclude_allergens``, checked."""
    raw = params.get(EXCLUDE)
    if raw is None:
        return []
    terms = [term.strip() for term in raw.split(",") if term.strip()]
    if len(terms) > MAX_TERMS or any(len(term) > MAX_TERM_LENGTH for term in terms):
        raise BadListQuery(
            f"'{EXCLUDE}' takes at most {MAX_TERMS} terms of up to {MAX_TERM_LENGTH} characters",
            extra={"parameter": EXCLUDE},
        )
    return terms


async def avoided_terms(
    session: AsyncSession, params: Mapping[str, str], token: str | None
) -> list[str]:
    """What the list must leave out: the signed-in customer's allergies for
    ``safe_for_me=true``, and the ``exclude_allergens`` terms."""
    terms = excluded_terms(params)
    if _wants_safe(params):
        if not token:
            raise Unauthorized(
                f"'{SAFE_FOR_ME}=true' needs you signed in: send `Authorization: Bearer "
                "<access token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        user: User = await auth_service.user_from_access_token(session, token)
        terms += list(user.allergies)
    return terms


def _fillable(group: pricing.Group, avoid: Collection[str]) -> bool:
    safe = [
        c
        for c in group.choices
        if c.is_available and not clashes(avoid, c.ingredients, c.allergens)
    ]
    return len(safe) >= group.min_choices


def is_safe(
    ingredients: Sequence[str],
    allergens: Sequence[str],
    groups: Sequence[pricing.Group],
    avoid: Collection[str],
) -> bool:
    """Whether some choice of the product's options avoids every term of ``avoid``."""
    if clashes(avoid, ingredients, allergens):
        return False
    return all(_fillable(group, avoid) for group in groups)


async def without_unsafe(session: AsyncSession, query: ListQuery, avoid: list[str]) -> ListQuery:
    """``query`` narrowed to the products that are safe to order while avoiding ``avoid``.
    Reads the contents of every product the other filters let through (and the options of
    those that have any), in two queries."""
    if not {normalize(term) for term in avoid} - {""}:
        return query
    rows = (await session.execute(repo.safe_menu_candidates(query.where))).all()
    groups = await pricing.load_groups(session, [row.id for row in rows if row.has_options])
    unsafe = [
        row.id
        for row in rows
        if not is_safe(row.ingredients, row.allergens, groups.get(row.id, ()), avoid)
    ]
    if not unsafe:
        return query
    return dataclasses.replace(query, where=[*query.where, Product.id.not_in(unsafe)])
