"""The allergen check: an allergy matches an ingredient or an allergen tag of a line, or of
one of its chosen options, when both are equal once trimmed and case-folded."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def normalize(term: str) -> str:
    return term.strip().casefold()


@dataclass(frozen=True)
class OptionContents:
    name: str
    ingredients: Sequence[str]
    allergens: Sequence[str]


@dataclass(frozen=True)
class LineContents:
    name: str
    ingredients: Sequence[str]
    allergens: Sequence[str]
    options: Sequence[OptionContents] = ()

    @classmethod
    def of(
        cls,
        name: str,
        ingredients: Sequence[str],
        allergens: Sequence[str],
        options: Sequence[Mapping[str, Any]] = (),
    ) -> LineContents:
        """A line with its options' snapshots (``orders.pricing.Choice.snapshot``)."""
        return cls(
            name,
            ingredients,
            allergens,
            tuple(OptionContents(o["name"], o["ingredients"], o["allergens"]) for o in options),
        )


@dataclass(frozen=True)
class AllergyConflict:
    line: int  # 1-based position in the order
    product_name: str
    kind: str  # "ingredient" | "allergen"
    term: str
    allergy: str
    option: str | None = None  # the chosen option that brings the term, if not the product

    def describe(self) -> str:
        option = f' option "{self.option}"' if self.option is not None else ""
        return (
            f'line {self.line} "{self.product_name}"{option}: {self.kind} "{self.term}" '
            f'matches allergy "{self.allergy}"'
        )


def find_conflicts(
    allergies: Sequence[str], lines: Sequence[LineContents]
) -> list[AllergyConflict]:
    by_key = {normalize(a): a for a in allergies if normalize(a)}
    conflicts = []
    for position, line in enumerate(lines, start=1):
        sources: list[tuple[str | None, Sequence[str], Sequence[str]]] = [
            (None, line.ingredients, line.allergens),
            *((o.name, o.ingredients, o.allergens) for o in line.options),
        ]
        for option, ingredients, allergens in sources:
            for kind, terms in (("ingredient", ingredients), ("allergen", allergens)):
                for term in terms:
                    allergy = by_key.get(normalize(term))
                    if allergy is not None:
                        conflicts.append(
                            AllergyConflict(position, line.name, kind, term, allergy, option)
                        )
    return conflicts


def clashes(
    allergies: Collection[str], ingredients: Sequence[str], allergens: Sequence[str]
) -> bool:
    """Whether any ingredient or allergen tag matches one of ``allergies``."""
    keys = {normalize(a) for a in allergies} - {""}
    return any(normalize(term) in keys for term in (*ingredients, *allergens))


def cancellation_message(conflicts: Sequence[AllergyConflict]) -> str:
    return "Cancelled for your safety: " + "; ".join(c.describe() for c in conflicts) + "."
