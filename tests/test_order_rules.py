"""Property tests of the pure order rules: the transition table and the allergen match."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from commissary.models import Fulfillment, OrderStatus
from commissary.orders.allergens import LineContents, find_conflicts, normalize
from commissary.orders.state import TABLE, TERMINAL, Actor, allowed, refusal

statuses = st.sampled_from(list(OrderStatus))
fulfillments = st.sampled_from(list(Fulfillment))
actors = st.sampled_from([*Actor, None])


@given(statuses, statuses, fulfillments, actors)
def test_no_move_leaves_a_terminal_state(
    current: OrderStatus, target: OrderStatus, fulfillment: Fulfillment, actor: Actor | None
) -> None:
    if current in TERMINAL:
        assert refusal(current, target, fulfillment, actor) == "order_closed"


@given(statuses, fulfillments, actors)
def test_allowed_moves_are_exactly_the_unrefused_ones(
    current: OrderStatus, fulfillment: Fulfillment, actor: Actor | None
) -> None:
    moves = allowed(current, fulfillment, actor)
    for target in OrderStatus:
        assert (target in moves) == (refusal(current, target, fulfillment, actor) is None)


def test_every_move_of_the_table_is_reachable_from_pending() -> None:
    used_by_any: set[tuple[OrderStatus, OrderStatus]] = set()
    for fulfillment in Fulfillment:
        reached = {OrderStatus.PENDING}
        frontier = [OrderStatus.PENDING]
        used = set()
        while frontier:
            current = frontier.pop()
            for actor in Actor:
                for target in allowed(current, fulfillment, actor):
                    used.add((current, target))
                    if target not in reached:
                        reached.add(target)
                        frontier.append(target)
        expected = {
            move
            for move, rule in TABLE.items()
            if move[0] in reached and (rule.guard is None or rule.guard(fulfillment) is None)
        }
        assert used == expected
        used_by_any |= used
        assert OrderStatus.COMPLETED in reached
        assert (OrderStatus.OUT_FOR_DELIVERY in reached) == (fulfillment is Fulfillment.DELIVERY)
    assert used_by_any == set(TABLE)


def test_a_terminal_status_is_reached_on_every_path() -> None:
    for fulfillment in Fulfillment:
        for status in OrderStatus:
            if status in TERMINAL:
                continue
            assert any(allowed(status, fulfillment, actor) for actor in Actor), status


terms = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12)
padding = st.text(alphabet=" \t", max_size=3)


@given(terms, padding, padding, st.booleans(), st.lists(terms, max_size=5))
def test_an_allergy_matches_its_ingredient_whatever_the_case_and_spaces(
    term: str, left: str, right: str, as_tag: bool, others: list[str]
) -> None:
    # Letters whose upper case folds to another letter (Turkish dotless i) are no case change.
    assume(normalize(term.upper()) == normalize(term.lower()))
    written = left + term.upper() + right
    line = LineContents(
        "Meal", [*others, written] if not as_tag else others, [written] if as_tag else []
    )
    conflicts = find_conflicts([term.lower()], [line])
    kind = "allergen" if as_tag else "ingredient"
    assert any(
        c.kind == kind and c.term == written and c.allergy == term.lower() for c in conflicts
    )


@given(st.lists(terms, max_size=5), st.lists(terms, max_size=5), st.lists(terms, max_size=5))
def test_no_conflict_without_a_shared_term(
    allergies: list[str], ingredients: list[str], allergens: list[str]
) -> None:
    shared = {normalize(a) for a in allergies} & {normalize(t) for t in ingredients + allergens}
    conflicts = find_conflicts(allergies, [LineContents("Meal", ingredients, allergens)])
    assert bool(conflicts) == bool(shared)
