"""Who may manage webhooks: `developer` members (and admins), each their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from commissary.models import Role, User
from commissary.users.dependencies import require_role

# A signed-in `developer` or `admin`. With API keys (`X-API-Key`), a key needs the
# `webhooks:write` scope here: this dependency is where that check belongs.
Integrator = Annotated[User, Depends(require_role(Role.DEVELOPER))]
