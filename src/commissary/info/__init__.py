"""The shop's public facts: the brand and its locations with their opening hours."""
