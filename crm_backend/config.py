"""Settings read from the environment, with the defaults of the design card."""

import os

DEFAULT_DATABASE_URL = "sqlite:///var/crm.db"


def settings_from_env() -> dict:
    """Return the Flask config keys that deployments may override."""
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        # Every API body is small JSON; a tight cap stops memory abuse early.
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", 1024 * 1024)),
        # Rasa's HTTP API, for agents' replies and resuming handed-off conversations.
        "RASA_URL": os.environ.get("RASA_URL", f"http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}"),
        "RASA_TOKEN": os.environ.get("RASA_TOKEN", ""),
    }
