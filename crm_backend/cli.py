"""The `crm` console script: Flask's CLI with the app's commands."""

from flask.cli import FlaskGroup

from . import create_app

cli = FlaskGroup(
    create_app=create_app,
    # .env loading would let a stray file override DATABASE_URL silently.
    load_dotenv=False,
    help="Manage the Northwind helpdesk CRM backend.",
)
