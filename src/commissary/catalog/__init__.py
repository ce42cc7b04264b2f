"""The menu: restaurants and their opening hours, categories and products (meals)."""
