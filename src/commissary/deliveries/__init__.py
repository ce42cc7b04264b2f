"""Couriers: offered deliveries, taking them, the handover code and live position."""
