"""Custom actions of the Northwind Goods assistant (run by `rasa run actions`)."""
