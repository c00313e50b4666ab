"""Inbound webhooks: signed events from other systems, POST /api/v1/inbound/{source}.

Sources are rows of ``inbound_sources``, added with `crm inbound add-source
NAME --kind shop|email`, which prints the source's secret once. Each kind
has its handlers (handlers.py); a source's events are verified with its
secret (Standard Webhooks), refused when older than 5 minutes, and handled
once per webhook-id. ``create_app`` registers the blueprint (views.py) and
the commands (commands.py).
"""
