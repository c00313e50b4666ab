"""Customers: the people who write to support."""

from .views import bp

__all__ = ["bp"]
