"""How the demo shop's two-year history is planned (crm_backend/demo/history.py writes it).

Customers follow personas (loyal, regular, occasional, new, lapsed, at risk)
that differ in how often and how much they buy, how often they get in touch
and how happy they are; lapsed and at-risk customers sour before they stop
buying (complaints, refunds, low scores), which is what the churn model is
meant to learn. Orders peak in November and December. The tables below are
the knobs; the words (names, products, phrasings) are in history.json.

Everything is drawn from the one ``random.Random`` given to the Planner, in
a fixed order, and dated relative to ``now``; nothing here touches the
database.
"""

import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import accumulate
from pathlib import Path
from zoneinfo import ZoneInfo

from ..handoffs import availability
from ..seed import DEMO_AGENT_EMAIL

WORDS = Path(__file__).parent / "history.json"
SPAN = timedelta(days=730)
GENERATED_CUSTOMERS = 400
CONVERSATIONS = 5000  # customers' chats, topped up with anonymous visitors' to about this
FIRST_ORDER_NUMBER = 200001
SUPPORT_OPENINGS = availability.parse_hours(availability.DEFAULT_HOURS)
SUPPORT_ZONE = ZoneInfo(availability.DEFAULT_TIMEZONE)


@dataclass(frozen=True)
class Persona:
    name: str
    share: float  # of generated customers
    joined_days_ago: tuple[int, int]
    stopped_days_ago: tuple[int, int] | None  # None: still buying
    order_gap_days: float  # mean time between orders
    regularity: float  # shape of the gamma-distributed gaps: higher is steadier
    basket_median: float  # GBP
    contacts_per_order: float
    csat: float  # shift of the mean score
    souring_days: int = 0  # before stopping: complaints, refunds and low scores


# Many customers joined before the two years shown; their orders start with them.
PERSONAS = (
    Persona("loyal", 0.12, (500, 1500), None, 30, 4.0, 66, 0.75, +0.4),
    Persona("regular", 0.33, (200, 1300), None, 62, 2.5, 44, 1.05, +0.1),
    Persona("occasional", 0.22, (120, 1300), None, 150, 1.5, 28, 1.3, 0.0),
    Persona("new", 0.10, (14, 85), None, 32, 2.0, 38, 1.3, +0.1),
    Persona("lapsed", 0.17, (400, 1200), (200, 540), 48, 2.0, 44, 1.4, -0.2, souring_days=100),
    Persona("at_risk", 0.06, (300, 1100), (55, 120), 40, 2.5, 50, 1.3, 0.0, souring_days=90),
)
PERSONA_BY_NAME = {persona.name: persona for persona in PERSONAS}


@dataclass(frozen=True)
class Need:
    label: str
    weight: float  # share of contacts in ordinary times
    souring_weight: float  # share while a customer sours
    after_order_days: tuple[float, float]  # when people ask, relative to the order
    handoff: float  # chance that a chat about it goes to a person
    chat_ticket: float  # chance that the assistant opens a ticket in a contained chat
    csat: float  # shift of the mean score
    priority: tuple[float, float, float, float]  # weights of low, normal, high, urgent
    december: float = 1.0  # weight factor in the Christmas rush


NEEDS = (
    Need("order_status", 17, 4, (2, 9), 0.3, 0.03, +0.2, (2, 7, 1, 0), december=1.6),
    Need("delivery_problem", 12, 16, (3, 12), 0.75, 0.3, -0.4, (1, 6, 3, 0.3), december=1.6),
    Need("damaged_or_defective", 9, 16, (2, 10), 0.8, 0.4, -0.3, (0, 5, 4, 0.4)),
    Need("wrong_or_missing_item", 7, 12, (2, 8), 0.75, 0.4, -0.4, (0, 6, 3, 0.2)),
    Need("return_or_exchange", 11, 8, (4, 25), 0.45, 0.15, 0.0, (2, 7, 1, 0), december=1.2),
    Need("refund", 9, 14, (8, 30), 0.75, 0.3, -0.3, (1, 6, 3, 0.3)),
    Need("billing", 4, 5, (0, 6), 0.75, 0.3, -0.3, (0, 6, 3, 0.5)),
    Need("payment_problem", 4, 3, (-1, 0), 1.0, 0.3, -0.4, (0, 5, 4, 0.5)),
    Need("account_access", 5, 2, (-10, 20), 0.6, 0.2, 0.0, (3, 6, 1, 0)),
    Need("cancel_order", 4, 4, (0, 1), 0.55, 0.2, -0.1, (1, 7, 2, 0)),
    Need("change_order", 4, 1, (0, 1), 0.55, 0.2, +0.1, (1, 8, 1, 0)),
    Need("product_question", 7, 1, (-6, -1), 0.3, 0.02, +0.3, (6, 4, 0, 0)),
    Need("service_complaint", 2.5, 12, (3, 25), 1.0, 0.3, -1.2, (0, 3, 6, 1)),
    Need("praise", 2.5, 0, (3, 14), 0.1, 0.0, +0.8, (8, 2, 0, 0)),
    Need("other", 2, 2, (-20, 30), 0.4, 0.05, 0.0, (5, 5, 0, 0)),
)
NEED_BY_LABEL = {need.label: need for need in NEEDS}
# What visitors who never say who they are ask the assistant about.
ANONYMOUS_NEEDS = {"product_question": 5, "order_status": 3, "return_or_exchange": 2, "other": 2, "delivery_problem": 1}
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = {"chat": 0.82, "email": 0.12, "web": 0.06}
CHANNEL_NAMES, CHANNEL_WEIGHTS = tuple(CHANNELS), tuple(accumulate(CHANNELS.values()))


@dataclass(frozen=True)
class AgentProfile:
    name: str
    email: str
    share: float  # of handoffs and tickets
    csat: float  # shift of the mean score of what they handle
    pace: float  # factor on handle times
    joined_days_ago: int


# Created with an unusable random password: they exist for the figures by
# agent, nobody signs in as them. The demo agent takes part too.
AGENTS = (
    AgentProfile("Priya Shah", "priya.shah@example.com", 3.0, +0.3, 0.85, 730),
    AgentProfile("Tom Becker", "tom.becker@example.com", 2.5, -0.35, 1.25, 730),
    AgentProfile("Amara Okafor", "amara.okafor@example.com", 2.0, +0.1, 1.0, 520),
    AgentProfile("Luis Ortega", "luis.ortega@example.com", 2.0, 0.0, 1.1, 280),
)
DEMO_AGENT = AgentProfile("Demo Agent", DEMO_AGENT_EMAIL, 1.0, 0.0, 1.0, 730)

# Seasonality of orders by month (Black Friday, Christmas, January sales).
SEASON = {1: 1.05, 2: 0.9, 3: 0.95, 4: 1.0, 5: 1.0, 6: 0.95, 7: 0.9, 8: 0.9, 9: 1.0, 10: 1.05, 11: 1.35, 12: 1.7}
# Relative weight of each hour (UTC, about UK time) for orders and for contacts.
# (Cumulative, as random.choices takes them fastest.)
ORDER_HOURS = tuple(accumulate((1, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4, 4, 5, 5, 4, 4, 4, 5, 6, 8, 9, 8, 5, 2)))
CONTACT_HOURS = tuple(accumulate((0.5, 0.3, 0.2, 0.2, 0.2, 0.4, 1, 3, 6, 8, 8, 8, 7, 7, 7, 7, 6, 5, 4, 4, 3, 2, 1.5, 1)))
# Parcels arrive in the day (UTC, about UK time).
DELIVERY_HOURS = tuple(accumulate((0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 6, 6, 6, 6, 5, 5, 4, 3, 2, 1, 0, 0, 0, 0)))
BASE_CSAT = 4.3
SOURING_CSAT_DROP = 1.8
LONG_WAIT_MINUTES = 15


@dataclass(eq=False)
class Shopper:
    name: str
    email: str
    phone: str | None
    persona: Persona
    joined: datetime
    stopped: datetime | None
    customer_id: int | None = None  # known for the demo customers; set on insert for generated ones

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def souring(self, at: datetime) -> bool:
        if self.stopped is None or not self.persona.souring_days:
            return False
        return at >= self.stopped - timedelta(days=self.persona.souring_days)


@dataclass(eq=False)
class PlannedOrder:
    shopper: Shopper
    ordered_at: datetime
    amount: Decimal
    product: str
    status: str = "fulfilled"
    refunded_amount: Decimal = Decimal("0")
    refunded_at: datetime | None = None
    external_id: str = ""
    # Fulfilment (plan_fulfilment): None until shipped / delivered.
    shipped_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    estimated_delivery: date | None = None
    delivered_at: datetime | None = None


@dataclass(eq=False)
class Contact:
    """A customer getting in touch about an order."""

    shopper: Shopper
    need: Need
    at: datetime
    channel: str
    order: PlannedOrder
    souring: bool


@dataclass(eq=False)
class PlannedConversation:
    shopper: Shopper | None
    started_at: datetime
    last_message_at: datetime
    user_messages: int
    handed_off: bool = False
    conversation_id: str = ""


@dataclass(eq=False)
class PlannedTicket:
    shopper: Shopper
    need: Need
    subject: str
    description: str
    status: str
    priority: str
    channel: str
    created_at: datetime
    updated_at: datetime
    assignee_id: int | None
    conversation: PlannedConversation | None
    id: int | None = None


@dataclass(eq=False)
class PlannedHandoff:
    conversation: PlannedConversation
    shopper: Shopper
    need: Need
    reason: str
    agent_id: int
    created_at: datetime
    claimed_at: datetime
    resolved_at: datetime
    transcript: list[dict]
    messages: list[dict]  # sender, text, created_at, agent_id
    ticket: PlannedTicket | None = None
    id: int | None = None


@dataclass(eq=False)
class PlannedFeedback:
    score: int
    comment: str | None
    need: Need
    created_at: datetime
    channel: str
    shopper: Shopper | None
    agent_id: int | None = None
    conversation: PlannedConversation | None = None
    handoff: PlannedHandoff | None = None


@dataclass
class Plan:
    shoppers: list[Shopper] = field(default_factory=list)  # generated ones, to insert
    demo_shoppers: list[Shopper] = field(default_factory=list)
    orders: list[PlannedOrder] = field(default_factory=list)
    conversations: list[PlannedConversation] = field(default_factory=list)
    tickets: list[PlannedTicket] = field(default_factory=list)
    handoffs: list[PlannedHandoff] = field(default_factory=list)
    feedback: list[PlannedFeedback] = field(default_factory=list)


@dataclass(frozen=True)
class StaffMember:
    profile: AgentProfile
    agent_id: int


@dataclass(frozen=True)
class Carrier:
    name: str
    share: float
    transit_days: tuple[int, int]  # promised, after shipping
    tracking_digits: int
    tracking_format: str  # {digits}
    tracking_url: str  # {tracking}


# The shop's couriers (their real tracking pages; the numbers are made up).
CARRIERS = (
    Carrier("Royal Mail", 0.4, (1, 3), 9, "JB{digits}GB", "https://www.royalmail.com/track-your-item#/tracking-results/{tracking}"),
    Carrier("DPD", 0.3, (1, 2), 14, "{digits}", "https://track.dpd.co.uk/parcels/{tracking}"),
    Carrier("Evri", 0.2, (2, 4), 14, "H01HYA{digits}", "https://www.evri.com/track/parcel/{tracking}"),
    Carrier("DHL", 0.1, (1, 3), 10, "{digits}", "https://www.dhl.com/gb-en/home/tracking.html?tracking-id={tracking}"),
)
LATE_DELIVERIES = 0.06  # share of parcels that arrive after the promised day


def plan_fulfilment(orders: list[PlannedOrder], rng: random.Random, now: datetime) -> None:
    """Ship every order that is not merely placed or paid, and deliver those whose parcel has arrived by ``now``.

    Drawn from a generator of its own (not the Planner's), so that the rest
    of the history is the same with or without it.
    """
    weights = tuple(accumulate(carrier.share for carrier in CARRIERS))
    for order in orders:
        if order.status in ("placed", "paid"):
            continue
        carrier = rng.choices(CARRIERS, cum_weights=weights)[0]
        shipped_at = order.ordered_at + timedelta(hours=rng.uniform(6, 40))
        if shipped_at >= now:
            continue
        promised = rng.randint(*carrier.transit_days)
        late = rng.randint(1, 4) if rng.random() < LATE_DELIVERIES else 0
        tracking = carrier.tracking_format.format(digits="".join(str(rng.randint(0, 9)) for _ in range(carrier.tracking_digits)))
        order.shipped_at, order.carrier, order.tracking_number = shipped_at, carrier.name, tracking
        order.tracking_url = carrier.tracking_url.format(tracking=tracking)
        order.estimated_delivery = (shipped_at + timedelta(days=promised)).date()
        delivered_at = _at_hour(rng, shipped_at + timedelta(days=promised + late), DELIVERY_HOURS)
        if delivered_at < now:
            order.delivered_at = max(delivered_at, shipped_at + timedelta(hours=12))


def lifetime(rng: random.Random, persona: Persona, now: datetime) -> tuple[datetime, datetime | None]:
    """When a customer of ``persona`` joined, and when they stopped buying (None: they did not)."""
    joined_days = rng.uniform(*persona.joined_days_ago)
    if persona.stopped_days_ago is None:
        return now - timedelta(days=joined_days), None
    # At least four months of buying within the history before stopping.
    stopped_days = min(rng.uniform(*persona.stopped_days_ago), min(joined_days, SPAN.days) - 120)
    return now - timedelta(days=joined_days), now - timedelta(days=stopped_days)


class Planner:
    """Plans the whole history in memory; all randomness is drawn here, in a fixed order."""

    def __init__(self, rng: random.Random, words: dict, now: datetime, staff: list[StaffMember]):
        self.rng = rng
        self.words = words
        self.now = now
        self.start = now - SPAN
        self.staff = staff
        self.history = Plan()

    def plan(self, demo_shoppers: list[Shopper]) -> Plan:
        history = self.history
        history.shoppers = self._generated_shoppers()
        history.demo_shoppers = demo_shoppers
        for shopper in history.shoppers + demo_shoppers:
            history.orders.extend(self._orders(shopper))
        history.orders.sort(key=lambda order: order.ordered_at)
        for number, order in enumerate(history.orders, start=FIRST_ORDER_NUMBER):
            order.external_id = f"NW-{number}"
        # The demo customers keep exactly their tickets of tickets.json: no contacts.
        demo = set(demo_shoppers)
        contacts = [contact for order in history.orders if order.shopper not in demo for contact in self._contacts(order)]
        for contact in sorted(contacts, key=lambda contact: contact.at):
            if contact.channel == "chat":
                self._chat(contact)
            else:
                self._written_ticket(contact)
        for _ in range(max(0, CONVERSATIONS - len(history.conversations))):
            self._anonymous_chat()
        history.conversations.sort(key=lambda conversation: conversation.started_at)
        for number, conversation in enumerate(history.conversations, start=1):
            conversation.conversation_id = f"demo-{number}"
        history.tickets.sort(key=lambda ticket: ticket.created_at)
        history.handoffs.sort(key=lambda handoff: handoff.created_at)
        history.feedback.sort(key=lambda feedback: feedback.created_at)
        return history

    # --- customers and orders ------------------------------------------------

    def _generated_shoppers(self) -> list[Shopper]:
        personas = [
            persona for persona in PERSONAS for _ in range(round(persona.share * GENERATED_CUSTOMERS))
        ][:GENERATED_CUSTOMERS]
        self.rng.shuffle(personas)
        emails: set[str] = set()
        shoppers = []
        for persona in personas:
            name, email = self._identity(emails)
            joined, stopped = lifetime(self.rng, persona, self.now)
            shoppers.append(Shopper(name, email, self._phone(), persona, joined, stopped))
        return shoppers

    def _identity(self, taken: set[str]) -> tuple[str, str]:
        rng = self.rng
        first, last = rng.choice(self.words["first_names"]), rng.choice(self.words["last_names"])
        given, family = _ascii(first), _ascii(last)
        local = rng.choice(
            [
                f"{given}.{family}",
                f"{given}{family}",
                f"{given[0]}{family}",
                f"{given}.{family}{rng.randint(1, 99)}",
                f"{given}_{family}{rng.randint(60, 99)}",
            ]
        )
        domain = rng.choice(self.words["email_domains"])
        email = f"{local}@{domain}"
        while email in taken:
            email = f"{local}{rng.randint(2, 999)}@{domain}"
        taken.add(email)
        return f"{first} {last}", email

    def _phone(self) -> str | None:
        # Ofcom's numbers for drama: they never ring anyone.
        draw = self.rng.random()
        if draw < 0.55:
            return f"+447700900{self.rng.randint(0, 999):03d}"
        if draw < 0.65:
            return f"+442079460{self.rng.randint(0, 999):03d}"
        return None

    def _orders(self, shopper: Shopper) -> list[PlannedOrder]:
        rng, persona = self.rng, shopper.persona
        end = min(shopper.stopped or self.now, self.now - timedelta(hours=2))
        if shopper.joined >= self.start:
            day = shopper.joined + timedelta(days=rng.uniform(0, 3))
        else:
            day = _shopping_days_after(self.start, persona.order_gap_days * rng.random())
        orders = []
        while day < end:
            ordered_at = min(_at_hour(rng, day, ORDER_HOURS), end)
            orders.append(self._order(shopper, ordered_at))
            gap = persona.order_gap_days * rng.gammavariate(persona.regularity, 1 / persona.regularity)
            day = _shopping_days_after(day, max(gap, 1.0))
        return orders

    def _order(self, shopper: Shopper, ordered_at: datetime) -> PlannedOrder:
        rng = self.rng
        gifts = 1.15 if ordered_at.month == 12 else 1.0
        value = rng.lognormvariate(math.log(shopper.persona.basket_median), 0.55) * gifts
        order = PlannedOrder(shopper, ordered_at, _money(min(max(value, 8.0), 400.0)), rng.choice(self.words["products"]))
        full, partial = (0.12, 0.12) if shopper.souring(ordered_at) else (0.025, 0.04)
        draw, refunded_at = rng.random(), ordered_at + timedelta(days=rng.uniform(4, 28))
        if draw < full + partial and refunded_at < self.now:
            order.refunded_at = refunded_at
            order.status = "refunded" if draw < full else "partially_refunded"
            order.refunded_amount = order.amount if draw < full else _money(float(order.amount) * rng.uniform(0.15, 0.6))
        elif self.now - ordered_at < timedelta(days=1):
            order.status = "placed" if rng.random() < 0.2 else "paid"
        elif self.now - ordered_at < timedelta(days=3):
            order.status = "paid"
        return order

    # --- contacts: chats, tickets, handoffs, scores --------------------------

    def _contacts(self, order: PlannedOrder) -> list[Contact]:
        rng, shopper = self.rng, order.shopper
        souring = shopper.souring(order.ordered_at)
        rate = shopper.persona.contacts_per_order * (2.2 if souring else 1.0)
        contacts = []
        for _ in range(_poisson(rng, rate)):
            need = self._need(souring, order.ordered_at.month)
            day = order.ordered_at + timedelta(days=rng.uniform(*need.after_order_days))
            at = _at_hour(rng, day, CONTACT_HOURS)
            channel = rng.choices(CHANNEL_NAMES, cum_weights=CHANNEL_WEIGHTS)[0]
            if self.start <= at <= self.now - timedelta(hours=3):
                contacts.append(Contact(shopper, need, at, channel, order, shopper.souring(at)))
        return contacts

    def _need(self, souring: bool, month: int) -> Need:
        return self.rng.choices(NEEDS, cum_weights=_need_weights(souring, month == 12))[0]

    def _chat(self, contact: Contact) -> None:
        rng = self.rng
        wants_person = rng.random() < contact.need.handoff
        opens_ticket = rng.random() < contact.need.chat_ticket
        if wants_person and availability.within_hours(SUPPORT_OPENINGS, contact.at, SUPPORT_ZONE):
            self._handoff(contact)
            return
        # Outside support hours the assistant offers a ticket instead of a person.
        conversation = self._conversation(contact.shopper, contact.at)
        if (wants_person and rng.random() < 0.5) or opens_ticket:
            self._ticket(contact, conversation=conversation, channel="chat")
        if rng.random() < 0.35:
            self._score(contact.need, conversation.last_message_at, "chat", contact.shopper, contact.souring, conversation=conversation)

    def _conversation(self, shopper: Shopper | None, at: datetime) -> PlannedConversation:
        ended = at + timedelta(minutes=self.rng.uniform(1, 9))
        conversation = PlannedConversation(shopper, at, ended, self.rng.randint(1, 5))
        self.history.conversations.append(conversation)
        return conversation

    def _anonymous_chat(self) -> None:
        rng = self.rng
        while True:  # thinning: busier in December and as the shop grows
            at = self.start + (self.now - timedelta(hours=3) - self.start) * rng.random()
            growth = 0.75 + 0.5 * (at - self.start) / SPAN  # up to 1.25
            if rng.random() * max(SEASON.values()) * 1.25 < SEASON[at.month] * growth:
                break
        at = _at_hour(rng, at, CONTACT_HOURS)
        if at > self.now - timedelta(hours=3):
            at -= timedelta(days=1)
        conversation = self._conversation(None, at)
        need = NEED_BY_LABEL[rng.choices(list(ANONYMOUS_NEEDS), weights=list(ANONYMOUS_NEEDS.values()))[0]]
        if rng.random() < 0.3:
            self._score(need, conversation.last_message_at, "chat", None, False, conversation=conversation)

    def _handoff(self, contact: Contact) -> None:
        rng, shopper = self.rng, contact.shopper
        created = contact.at + timedelta(minutes=rng.uniform(1, 4))
        waited = self._wait_minutes(created)
        claimed = created + timedelta(minutes=waited)
        member = self._agent(created)
        handle = min(max(rng.lognormvariate(math.log(13), 0.45) * member.profile.pace, 4.0), 50.0)
        resolved = claimed + timedelta(minutes=handle)
        fill = self._filler(contact, member)
        opener = self._text(contact, "descriptions", fill)
        transcript = [
            {"sender": "customer", "text": opener, "timestamp": contact.at.isoformat()},
            {"sender": "bot", "text": self.words["bot_handoff_line"], "timestamp": created.isoformat()},
        ]
        messages = self._handoff_messages(contact, member, claimed, resolved, fill)
        user_messages = 2 + sum(message["sender"] == "customer" for message in messages)
        conversation = PlannedConversation(shopper, contact.at, resolved, user_messages, handed_off=True)
        self.history.conversations.append(conversation)
        handoff = PlannedHandoff(
            conversation, shopper, contact.need, opener, member.agent_id, created, claimed, resolved, transcript, messages
        )
        self.history.handoffs.append(handoff)
        if rng.random() < 0.15:
            handoff.ticket = self._ticket(contact, conversation=conversation, channel="chat", assignee_id=member.agent_id)
        if rng.random() < 0.5:
            self._score(
                contact.need, resolved + timedelta(seconds=rng.uniform(20, 90)), "chat", shopper, contact.souring,
                member=member, waited=waited, conversation=conversation, handoff=handoff,
            )

    def _handoff_messages(
        self, contact: Contact, member: StaffMember, claimed: datetime, resolved: datetime, fill: dict[str, str]
    ) -> list[dict]:
        """2-4 lines after the handoff: the agent greets, maybe a reply, the fix, maybe thanks."""
        rng, lines = self.rng, self.words["handoff"]
        said = [("agent", rng.choice(lines["greetings"]))]
        if rng.random() < 0.6:
            said.append(("customer", rng.choice(lines["customer_replies"])))
        said.append(("agent", rng.choice(lines["resolutions"][contact.need.label])))
        if rng.random() < 0.5:
            said.append(("customer", rng.choice(lines["thanks"])))
        step = (resolved - claimed) / len(said)
        return [
            {
                "sender": sender,
                "text": text.format(**fill),
                "agent_id": member.agent_id if sender == "agent" else None,
                "created_at": claimed + step * index + timedelta(seconds=rng.uniform(5, 40)),
            }
            for index, (sender, text) in enumerate(said)
        ]

    def _wait_minutes(self, at: datetime) -> float:
        rng = self.rng
        if rng.random() < 0.06:  # the long tail: everyone busy, lunch, a Monday morning
            return rng.uniform(15, 75)
        rush = 1.4 if at.month == 12 else 1.0
        return max(rng.lognormvariate(math.log(4), 0.7) * rush, 0.3)

    def _written_ticket(self, contact: Contact) -> None:
        ticket = self._ticket(contact, conversation=None, channel=contact.channel)
        if ticket.status in ("solved", "closed") and self.rng.random() < 0.35:
            at = ticket.updated_at + timedelta(hours=self.rng.uniform(1, 48))
            if at < self.now:
                member = next((m for m in self.staff if m.agent_id == ticket.assignee_id), None)
                self._score(contact.need, at, contact.channel, contact.shopper, contact.souring, member=member)

    def _ticket(
        self, contact: Contact, *, conversation: PlannedConversation | None, channel: str, assignee_id: int | None = None
    ) -> PlannedTicket:
        rng, need = self.rng, contact.need
        created = contact.at + timedelta(minutes=rng.uniform(2, 10) if channel == "chat" else 0)
        median_hours = (36 if channel == "chat" else 72) * (1.6 if contact.souring else 1.0)
        solved = created + timedelta(hours=min(rng.lognormvariate(math.log(median_hours), 1.0), 24 * 20))
        priority = rng.choices(PRIORITIES, weights=need.priority)[0]
        if contact.souring and priority == "normal" and rng.random() < 0.3:
            priority = "high"
        if solved <= self.now:
            status = "closed" if self.now - solved > timedelta(days=7) and rng.random() < 0.6 else "solved"
            updated = solved
            assignee_id = assignee_id or self._agent(created).agent_id
        else:
            status = rng.choices(("open", "pending", "on_hold"), weights=(5, 3, 1))[0]
            updated = created + (self.now - created) * rng.random()
            if assignee_id is None and rng.random() < 0.5:
                assignee_id = self._agent(created).agent_id
        fill = self._filler(contact)
        ticket = PlannedTicket(
            contact.shopper, need, self._text(contact, "subjects", fill), self._text(contact, "descriptions", fill),
            status, priority, channel, created, updated, assignee_id, conversation,
        )
        self.history.tickets.append(ticket)
        return ticket

    def _score(
        self,
        need: Need,
        at: datetime,
        channel: str,
        shopper: Shopper | None,
        souring: bool,
        *,
        member: StaffMember | None = None,
        waited: float = 0.0,
        conversation: PlannedConversation | None = None,
        handoff: PlannedHandoff | None = None,
    ) -> None:
        """A 1-5 score: by persona, need and agent, lower after a long wait, drifting up over the years."""
        rng = self.rng
        mean = BASE_CSAT + need.csat + self._trend(at)
        if shopper is not None:
            mean += shopper.persona.csat
        if souring:
            mean -= SOURING_CSAT_DROP
        if member is not None:
            mean += member.profile.csat
        if waited > LONG_WAIT_MINUTES:
            mean -= 0.6
        score = min(5, max(1, round(rng.gauss(mean, 0.9))))
        self.history.feedback.append(
            PlannedFeedback(
                score, self._comment(score, member), need, at, channel, shopper,
                member.agent_id if member else None, conversation, handoff,
            )
        )

    def _trend(self, at: datetime) -> float:
        # Slowly better over the two years, with a dip in the Christmas rush.
        years_ago = (self.now - at) / SPAN
        return 0.12 - 0.4 * years_ago - (0.3 if at.month == 12 else 0.0)

    def _comment(self, score: int, member: StaffMember | None) -> str | None:
        rng = self.rng
        if rng.random() >= (0.45 if score <= 2 else 0.2):
            return None
        band = "negative" if score <= 2 else "neutral" if score == 3 else "positive"
        choices = [text for text in self.words["comments"][band] if member is not None or "{agent}" not in text]
        agent = member.profile.name.split()[0] if member else ""
        return rng.choice(choices).format(agent=agent)

    def _agent(self, at: datetime) -> StaffMember:
        on_staff = [m for m in self.staff if at >= self.now - timedelta(days=m.profile.joined_days_ago)] or self.staff
        return self.rng.choices(on_staff, weights=[m.profile.share for m in on_staff])[0]

    def _filler(self, contact: Contact, member: StaffMember | None = None) -> dict[str, str]:
        return {
            "first": contact.shopper.first_name,
            "agent": member.profile.name.split()[0] if member else "",
            "product": contact.order.product,
            "order": contact.order.external_id,
            "courier": self.rng.choice(self.words["couriers"]),
            "days": str(self.rng.randint(3, 14)),
        }

    def _text(self, contact: Contact, kind: str, fill: dict[str, str]) -> str:
        template = self.rng.choice(self.words["needs"][contact.need.label][kind])
        text = template.format(**fill)
        return text[0].upper() + text[1:]


@cache
def _need_weights(souring: bool, december: bool) -> tuple[float, ...]:
    return tuple(accumulate((need.souring_weight if souring else need.weight) * (need.december if december else 1.0) for need in NEEDS))


def _shopping_days_after(start: datetime, days: float) -> datetime:
    """When ``days`` of ordinary shopping have passed after ``start``: time runs
    faster in busy months (SEASON), so orders bunch up there."""
    at = start
    while True:
        month_end = (at.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        room = (month_end - at) / timedelta(days=1) * SEASON[at.month]
        if days <= room:
            return at + timedelta(days=days / SEASON[at.month])
        days -= room
        at = month_end


def _at_hour(rng: random.Random, day: datetime, cumulative_hour_weights: tuple[float, ...]) -> datetime:
    hour = rng.choices(range(24), cum_weights=cumulative_hour_weights)[0]
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60), microsecond=0)


def _poisson(rng: random.Random, rate: float) -> int:
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(character for character in plain.lower() if character.isalnum())
