"""Rasa's SQL event broker, writing a saved tracker's events in one commit.

Configured in endpoints.yml (``type: bot.event_broker.HelpdeskSQLEventBroker``)
with the same settings as Rasa's ``type: SQL``. Same ``events`` table, same
rows (``id, sender_id, data``: the event's JSON with its ``sender_id``), in
the same order, so ``crm handoffs follow`` reads it unchanged.

Rasa's broker commits each event on its own, synchronously on Rasa's event
loop: 5–12 commits per customer message. ``publish_many`` writes the events
of one tracker save in one transaction (``bot.tracker_store`` calls it);
``publish`` still writes one event at a time. Both return only once the rows
are committed, as Rasa's do: nothing handed to the broker is held in memory.
SQLite is tuned as the tracker store is (bot/sqlite.py).
"""

from __future__ import annotations

import json
import logging
from asyncio import AbstractEventLoop
from typing import Any, Dict, Iterable, Optional, Text

from rasa.core.brokers.sql import SQLEventBroker
from rasa.utils.endpoints import EndpointConfig

from bot import sqlite

logger = logging.getLogger(__name__)


class HelpdeskSQLEventBroker(SQLEventBroker):
    """``SQLEventBroker`` with ``publish_many`` and tuned SQLite."""

    def __init__(
        self,
        dialect: Text = "sqlite",
        host: Optional[Text] = None,
        port: Optional[int] = None,
        db: Text = "events.db",
        username: Optional[Text] = None,
        password: Optional[Text] = None,
        sqlite_synchronous: Optional[Text] = None,
    ) -> None:
        synchronous = sqlite.synchronous_mode(sqlite_synchronous)
        super().__init__(dialect, host, port, db, username, password)
        if sqlite.is_sqlite(self.engine) and sqlite.is_file_database(self.engine.url):
            url = self.engine.url
            self.engine.dispose()
            self.engine = sqlite.sqlite_engine(url, synchronous)
            self.sessionmaker.configure(bind=self.engine)

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig,
        event_loop: Optional[AbstractEventLoop] = None,
    ) -> "HelpdeskSQLEventBroker":
        return cls(host=broker_config.url, **broker_config.kwargs)

    def publish(self, event: Dict[Text, Any]) -> None:
        self.publish_many([event])

    def publish_many(self, events: Iterable[Dict[Text, Any]]) -> None:
        """Stores ``events`` in this order, in one transaction."""
        rows = [{"sender_id": event.get("sender_id"), "data": json.dumps(event)} for event in events]
        if not rows:
            return
        with self.session_scope() as session:
            # One executemany: the rows get their ids in this order.
            session.execute(self.SQLBrokerEvent.__table__.insert(), rows)
            session.commit()
