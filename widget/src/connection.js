// Rasa's socket.io channel, as rasa-webchat speaks it: `session_request`
// with the stored session id on every (re)connect, `session_confirm` back,
// then `user_uttered` out and `bot_uttered` in.
//
// Only one tab per session holds the connection (a Web Lock): with several
// sockets in the session's room every reply would arrive once per tab and be
// stored once per tab. The other tabs put what the customer types into the
// shared store, and the connected tab sends it.

import { io } from "socket.io-client";

/** Normalises a `bot_uttered` payload into a transcript message, or null. */
export function incomingMessage(data) {
  if (!data || typeof data !== "object") return null;
  const text = typeof data.text === "string" ? data.text.slice(0, 5000) : "";
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
   * @param config   the widget configuration (server, socketPath, customerEmail)
   * @param store    the ConversationStore
   * @param hooks    {onStatus(status), onIncoming(message), isPanelOpen()}
   */
  constructor(config, store, hooks, win = window) {
    this.config = config;
    this.store = store;
    this.hooks = hooks;
    this.win = win;
    this.socket = null;
    this.confirmed = false;
    this.status = "idle";
    this.started = false;
  }

  /** Starts taking part: becomes the connected tab now or when the current one goes. */
  start() {
    if (this.started) return;
    this.started = true;
    const locks = this.win.navigator.locks;
    if (locks?.request) {
      this.setStatus("standby");
      // Held until the page goes away; then the next waiting tab connects.
      locks.request(`helpdesk-chat:${this.store.sessionId}`, () => {
        this.connect();
        return new Promise(() => {});
      });
    } else {
      this.connect();
    }
    // Another tab queued a message: send it if this tab holds the connection.
    this.store.subscribe(() => this.flush());
  }

  connect() {
    const { server, socketPath } = this.config;
    const socket = io(server, {
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
      socket.emit("session_request", { session_id: this.store.sessionId });
    });
    socket.on("session_confirm", () => {
      this.confirmed = true;
      this.setStatus("online");
      this.flush();
    });
    socket.on("bot_uttered", (data) => {
      const message = incomingMessage(data);
      if (message) this.hooks.onIncoming(message);
    });
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

  /** Sends every queued message, once, in order. */
  flush() {
    if (!this.confirmed || !this.socket?.connected || this.win.navigator.onLine === false) return;
    // takeQueued marks them sent before they go out: a message is never sent
    // twice, even if this tab dies half-way through.
    for (const message of this.store.takeQueued()) {
      const customData = { channel: "web_widget" };
      if (this.config.customerEmail) customData.email = this.config.customerEmail;
      this.socket.emit("user_uttered", {
        message: message.payload || message.text,
        session_id: this.store.sessionId,
        customData,
      });
    }
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    // A tab on standby shows what the connected tab reports.
    if (status !== "standby") this.store.setConnection(status);
    this.hooks.onStatus(status);
  }
}
