"""Deliveries: orders brought to the customer by couriers."""
