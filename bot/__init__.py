"""Code that runs inside the Rasa server process (bot environment, Python 3.10)."""
