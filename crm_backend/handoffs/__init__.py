"""Human handoff: the bot hands a conversation to a person (docs/architecture.md, "Human handoff")."""

from .views import bp

__all__ = ["bp"]
