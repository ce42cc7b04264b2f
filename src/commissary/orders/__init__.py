"""Orders: placement, the status state machine, the allergen check and the kitchen."""
