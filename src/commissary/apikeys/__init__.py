"""Integrators' API keys: scoped, rate-limited credentials sent as ``X-API-Key``."""
