"""The allergen check: an allergy matches an ingredient or an allergen tag of a line when
both are equal once trimmed and case-folded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def normalize(term: str) -> str:
    return term.strip().casefold()


@dataclass(frozen=True)
class LineContents:
    name: str
    ingredients: Sequence[str]
    allergens: Sequence[str]


@dataclass(frozen=True)
class AllergyConflict:
    line: int  # 1-based position in the order
    product_name: str
    kind: str  # "ingredient" | "allergen"
    term: str
    allergy: str

    def describe(self) -> str:
        return (
            f'line {self.line} "{self.product_name}": {self.kind} "{self.term}" '
            f'matches allergy "{self.allergy}"'
        )


def find_conflicts(
    allergies: Sequence[str], lines: Sequence[LineContents]
) -> list[AllergyConflict]:
    by_key = {normalize(a): a for a in allergies if normalize(a)}
    conflicts = []
    for position, line in enumerate(lines, start=1):
        for kind, terms in (("ingredient", line.ingredients), ("allergen", line.allergens)):
            for term in terms:
                allergy = by_key.get(normalize(term))
                if allergy is not None:
                    conflicts.append(AllergyConflict(position, line.name, kind, term, allergy))
    return conflicts


def cancellation_message(conflicts: Sequence[AllergyConflict]) -> str:
    return "Cancelled for your safety: " + "; ".join(c.describe() for c in conflicts) + "."
