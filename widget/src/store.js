// The conversation as every tab of the site sees it: session id, transcript
// and the customer's messages still waiting for a connection, kept in
// localStorage so a reload or a new tab continues the same conversation.
//
// Every customer message has an id of its own (`id`), sent to Rasa as its
// `message_id`. A sent message is `awaiting` until it is answered; one still
// awaiting after a reconnect or RESEND_AFTER_MS is sent again once
// (`resentAt`), and Rasa answers the copy of a message it already processed
// by replaying that answer (bot/channels.py, docs/widget.md). Answered means
// `message_handled` from a server that says it sends it (our Rasa channel):
// a first reply may be cut off before the rest, so the replies that came
// are counted (`replies`) and a replay shows only what comes after them.
// From a stock server, the first reply is the answer.
//
// Tabs share one record; each change is a read-modify-write of it, and the
// other tabs learn about it from the `storage` event.
//
// The session id and its session token are the server's (`session_confirm`);
// none is stored before the first. `epoch` is random per conversation: a
// reset (sign-out, another customer) gives a new one, which is how the other
// tabs notice it. `owner` marks a signed-in customer's conversation
// (identity.js); `maxChars` is the server's message size limit.
//
// `handoff` is a person's part in the conversation (docs/widget.md, "A person
// in the chat"): null while the assistant has it, `{state: "queued",
// position, expectedWaitSeconds}` while waiting for a person, `{state:
// "joined", agentName, typingAt}` while one has it. Joining, the queue and
// leaving are also lines of the transcript (`from: "event"`).

const MAX_MESSAGES = 200;
// A reply this late is not coming (e.g. a human agent took over and the bot
// stays silent): stop showing the typing indicator.
export const TYPING_TIMEOUT_MS = 20000;
const DUPLICATE_WINDOW_MS = 3000;
// The agent's console signals typing every few seconds while they type; past
// this without another signal or a message they have stopped.
export const AGENT_TYPING_MS = 7000;
// No reply this long after sending, while connected: send it again, once.
export const RESEND_AFTER_MS = 20000;
// A message older than this is not sent again, even unanswered: the customer
// has moved on (or a person has the conversation and answers when they can).
export const RESEND_WITHIN_MS = 10 * 60 * 1000;

/** Characters as the server counts them (code points, not UTF-16 units). */
export function charCount(text) {
  let count = 0;
  for (const _ of text || "") count += 1;
  return count;
}

function randomId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** localStorage when the browser allows it, otherwise a per-page stand-in. */
function pickStorage(win) {
  try {
    const storage = win.localStorage;
    const probe = "helpdesk-chat:probe";
    storage.setItem(probe, "1");
    storage.removeItem(probe);
    return storage;
  } catch {
    const items = new Map();
    return {
      getItem: (key) => (items.has(key) ? items.get(key) : null),
      setItem: (key, value) => items.set(key, String(value)),
      removeItem: (key) => items.delete(key),
    };
  }
}

// The message size limit when the server does not say (a stock Rasa server).
export const DEFAULT_MAX_CHARS = 2000;

function emptyState() {
  return {
    sessionId: null,
    sessionToken: null,
    owner: null,
    epoch: randomId(),
    messages: [],
    unread: 0,
    connection: "idle",
    maxChars: null,
    handoff: null,
  };
}

function readHandoff(value) {
  if (!value || typeof value !== "object") return null;
  if (value.state === "queued") {
    return {
      state: "queued",
      position: Number.isInteger(value.position) ? value.position : null,
      expectedWaitSeconds: typeof value.expectedWaitSeconds === "number" ? value.expectedWaitSeconds : null,
    };
  }
  if (value.state === "joined" && typeof value.agentName === "string" && value.agentName) {
    return { state: "joined", agentName: value.agentName, typingAt: typeof value.typingAt === "number" ? value.typingAt : null };
  }
  return null;
}

/** "about 4 minutes" (`short`: "~4 min") for a wait in seconds. */
export function describeWait(seconds, short = false) {
  if (seconds < 60) return short ? "under 1 min" : "less than a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return short ? `~${minutes} min` : `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
  const hours = Math.round(minutes / 60);
  return short ? `~${hours} h` : `about ${hours} hour${hours === 1 ? "" : "s"}`;
}

/** The transcript's line for a place in the queue. */
export function queueText({ position = null, expectedWaitSeconds = null } = {}) {
  const place =
    position === 1
      ? "You're next in the queue for a person."
      : position
        ? `You're number ${position} in the queue for a person.`
        : "You're in the queue for a person.";
  return typeof expectedWaitSeconds === "number" ? `${place} Expected wait: ${describeWait(expectedWaitSeconds)}.` : place;
}

const optionalString = (value) => (typeof value === "string" && value ? value : null);

function customerMessage({ text, payload = null, hidden = false }) {
  const message = { id: randomId(), from: "customer", text, ts: Date.now(), status: "queued" };
  if (payload) message.payload = payload;
  if (hidden) message.hidden = true;
  return message;
}

function isMessage(m) {
  return m && typeof m.id === "string" && typeof m.from === "string" && typeof m.ts === "number";
}

export class ConversationStore {
  constructor(key, win = window) {
    this.key = key;
    this.storage = pickStorage(win);
    this.listeners = new Set();
    this.state = this.read();
    if (!this.storage.getItem(key)) this.write(this.state);
    win.addEventListener("storage", (event) => {
      if (event.key !== this.key) return;
      this.state = this.read();
      this.notify();
    });
  }

  read() {
    try {
      const parsed = JSON.parse(this.storage.getItem(this.key) || "null");
      if (parsed && typeof parsed === "object" && Array.isArray(parsed.messages)) {
        return {
          // A record of an older widget has its own random id and no token:
          // a stock server continues it, ours issues a new session.
          sessionId: optionalString(parsed.sessionId),
          sessionToken: optionalString(parsed.sessionToken),
          owner: optionalString(parsed.owner),
          epoch: optionalString(parsed.epoch) || "v1",
          messages: parsed.messages.filter(isMessage),
          unread: Number.isInteger(parsed.unread) ? parsed.unread : 0,
          connection: typeof parsed.connection === "string" ? parsed.connection : "idle",
          maxChars: Number.isInteger(parsed.maxChars) && parsed.maxChars > 0 ? parsed.maxChars : null,
          handoff: readHandoff(parsed.handoff),
        };
      }
    } catch {
      // A corrupt record starts a new conversation rather than breaking the page.
    }
    return emptyState();
  }

  write(state) {
    try {
      this.storage.setItem(this.key, JSON.stringify(state));
    } catch {
      // Quota exceeded: keep the newer half and try once more.
      state.messages = state.messages.slice(-Math.floor(MAX_MESSAGES / 2));
      try {
        this.storage.setItem(this.key, JSON.stringify(state));
      } catch {
        /* the in-memory state still works for this page */
      }
    }
  }

  /** Applies `change(state)` to the freshest copy, saves it and notifies. */
  update(change) {
    const state = this.read();
    const result = change(state);
    if (state.messages.length > MAX_MESSAGES) state.messages = state.messages.slice(-MAX_MESSAGES);
    this.state = state;
    this.write(state);
    this.notify();
    return result;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify() {
    for (const listener of this.listeners) listener(this.state);
  }

  get sessionId() {
    return this.state.sessionId;
  }

  get sessionToken() {
    return this.state.sessionToken;
  }

  get epoch() {
    return this.state.epoch;
  }

  get owner() {
    return this.state.owner;
  }

  /** The longest message the server takes, in characters (code points, as Python counts them). */
  get maxChars() {
    return this.state.maxChars || DEFAULT_MAX_CHARS;
  }

  /**
   * A new, empty conversation (sign-out, or another customer): no session,
   * no transcript, nothing of whose it was; `first` ({text, payload, hidden},
   * the greeting) queued in the same write, so that a tab which reacts to
   * the reset by writing cannot overwrite it. Returns the new epoch.
   */
  reset(first = null) {
    return this.update((state) => {
      const { connection, maxChars } = state;
      Object.assign(state, emptyState(), { connection, maxChars });
      if (first) state.messages.push(customerMessage(first));
      return state.epoch;
    });
  }

  /**
   * The session the server confirmed. Returns true when it is not the one
   * stored: the server did not take the stored one (no valid session token,
   * or it was forgotten), so that conversation's transcript goes; only what
   * the customer typed and never sent stays, to go out in the new one.
   */
  adoptSession(sessionId, sessionToken = null) {
    const { sessionId: storedId, sessionToken: storedToken } = this.read();
    if (storedId === sessionId && (storedToken === sessionToken || sessionToken === null)) return false;
    return this.update((state) => {
      const replaced = state.sessionId !== null && state.sessionId !== sessionId;
      if (replaced) {
        state.messages = state.messages.filter((m) => m.from === "customer" && m.status === "queued");
        state.unread = 0;
        state.handoff = null;
      }
      state.sessionId = sessionId;
      if (sessionToken !== null || replaced) state.sessionToken = sessionToken;
      return replaced;
    });
  }

  setOwner(owner) {
    if (this.read().owner !== owner) this.update((state) => (state.owner = owner));
  }

  setMaxChars(maxChars) {
    if (this.read().maxChars !== maxChars) this.update((state) => (state.maxChars = maxChars));
  }

  /** What the customer typed (or a button they chose): queued until sent. */
  addCustomerMessage(fields) {
    const message = customerMessage(fields);
    this.update((state) => state.messages.push(message));
    return message;
  }

  /** A message from the bot or a human agent; `countUnread` when the panel is closed. */
  addIncoming(incoming, countUnread) {
    return this.update((state) => {
      const last = state.messages[state.messages.length - 1];
      // Rasa sends an agent's reply twice when the bot event also has a top-level
      // text (plain, then with agent_name; docs/widget.md): keep the agent's.
      if (
        incoming.from === "agent" &&
        last?.from === "bot" &&
        last.text === incoming.text &&
        Date.now() - last.ts < DUPLICATE_WINDOW_MS
      ) {
        Object.assign(last, incoming);
        state.handoff = { state: "joined", agentName: incoming.agentName, typingAt: null };
        return last;
      }
      if (incoming.from === "agent") {
        // A reply ends the typing; one without a "joined" before it (missed
        // while offline) still means a person has the chat.
        state.handoff = { state: "joined", agentName: incoming.agentName, typingAt: null };
      } else if (incoming.from === "bot" && state.handoff?.state === "joined") {
        // The assistant speaks again: the person has gone, though their "left" never came.
        this.pushEvent(state, { event: "left", text: "You're back with the assistant." });
        state.handoff = null;
      }
      const message = { id: randomId(), ts: Date.now(), ...incoming };
      state.messages.push(message);
      if (countUnread) state.unread += 1;
      return message;
    });
  }

  /** A line across the transcript: someone joined, left, the place in the queue. */
  pushEvent(state, fields) {
    const message = { id: randomId(), ts: Date.now(), from: "event", ...fields };
    state.messages.push(message);
    return message;
  }

  /**
   * A person's part in the conversation changed (connection.js presenceOf):
   * queued, joined, typing, left. Returns the transcript line it added, or null.
   */
  applyPresence(presence, countUnread = false, now = Date.now()) {
    return this.update((state) => {
      const { agentName } = presence;
      const current = state.handoff;
      let line = null;
      if (presence.presence === "queued") {
        const place = { position: presence.position ?? null, expectedWaitSeconds: presence.expectedWaitSeconds ?? null };
        state.handoff = { state: "queued", ...place };
        line = this.pushEvent(state, { event: "queued", text: queueText(place), ...place });
      } else if (presence.presence === "joined") {
        const already = current?.state === "joined" && current.agentName === agentName;
        state.handoff = { state: "joined", agentName, typingAt: already ? current.typingAt : null };
        if (!already) line = this.pushEvent(state, { event: "joined", agentName, text: `${agentName} joined the conversation` });
      } else if (presence.presence === "typing") {
        state.handoff = { state: "joined", agentName, typingAt: now };
      } else if (presence.presence === "left") {
        state.handoff = null;
        line = this.pushEvent(state, {
          event: "left",
          agentName,
          text: `${agentName} left the conversation. You're back with the assistant.`,
        });
      }
      if (line && countUnread) state.unread += 1;
      return line;
    });
  }

  /** Whether the person who has the chat is typing now. */
  agentTyping(now = Date.now()) {
    const handoff = this.state.handoff;
    return Boolean(handoff?.state === "joined" && handoff.typingAt && now - handoff.typingAt < AGENT_TYPING_MS);
  }

  /** Marks every queued message as sent (on connection `via`) and returns them, oldest first. */
  takeQueued(via = null) {
    const isQueued = (m) => m.from === "customer" && m.status === "queued";
    if (!this.read().messages.some(isQueued)) return [];
    return this.update((state) => {
      const queued = state.messages.filter(isQueued);
      const now = Date.now();
      for (const message of queued) {
        message.status = "sent";
        message.sentAt = now;
        message.sentVia = via;
        message.awaiting = true;
      }
      return queued;
    });
  }

  /** A reply came from a server that does not say when it is done: nothing sent so far is waiting any more. */
  markAnswered() {
    if (!this.read().messages.some((m) => m.awaiting)) return;
    this.update((state) => {
      for (const message of state.messages) {
        delete message.awaiting;
        delete message.replies;
        delete message.replayed;
      }
    });
  }

  /**
   * A reply came from a server that says when it is done: it belongs to the
   * oldest message still awaiting (Rasa answers a conversation's messages in
   * order), which keeps awaiting until `markHandled`.
   */
  countReply(now = Date.now()) {
    const isOpen = (m) => m.from === "customer" && m.awaiting && now - m.sentAt < RESEND_WITHIN_MS;
    if (!this.read().messages.some(isOpen)) return;
    this.update((state) => {
      const message = state.messages.find(isOpen);
      if (message) message.replies = (message.replies || 0) + 1;
    });
  }

  /**
   * The server refused a message as too long: the oldest one still awaiting
   * an answer that is longer than the limit waits for nothing more (sending
   * it again would be refused again) and says it was not delivered.
   */
  markTooLong(now = Date.now()) {
    const limit = this.maxChars;
    const isTooLong = (m) =>
      m.from === "customer" && m.awaiting && now - m.sentAt < RESEND_WITHIN_MS && charCount(m.payload || m.text) > limit;
    if (!this.read().messages.some(isTooLong)) return;
    this.update((state) => {
      const message = state.messages.find(isTooLong);
      if (!message) return;
      delete message.awaiting;
      delete message.replies;
      delete message.replayed;
      message.status = "refused";
    });
  }

  /** Rasa has finished with message `id` (`message_handled`): it waits for nothing more. */
  markHandled(id) {
    if (!this.read().messages.some((m) => m.id === id && m.awaiting)) return;
    this.update((state) => {
      const message = state.messages.find((m) => m.id === id);
      if (!message) return;
      delete message.awaiting;
      delete message.replies;
      delete message.replayed;
    });
  }

  /**
   * Whether the next message of Rasa's replayed answer to message `id` is
   * news: the message was resent, is still awaiting, and this part of the
   * answer is past the replies that already came (none, from a stock server).
   */
  takeReplay(id) {
    if (!this.read().messages.some((m) => m.id === id && m.awaiting && m.resentAt)) return false;
    return this.update((state) => {
      const message = state.messages.find((m) => m.id === id && m.awaiting && m.resentAt);
      if (!message) return false;
      message.replayed = (message.replayed || 0) + 1;
      return message.replayed > (message.replies || 0);
    });
  }

  /**
   * Marks the sent messages still awaiting a reply — sent at least `minAge` ms
   * ago, on another connection than `exceptVia` if given, within
   * RESEND_WITHIN_MS, not resent yet — as resent and returns them, oldest
   * first: each is sent again once at most.
   */
  takeUnanswered({ minAge = 0, exceptVia = null } = {}, now = Date.now()) {
    const isDue = (m) =>
      m.from === "customer" &&
      m.awaiting &&
      !m.resentAt &&
      now - m.sentAt >= minAge &&
      now - m.sentAt < RESEND_WITHIN_MS &&
      (exceptVia === null || m.sentVia !== exceptVia);
    if (!this.read().messages.some(isDue)) return [];
    return this.update((state) => {
      const due = state.messages.filter(isDue);
      for (const message of due) message.resentAt = now;
      return due;
    });
  }

  /** The connected tab tells the others how the connection is. */
  setConnection(status) {
    if (this.read().connection !== status) this.update((state) => (state.connection = status));
  }

  markRead() {
    if (this.state.unread) this.update((state) => (state.unread = 0));
  }

  /**
   * True while the last thing said is the customer's, sent (or resent) and
   * not answered yet: not once the server says it is handled without a word
   * (a throttled message, a conversation a person has).
   */
  awaitingReply(now = Date.now()) {
    const last = this.state.messages[this.state.messages.length - 1];
    const since = last?.resentAt || last?.sentAt;
    return Boolean(
      last && last.from === "customer" && last.status === "sent" && last.awaiting && now - since < TYPING_TIMEOUT_MS,
    );
  }

  hasConversation() {
    return this.state.messages.length > 0;
  }
}
