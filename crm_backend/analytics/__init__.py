"""Support analytics (issue 10): satisfaction, needs, bot containment, handoff
times, the customer mix and churn risk.

``queries.py`` computes each table for a period; ``views.py`` serves them at
/api/v1/analytics (scope ``analytics:read``), as JSON or CSV; the agent
console's dashboard (/console/dashboard) draws them. What each figure means:
docs/console.md "Dashboard".
"""

from .views import bp

__all__ = ["bp"]
