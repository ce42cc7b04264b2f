"""Notifications: e-mail (and later in-app messages and webhooks) about what happens."""
