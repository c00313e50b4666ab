// The helpdesk chat widget: one <script src=".../widget.js" data-server=...
// defer> tag adds a launcher and a chat panel that talk to Rasa's socket.io
// channel. The only global is `window.HelpdeskChat` (docs/widget.md).

import { findScript, readConfig } from "./config.js";
import { Connection } from "./connection.js";
import { IdentityKeeper, parseIdentityToken } from "./identity.js";
import { ConversationStore, charCount } from "./store.js";
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

  // Who the customer is: the tag's identity token, in memory only (identity.js).
  // A conversation stored for someone else, or for a signed-in customer when
  // this page has nobody signed in, is not continued.
  let channel = null;
  try {
    channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`helpdesk-chat:${config.storageKey}`) : null;
  } catch {
    /* an opaque origin: this tab keeps its identity to itself */
  }
  const identity = new IdentityKeeper(store, { claimedEmail: config.customerEmail, channel });
  const initial = parseIdentityToken(config.identityToken);
  if (identity.needsFreshStart(initial)) store.reset();
  if (initial) identity.adopt(initial);

  // A new conversation starts with the bot's greeting (by name for a signed-in
  // customer): the init payload is sent but not shown.
  const greeting = config.initPayload ? { text: config.initPayload, payload: config.initPayload, hidden: true } : null;

  function greetIfEmpty() {
    if (!store.hasConversation() && greeting) store.addCustomerMessage(greeting);
  }

  /** Sign-out: a new conversation, nothing of the previous customer on screen or in storage. */
  function reset() {
    // The connection asks for a new session (connection.followEpoch); the other tabs follow.
    store.reset(ui.isOpen ? greeting : null);
    identity.clear();
    ui.clearComposer();
    if (ui.isOpen) {
      connection.start();
      connection.flush();
    }
    emit("reset");
  }

  function identify(token) {
    const next = parseIdentityToken(token);
    if (!next) return false;
    if (identity.needsFreshStart(next)) reset();
    identity.adopt(next);
    return true;
  }

  const connection = new Connection(config, store, {
    onStatus(status) {
      ui.setStatus(status);
      emit("status", { status });
    },
    onIncoming(message) {
      if (message.from === "presence") {
        // Typing is no news worth a badge; joining, leaving and the queue are.
        const line = store.applyPresence(message, !ui.isOpen && message.presence !== "typing");
        const { from, ...presence } = message;
        emit("presence", presence);
        if (line) emit("message", { ...line });
        return;
      }
      const stored = store.addIncoming(message, !ui.isOpen);
      emit("message", { ...stored });
    },
    onNewSession() {
      // The server did not continue the stored session: its transcript is gone.
      if (ui.isOpen) greetIfEmpty();
    },
  }, window, undefined, identity);

  // Other tabs report the connection through the store.
  let epoch = store.epoch;
  store.subscribe((state) => {
    if (connection.status === "standby" || connection.status === "idle") ui.setStatus(state.connection);
    // Another tab signed out or changed customer: the draft here goes too.
    if (state.epoch !== epoch) {
      epoch = state.epoch;
      ui.clearComposer();
    }
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
      greetIfEmpty();
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
      if (typeof text !== "string" || !text.trim() || charCount(text.trim()) > store.maxChars) return false;
      ui.actions.send(text.trim(), null);
      return true;
    },
    identify,
    reset,
    get identified() {
      return identity.token !== null;
    },
    get isOpen() {
      return ui.isOpen;
    },
    get sessionId() {
      return store.sessionId;
    },
    get agent() {
      // The person who has the chat now (null while the assistant has it).
      return store.state.handoff?.state === "joined" ? store.state.handoff.agentName : null;
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
