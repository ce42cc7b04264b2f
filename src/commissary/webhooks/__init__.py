"""Webhooks: integrators' URLs that receive the order events they subscribe to, signed as
Standard Webhooks, retried with backoff, logged and replayable."""
