"""Tickets: customer requests with a status lifecycle, comments and a classified need."""

from .views import bp

__all__ = ["bp"]
