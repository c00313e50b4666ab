"""Custom actions of the Northwind Goods assistant (run by `python -m actions.server`)."""
