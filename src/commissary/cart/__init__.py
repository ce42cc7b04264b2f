"""The cart: one per customer, filled line by line and checked out as an order."""
