"""Human handoff: the bot hands a conversation to a person (DESIGN "Human handoff")."""

from .views import bp

__all__ = ["bp"]
