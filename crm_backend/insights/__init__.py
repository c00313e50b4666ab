"""Customer insights: lifetime value, loyalty, churn risk and segment (docs/insights.md).

``service`` is the entry point for the rest of the backend; ``formulas``,
``churn`` and ``segments`` are plain functions and models it applies.
"""
