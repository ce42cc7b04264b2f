"""Every ORM model, imported here so Alembic and the mappers see the whole schema."""

from commissary.models.api_key import ApiKey, ApiKeyUsage
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
from commissary.models.delivery import DeliveryRefusal
from commissary.models.idempotency import IdempotencyKey
from commissary.models.notification import Notification, NotificationKind
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
from commissary.models.webhook import DeliveryStatus, Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "ApiKeyUsage",
    "AuditLog",
    "Cart",
    "CartItem",
    "Category",
    "Conversation",
    "ConversationStatus",
    "DeliveryRefusal",
    "DeliveryStatus",
    "EmailVerification",
    "EventStreamHead",
    "Fulfillment",
    "IdempotencyKey",
    "KitchenMode",
    "Notification",
    "NotificationKind",
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
    "Webhook",
    "WebhookDelivery",
    "restaurant_owner",
    "restaurant_staff",
]
