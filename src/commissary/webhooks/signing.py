"""Webhook secrets and signatures, as Standard Webhooks (standardwebhooks.com) define them.

A secret is `whsec_` + base64 of 24 random bytes. Each delivery carries `webhook-id`,
`webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 of HMAC-SHA256 over
"{id}.{timestamp}.{body}", keyed with the secret's decoded bytes>`, so any Standard Webhooks
library verifies it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
