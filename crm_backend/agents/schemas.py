from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length

from ..schemas import EmailAddress
from .service import MIN_PASSWORD_LENGTH


class AgentIn(Schema):
    email = EmailAddress(required=True, validate=Length(max=320))
    name = String(validate=Length(1, 200))
    password = String(required=True, validate=Length(MIN_PASSWORD_LENGTH, 200), load_only=True, metadata={"format": "password"})
    is_admin = Boolean(load_default=False)


class AgentOut(Schema):
    id = Integer(required=True)
    email = String(required=True)
    name = String(required=True)
    is_admin = Boolean(required=True)
    created_at = DateTime(required=True)


class AgentList(Schema):
    items = List(Nested(AgentOut), required=True)


class SessionsEnded(Schema):
    ended = Integer(required=True, metadata={"description": "How many of the agent's console sessions were still open."})
