"""Operations: health, readiness, the audit log and the outbox relay."""
