// Rasa's socket.io channel, as rasa-webchat speaks it: `session_request`
// with the stored session id on every (re)connect, `session_confirm` back,
// then `user_uttered` out and `bot_uttered` in.
//
// Sessions are the server's (issue 19): `session_request` carries the stored
// session id with its session token, and our channel keeps that session only
// if the token is its own signature of the id; otherwise, or with nothing
// stored, it issues a new one in `session_confirm {session_id,
// session_token}`. A stock server answers with the id alone, as a string.
// A new conversation (sign-out, another customer: a new `epoch` in the store,
// from any tab) closes the socket and asks again with nothing, so the old
// session's room and its messages stay behind.
//
// Only one tab holds the connection (a Web Lock): with several
// sockets in the session's room every reply would arrive once per tab and be
// stored once per tab. The other tabs put what the customer types into the
// shared store, and the connected tab sends it.
//
// No message lost (issue 11): each message goes out with its store id as
// `message_id`. One that has had no `bot_uttered` since it was sent goes out
// again, once, with `resend: true` — when the socket is confirmed again (a
// reconnect, possibly to another Rasa instance, or a reload or another tab
// taking over) and when no reply has come for RESEND_AFTER_MS. Rasa does not
// process a copy of a message it already has; it replays that answer with
// `replay_of: <message_id>` (bot/channels.py), of which only what has not
// come yet is shown, so a slow reply is never shown twice. Our channel also
// says when it has finished a message (`message_handled`, announced by
// `session_features` before each `session_confirm`): until then a message
// counts as unanswered however many replies came, since an instance that
// dies half-way through a reply leaves the rest unsaid. From a stock
// server, the first reply answers it.

import { io } from "socket.io-client";
import { RESEND_AFTER_MS } from "./store.js";

const SESSION_ID = /^[\w.:@-]{1,128}$/;
const SESSION_TOKEN = /^[\w.~+/=-]{1,512}$/;
// What the server may say about a refused message (bot/channels.py); shown as a notice.
const NOTICE_TEXT = {
  message_too_long: "That message is too long for us to read. Please shorten it or send it in parts.",
  rate_limited: "You're sending messages faster than we can answer. Please wait a moment before sending more.",
};

/** `{sessionId, sessionToken}` from a `session_confirm` payload (our object, or a stock server's string), or null. */
export function confirmedSession(data) {
  const id = typeof data === "string" ? data : data && typeof data === "object" ? data.session_id : null;
  if (typeof id !== "string" || !SESSION_ID.test(id)) return null;
  const token = data && typeof data === "object" ? data.session_token : null;
  return { sessionId: id, sessionToken: typeof token === "string" && SESSION_TOKEN.test(token) ? token : null };
}

// How often the connected tab looks for messages left unanswered too long.
const RESEND_CHECK_MS = 5000;

// A person in the chat (docs/widget.md, "A person in the chat"): custom bot
// messages without text. `queued` comes from the assistant as part of its
// answer; `joined`, `typing` and `left` come from the CRM, outside any turn.
const PRESENCE = new Set(["queued", "joined", "typing", "left"]);
const MAX_WAIT_SECONDS = 7 * 24 * 3600;

/** `{from: "presence", presence, agentName?, position?, expectedWaitSeconds?}` from a payload, or null. */
export function presenceOf(data) {
  if (!data || typeof data !== "object" || !PRESENCE.has(data.presence)) return null;
  const presence = { from: "presence", presence: data.presence };
  const agentName = typeof data.agent_name === "string" ? data.agent_name.trim().slice(0, 60) : "";
  if (agentName) presence.agentName = agentName;
  if (Number.isInteger(data.position) && data.position > 0 && data.position < 100000) presence.position = data.position;
  const wait = data.expected_wait_seconds;
  if (typeof wait === "number" && Number.isFinite(wait) && wait >= 0 && wait <= MAX_WAIT_SECONDS) {
    presence.expectedWaitSeconds = wait;
  }
  // Joining, typing and leaving are a person's: without a name they mean nothing to show.
  if (presence.presence !== "queued" && !agentName) return null;
  return presence;
}

/**
 * Normalises a `bot_uttered` payload into a transcript message, or null. A
 * presence signal is `{from: "presence", ...}` (presenceOf). One
 * with `error` (the server refused the customer's message: too long, too
 * fast) is a notice (`from: "notice"`, `notice: <error>`), not an answer.
 */
export function incomingMessage(data) {
  if (!data || typeof data !== "object") return null;
  if (data.presence !== undefined) return presenceOf(data);
  const text = typeof data.text === "string" ? data.text.slice(0, 5000) : "";
  if (typeof data.error === "string" && data.error) {
    const notice = data.error.slice(0, 40);
    const noticeText = text.trim() ? text : NOTICE_TEXT[notice] || "We couldn't take that message. Please try again.";
    return { from: "notice", notice, text: noticeText };
  }
  const rawButtons = Array.isArray(data.quick_replies)
    ? data.quick_replies
    : Array.isArray(data.buttons)
      ? data.buttons
      : [];
  const buttons = rawButtons
    .filter((b) => b && typeof b.title === "string" && b.title.trim())
    .slice(0, 12)
    .map((b) => ({
      title: b.title.trim().slice(0, 80),
      payload: typeof b.payload === "string" && b.payload ? b.payload : b.title.trim(),
    }));
  const src = data.attachment?.type === "image" ? data.attachment.payload?.src : data.image;
  const image = typeof src === "string" && /^https?:\/\//i.test(src) ? src : null;
  if (!text.trim() && !buttons.length && !image) return null;
  const agentName = typeof data.agent_name === "string" ? data.agent_name.trim().slice(0, 60) : "";
  const message = { from: agentName ? "agent" : "bot", text };
  if (agentName) message.agentName = agentName;
  if (buttons.length) message.buttons = buttons;
  if (image) message.image = image;
  return message;
}

export class Connection {
  /**
   * @param config   the widget configuration (server, socketPath, storageKey)
   * @param store    the ConversationStore
   * @param hooks    {onStatus(status), onIncoming(message), onNewSession()}
   * @param identity who the customer is (identity.js's IdentityKeeper: customData()), or null
   */
  constructor(config, store, hooks, win = window, openSocket = io, identity = null) {
    this.config = config;
    this.identity = identity;
    this.openSocket = openSocket;
    this.store = store;
    this.hooks = hooks;
    this.win = win;
    this.socket = null;
    this.confirmed = false;
    this.status = "idle";
    this.started = false;
    this.via = null;
    this.acks = false; // whether this connection's server sends `message_handled`
    this.epoch = null; // the conversation the last session_request asked for
  }

  /** Starts taking part: becomes the connected tab now or when the current one goes. */
  start() {
    if (this.started) return;
    this.started = true;
    const locks = this.win.navigator.locks;
    if (locks?.request) {
      this.setStatus("standby");
      // Held until the page goes away; then the next waiting tab connects.
      // Named after the store, not the session: the session changes (a new
      // one from the server, a sign-out) while the same tab keeps the lock.
      locks.request(`helpdesk-chat:${this.config.storageKey}`, () => {
        this.connect();
        return new Promise(() => {});
      });
    } else {
      this.connect();
    }
    // Another tab queued a message: send it if this tab holds the connection.
    // Another tab started a new conversation: ask for a new session first.
    this.store.subscribe(() => {
      this.followEpoch();
      this.flush();
    });
  }

  /** A new conversation since the last session_request (a reset here or in another tab): start over. */
  followEpoch() {
    if (!this.socket || this.epoch === null || this.epoch === this.store.epoch) return;
    this.restart();
  }

  /**
   * Closes the socket and opens a new one, which asks for the store's session
   * (none after a reset): the server then forgets which session this socket
   * was in, so nothing of the previous conversation reaches it.
   */
  restart() {
    if (!this.socket) return;
    this.confirmed = false;
    this.epoch = null; // no session asked for until the new socket connects
    this.socket.disconnect();
    if (this.win.navigator.onLine !== false) {
      this.setStatus("connecting");
      this.socket.connect();
    }
  }

  connect() {
    const { server, socketPath } = this.config;
    const socket = this.openSocket(server, {
      path: socketPath,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      timeout: 10000,
    });
    this.socket = socket;
    this.setStatus("connecting");

    socket.on("connect", () => {
      this.acks = false; // until this server says otherwise (another instance, perhaps another version)
      this.epoch = this.store.epoch;
      const request = {};
      if (this.store.sessionId) request.session_id = this.store.sessionId;
      if (this.store.sessionId && this.store.sessionToken) request.session_token = this.store.sessionToken;
      socket.emit("session_request", request);
    });
    socket.on("session_features", (data) => {
      this.acks = Boolean(data && typeof data === "object" && data.message_handled === true);
      const maxChars = data && typeof data === "object" ? data.max_message_chars : null;
      if (Number.isInteger(maxChars) && maxChars > 0) this.store.setMaxChars(maxChars);
    });
    socket.on("message_handled", (data) => {
      if (typeof data?.message_id === "string") this.store.markHandled(data.message_id);
    });
    socket.on("session_confirm", (data) => {
      // Asked for before a new conversation began: restart() asks again.
      if (this.epoch !== this.store.epoch) return;
      const session = confirmedSession(data);
      if (!session) return;
      if (this.store.adoptSession(session.sessionId, session.sessionToken)) this.hooks.onNewSession?.();
      this.confirmed = true;
      // Which connection a message went out on: one sent on an earlier one
      // (this tab's or another's) and still unanswered is sent again now.
      this.via = Math.random().toString(36).slice(2);
      this.resendUnanswered({ exceptVia: this.via });
      // Then what is queued (setStatus lets the store's listeners flush): in order.
      this.setStatus("online");
      this.flush();
    });
    socket.on("bot_uttered", (data) => {
      if (!this.confirmed) return; // the previous conversation's, on its way out
      const replayOf = typeof data?.replay_of === "string" ? data.replay_of : null;
      const refused = typeof data?.error === "string";
      // The CRM's joined/typing/left are nobody's answer: counted as one, a
      // replay would skip a real part of an answer.
      const outsideTurn = typeof data?.presence === "string" && data.presence !== "queued";
      if (outsideTurn) {
        // A replayed one is old news (the conversation's state came since).
        if (replayOf) return;
      } else if (replayOf) {
        // Rasa's answer to a resent message: shown from where the replies that came stopped.
        if (!this.store.takeReplay(replayOf)) return;
      } else if (refused) {
        // Not an answer: it must not count as one part of the message's reply
        // (a replay would then skip a real part). Our channel says the refused
        // message is handled (message_handled); from a server that does not,
        // a throttled one still awaits and goes out again once, later.
        if (data.error === "message_too_long") this.store.markTooLong();
      } else if (this.acks) {
        this.store.countReply();
      } else {
        this.store.markAnswered();
      }
      const message = incomingMessage(data);
      if (message) this.hooks.onIncoming(message);
    });
    this.win.setInterval(() => this.resendUnanswered({ minAge: RESEND_AFTER_MS }), RESEND_CHECK_MS);
    socket.on("disconnect", (reason) => {
      this.confirmed = false;
      this.setStatus(this.win.navigator.onLine === false ? "offline" : "connecting");
      // The server closed the connection on purpose (e.g. a restart): socket.io
      // does not retry that by itself.
      if (reason === "io server disconnect") socket.connect();
    });
    socket.io.on("reconnect_attempt", () => {
      if (this.status !== "offline") this.setStatus("connecting");
    });

    // The browser knows about a lost network before any timeout does. Closing
    // the socket then keeps messages in the queue instead of handing them to
    // a connection that can no longer deliver them.
    this.win.addEventListener("offline", () => {
      this.confirmed = false;
      socket.disconnect();
      this.setStatus("offline");
    });
    this.win.addEventListener("online", () => {
      if (!socket.connected) {
        this.setStatus("connecting");
        socket.connect();
      }
    });
  }

  get canSend() {
    return (
      this.confirmed &&
      this.epoch === this.store.epoch &&
      Boolean(this.store.sessionId) &&
      this.socket?.connected &&
      this.win.navigator.onLine !== false
    );
  }

  /** Sends every queued message, once, in order. */
  flush() {
    if (!this.canSend || this.resending) return;
    // takeQueued marks them sent before they go out: a message is never sent
    // twice from here, even if this tab dies half-way through.
    for (const message of this.store.takeQueued(this.via)) this.emitMessage(message, false);
  }

  /** Sends again, once, each sent message still unanswered (store.takeUnanswered's `which`). */
  resendUnanswered(which) {
    if (!this.canSend) return;
    // Marked resent before they go out, as in flush(); the store's listeners
    // must not flush newer messages out ahead of them meanwhile.
    this.resending = true;
    try {
      for (const message of this.store.takeUnanswered(which)) this.emitMessage(message, true);
    } finally {
      this.resending = false;
    }
    this.flush();
  }

  emitMessage(message, resend) {
    // The identity token goes with every message; the server trusts nothing
    // else the browser says about who the customer is.
    const customData = { channel: "web_widget", ...(this.identity ? this.identity.customData() : {}) };
    // A button sends its payload; the agent who reads the conversation later sees what the customer saw.
    if (message.payload && message.payload !== message.text) customData.button_title = message.text.slice(0, 80);
    const payload = {
      message: message.payload || message.text,
      message_id: message.id,
      session_id: this.store.sessionId,
      customData,
    };
    if (resend) payload.resend = true;
    this.socket.emit("user_uttered", payload);
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    // A tab on standby shows what the connected tab reports.
    if (status !== "standby") this.store.setConnection(status);
    this.hooks.onStatus(status);
  }
}
