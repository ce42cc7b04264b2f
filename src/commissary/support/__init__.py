"""Support chat: conversations between a member and the support team, live over the
realtime hub (``core.realtime``) and through REST."""
