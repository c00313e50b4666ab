// The helpdesk chat widget: one <script src=".../widget.js" data-server=...
// defer> tag adds a launcher and a chat panel that talk to Rasa's socket.io
// channel. The only global is `window.HelpdeskChat` (docs/widget.md).

import { findScript, readConfig } from "./config.js";
import { Connection } from "./connection.js";
import { ConversationStore } from "./store.js";
import { ChatUI } from "./ui.js";

const VERSION = __WIDGET_VERSION__;
const OPEN_KEY = "helpdesk-chat:open";

function emit(name, detail) {
  window.dispatchEvent(new CustomEvent(`helpdeskchat:${name}`, { detail }));
}

function rememberOpen(isOpen) {
  // Per tab: the panel stays open while the customer moves through the site.
  try {
    if (isOpen) sessionStorage.setItem(OPEN_KEY, "1");
    else sessionStorage.removeItem(OPEN_KEY);
  } catch {
    /* storage blocked: the panel just starts closed */
  }
}

function wasOpen() {
  try {
    return sessionStorage.getItem(OPEN_KEY) === "1";
  } catch {
    return false;
  }
}

function start(script) {
  if (document.querySelector("[data-helpdesk-chat]")) return; // the tag is on the page twice
  const config = readConfig(script ? script.dataset : {}, window.location);
  const store = new ConversationStore(config.storageKey);
  let ui;

  const connection = new Connection(config, store, {
    onStatus(status) {
      ui.setStatus(status);
      emit("status", { status });
    },
    onIncoming(message) {
      const stored = store.addIncoming(message, !ui.isOpen);
      emit("message", { ...stored });
    },
  });

  // Other tabs report the connection through the store.
  store.subscribe((state) => {
    if (connection.status === "standby" || connection.status === "idle") ui.setStatus(state.connection);
  });

  ui = new ChatUI(config, store, {
    send(text, payload) {
      const message = store.addCustomerMessage({ text, payload });
      connection.start();
      connection.flush();
      emit("send", { text: message.text });
    },
    opened() {
      rememberOpen(true);
      // A first visit starts with the bot's greeting (by name when the page
      // said who the customer is): the init payload is sent but not shown.
      if (!store.hasConversation() && config.initPayload) {
        store.addCustomerMessage({ text: config.initPayload, payload: config.initPayload, hidden: true });
      }
      connection.start();
      connection.flush();
      emit("open");
    },
    closed() {
      rememberOpen(false);
      emit("close");
    },
  });
  ui.mount();

  // Only a conversation that already exists needs the connection before the
  // panel opens (an agent may write while it is closed).
  if (store.hasConversation()) connection.start();
  if (config.startOpen || wasOpen()) ui.open({ focus: false });

  window.HelpdeskChat = Object.freeze({
    version: VERSION,
    open: () => ui.open(),
    close: () => ui.close(),
    toggle: () => (ui.isOpen ? ui.close() : ui.open()),
    send: (text) => {
      if (typeof text === "string" && text.trim()) ui.actions.send(text.trim(), null);
    },
    get isOpen() {
      return ui.isOpen;
    },
    get sessionId() {
      return store.sessionId;
    },
    get status() {
      return connection.status === "standby" ? store.state.connection : connection.status;
    },
  });
  emit("ready", { version: VERSION, sessionId: store.sessionId });
}

if (!window.HelpdeskChat) {
  // Captured now: document.currentScript is only set while this runs.
  const script = findScript();
  if (document.body) start(script);
  else document.addEventListener("DOMContentLoaded", () => start(script), { once: true });
}
