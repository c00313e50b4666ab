"""Orders: a customer's orders with their fulfilment, read by integrations and the assistant."""

from .views import bp

__all__ = ["bp"]
