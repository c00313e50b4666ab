"""Support agents: the people who log in to the console and work tickets."""

from .views import bp

__all__ = ["bp"]
