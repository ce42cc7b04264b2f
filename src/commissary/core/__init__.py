"""Shared plumbing: database, errors, security, jobs, mail, logging."""
