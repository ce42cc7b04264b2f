"""Every ORM model, imported here so Alembic and the mappers see the whole schema."""

from commissary.models.auth import EmailVerification, RefreshToken
from commissary.models.cart import Cart, CartItem
from commissary.models.catalog import (
    Category,
    KitchenMode,
    Option,
    OptionGroup,
    Product,
    Restaurant,
    restaurant_owner,
    restaurant_staff,
)
from commissary.models.idempotency import IdempotencyKey
from commissary.models.ops import AuditLog, OutboxJob
from commissary.models.order import (
    EventStreamHead,
    Fulfillment,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
)
from commissary.models.rating import Rating
from commissary.models.support import Conversation, ConversationStatus, SupportMessage
from commissary.models.user import Role, User

__all__ = [
    "AuditLog",
    "Cart",
    "CartItem",
    "Category",
    "Conversation",
    "ConversationStatus",
    "EmailVerification",
    "EventStreamHead",
    "Fulfillment",
    "IdempotencyKey",
    "KitchenMode",
    "Option",
    "OptionGroup",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrderStatus",
    "OutboxJob",
    "Product",
    "Rating",
    "RefreshToken",
    "Restaurant",
    "Role",
    "SupportMessage",
    "User",
    "restaurant_owner",
    "restaurant_staff",
]
