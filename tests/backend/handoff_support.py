"""What the tests of the two handoff event sources (the SQL follower and the RabbitMQ consumer) share: a
claimed handoff of Ada's on conversation ``conv-1``, an events table shaped
like Rasa's SQL event broker's, and what reached the handoff and the dead
letters."""

from sqlalchemy import create_engine, select, text

from crm_backend.db import get_session, utcnow
from crm_backend.models import Customer, DeadLetter, Handoff, HandoffMessage


def add_claimed_handoff(app) -> None:
    with app.app_context():
        session = get_session()
        customer = Customer(name="Ada", email="ada@example.com")
        session.add(customer)
        session.flush()
        session.add(Handoff(conversation_id="conv-1", customer_id=customer.id, reason="refund", status="claimed", created_at=utcnow()))
        session.commit()


def events_database(directory):
    """A SQLite database shaped like Rasa's SQL event broker's."""
    engine = create_engine(f"sqlite:///{directory / 'events.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"))
    return engine


def handoff_messages(app) -> list[str]:
    with app.app_context():
        return list(get_session().scalars(select(HandoffMessage.text).order_by(HandoffMessage.id)))


def dead_letters(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [(row.source, row.position, row.error) for row in get_session().scalars(select(DeadLetter).order_by(DeadLetter.id))]
