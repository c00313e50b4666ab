"""The demo shop's data: customers.json and tickets.json (crm_backend/seed.py),
and a generated two-year history (planner.py plans it, history.py writes it,
its words are in history.json)."""
