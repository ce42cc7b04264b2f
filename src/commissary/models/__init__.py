"""Every ORM model, imported here so Alembic and the mappers see the whole schema."""

from commissary.models.auth import EmailVerification, RefreshToken
from commissary.models.ops import AuditLog, OutboxJob
from commissary.models.user import Role, User

__all__ = ["AuditLog", "EmailVerification", "OutboxJob", "RefreshToken", "Role", "User"]
