"""Pages for people rather than programs: the demo shop front and the chat
widget's bundle (docs/architecture.md, "Pages served by the backend")."""

from .views import bp

__all__ = ["bp"]
