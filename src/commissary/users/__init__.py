"""Accounts, sign-in, e-mail verification and roles."""
