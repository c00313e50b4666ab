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

const MAX_MESSAGES = 200;
// A reply this late is not coming (e.g. a human agent took over and the bot
// stays silent): stop showing the typing indicator.
export const TYPING_TIMEOUT_MS = 20000;
const DUPLICATE_WINDOW_MS = 3000;
// No reply this long after sending, while connected: send it again, once.
export const RESEND_AFTER_MS = 20000;
// A message older than this is not sent again, even unanswered: the customer
// has moved on (or a person has the conversation and answers when they can).
export const RESEND_WITHIN_MS = 10 * 60 * 1000;

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

function emptyState() {
  return { sessionId: randomId(), messages: [], unread: 0, connection: "idle" };
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
      if (parsed && typeof parsed.sessionId === "string" && Array.isArray(parsed.messages)) {
        return {
          sessionId: parsed.sessionId,
          messages: parsed.messages.filter(isMessage),
          unread: Number.isInteger(parsed.unread) ? parsed.unread : 0,
          connection: typeof parsed.connection === "string" ? parsed.connection : "idle",
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

  /** What the customer typed (or a button they chose): queued until sent. */
  addCustomerMessage({ text, payload = null, hidden = false }) {
    const message = { id: randomId(), from: "customer", text, ts: Date.now(), status: "queued" };
    if (payload) message.payload = payload;
    if (hidden) message.hidden = true;
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
        return last;
      }
      const message = { id: randomId(), ts: Date.now(), ...incoming };
      state.messages.push(message);
      if (countUnread) state.unread += 1;
      return message;
    });
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

  /** True while the last thing said is the customer's, sent (or resent) and not answered yet. */
  awaitingReply(now = Date.now()) {
    const last = this.state.messages[this.state.messages.length - 1];
    const since = last?.resentAt || last?.sentAt;
    return Boolean(last && last.from === "customer" && last.status === "sent" && now - since < TYPING_TIMEOUT_MS);
  }

  hasConversation() {
    return this.state.messages.length > 0;
  }
}
