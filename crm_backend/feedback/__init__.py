"""Customer satisfaction: 1-5 scores with an optional, classified comment."""

from .views import bp

__all__ = ["bp"]
