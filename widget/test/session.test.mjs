// Server-issued sessions, signed identities and message limits (issue 19):
// what goes out in session_request and user_uttered, what a sign-out leaves
// behind (nothing), and how refusals are shown. The socket is a recorder; the
// store is the real one on an in-memory localStorage.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { Connection, confirmedSession, incomingMessage } from "../src/connection.js";
import { IdentityKeeper, needsFreshStart, ownerKey, parseIdentityToken } from "../src/identity.js";
import { ConversationStore, DEFAULT_MAX_CHARS, RESEND_AFTER_MS, charCount } from "../src/store.js";
import { FakeSocket } from "./fakes.mjs";

const KEY = "helpdesk-chat:test";

function memoryStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

/** Windows of one browser: they share localStorage and hear each other's writes (the `storage` event). */
function browser() {
  const storage = memoryStorage();
  const windows = [];
  const channels = [];
  return {
    storage,
    window() {
      const win = {
        // Like a browser: a write fires `storage` in the other windows, not in the writer.
        localStorage: {
          getItem: storage.getItem,
          removeItem: storage.removeItem,
          setItem(key, value) {
            storage.setItem(key, value);
            for (const other of windows) if (other !== win) other.storageListeners.forEach((fn) => fn({ key }));
          },
        },
        navigator: { onLine: true },
        storageListeners: [],
        addEventListener(type, fn) {
          if (type === "storage") this.storageListeners.push(fn);
        },
        setInterval: (fn, ms) => setInterval(fn, ms),
      };
      windows.push(win);
      return win;
    },
    // BroadcastChannel between the tabs: delivered to the others, later (as browsers do).
    channel() {
      const channel = {
        onmessage: null,
        posted: [],
        postMessage(data) {
          this.posted.push(data);
          for (const other of channels) if (other !== channel) queueMicrotask(() => other.onmessage?.({ data }));
        },
      };
      channels.push(channel);
      return channel;
    },
  };
}

class SessionSocket extends FakeSocket {
  constructor() {
    super();
    this.disconnects = 0;
  }
  disconnect() {
    this.connected = false;
    this.disconnects += 1;
    this.fire("disconnect", "io client disconnect");
  }
  open() {
    this.connected = true;
    this.fire("connect");
  }
  // Our channel: features, then the session it keeps or issues.
  confirm(session = { session_id: "s1", session_token: "t1" }, features = { message_handled: true }) {
    if (!this.connected) this.open();
    if (features) this.fire("session_features", features);
    this.fire("session_confirm", session);
  }
  drop() {
    this.connected = false;
    this.fire("disconnect", "transport close");
  }
  get requests() {
    return this.sent.filter(([event]) => event === "session_request").map(([, data]) => data);
  }
}

function token(claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}.c2lnbmF0dXJl`;
}
const ADA = token({ email: "Ada@Example.com", name: "Ada Lovelace", exp: 2_000_000_000 });
const ADA_AGAIN = token({ email: "ada@example.com", exp: 2_000_003_600 });
const GRACE = token({ email: "grace.hopper@example.com", exp: 2_000_000_000 });

/** One tab of the widget, wired as index.js wires it (identify and reset included). */
function tab(b = browser(), { claimedEmail = null, identityToken = null } = {}) {
  const win = b.window();
  const store = new ConversationStore(KEY, win);
  const socket = new SessionSocket();
  const shown = [];
  const newSessions = [];
  const identity = new IdentityKeeper(store, { claimedEmail, channel: b.channel() });
  const initial = parseIdentityToken(identityToken);
  if (identity.needsFreshStart(initial)) store.reset();
  if (initial) identity.adopt(initial);
  const connection = new Connection(
    { server: "http://rasa", socketPath: "/socket.io/", storageKey: KEY },
    store,
    {
      onStatus() {},
      onIncoming: (message) => {
        store.addIncoming(message, false);
        shown.push(message);
      },
      onNewSession: () => newSessions.push(store.sessionId),
    },
    win,
    () => socket,
    identity,
  );
  const t = {
    b,
    store,
    socket,
    shown,
    newSessions,
    identity,
    connection,
    say(text) {
      store.addCustomerMessage({ text });
      connection.start();
      connection.flush();
    },
    reset() {
      store.reset();
      identity.clear();
    },
    identify(value) {
      const next = parseIdentityToken(value);
      if (!next) return false;
      if (identity.needsFreshStart(next)) t.reset();
      identity.adopt(next);
      return true;
    },
  };
  return t;
}

beforeEach(() => mock.timers.enable({ apis: ["Date", "setInterval"], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

// ---- server-issued sessions ------------------------------------------------

test("a first visit asks for no session and keeps the one the server issues, with its token", () => {
  const t = tab();
  t.connection.start();

  t.socket.confirm({ session_id: "issued-1", session_token: "tok-1" });
  t.socket.drop();
  t.socket.confirm({ session_id: "issued-1", session_token: "tok-1" });

  assert.deepEqual(t.socket.requests, [{}, { session_id: "issued-1", session_token: "tok-1" }]);
  assert.equal(t.store.sessionId, "issued-1");
  assert.equal(t.store.sessionToken, "tok-1");
});

test("a stock server's plain string id still works: kept, and asked for again without a token", () => {
  const t = tab();
  t.connection.start();

  t.socket.confirm("4f2a9c", null);
  t.say("hello");
  t.socket.drop();
  t.socket.confirm("4f2a9c", null);

  assert.equal(t.store.sessionId, "4f2a9c");
  assert.deepEqual(t.socket.requests[1], { session_id: "4f2a9c" });
  assert.equal(t.socket.messages[0].session_id, "4f2a9c");
});

test("a session the server does not continue takes its transcript with it; unsent messages go to the new one", () => {
  const t = tab();
  t.connection.start();
  t.socket.confirm({ session_id: "old", session_token: "tok-old" });
  t.say("my order is late");
  t.socket.fire("bot_uttered", { text: "Sorry to hear that." });
  t.socket.fire("message_handled", { message_id: t.socket.messages[0].message_id });
  t.socket.drop();
  t.say("typed while offline");

  t.socket.confirm({ session_id: "new", session_token: "tok-new" });

  assert.deepEqual(
    t.store.state.messages.map((m) => m.text),
    ["typed while offline"],
  );
  assert.equal(t.store.sessionToken, "tok-new");
  assert.deepEqual(t.newSessions, ["new"]);
  assert.equal(t.socket.messages.at(-1).session_id, "new");
  assert.equal(t.socket.messages.at(-1).message, "typed while offline");
});

test("a session_confirm without a usable id confirms nothing", () => {
  for (const payload of [null, 42, {}, { session_id: "" }, { session_id: "a b" }, { session_id: "x".repeat(500) }]) {
    assert.equal(confirmedSession(payload), null, JSON.stringify(payload));
  }
  assert.deepEqual(confirmedSession({ session_id: "abc", session_token: "not a token!" }), {
    sessionId: "abc",
    sessionToken: null,
  });
  const t = tab();
  t.connection.start();
  t.socket.confirm({ session_token: "t" });
  t.say("hello");
  assert.equal(t.socket.messages.length, 0);
});

// ---- the identity token ------------------------------------------------------

test("the identity token goes with every message, resends included, and is never stored", () => {
  const t = tab(browser(), { identityToken: ADA });
  t.connection.start();
  t.socket.confirm();

  t.say("show my tickets");
  mock.timers.tick(RESEND_AFTER_MS + 5000);

  assert.equal(t.socket.messages.length, 2);
  for (const message of t.socket.messages) {
    assert.deepEqual(message.customData, { channel: "web_widget", identity_token: ADA });
  }
  const stored = [...t.b.storage.items.values()].join("\n");
  assert.ok(!stored.includes(ADA.split(".")[1]), "the token is not in localStorage");
  assert.ok(!stored.toLowerCase().includes("ada@example.com"), "nor the address");
});

test("an unsigned customer email is sent only as a claim, and only without a token", () => {
  const claim = tab(browser(), { claimedEmail: "ada@example.com" });
  claim.connection.start();
  claim.socket.confirm();
  claim.say("hi");

  const both = tab(browser(), { claimedEmail: "ada@example.com", identityToken: ADA });
  both.connection.start();
  both.socket.confirm();
  both.say("hi");

  assert.deepEqual(claim.socket.messages[0].customData, { channel: "web_widget", email: "ada@example.com" });
  assert.deepEqual(both.socket.messages[0].customData, { channel: "web_widget", identity_token: ADA });
});

test("only something shaped like a JWT is taken as a token; its email is read, not trusted", () => {
  assert.deepEqual(parseIdentityToken(` ${ADA} `), { token: ADA, email: "ada@example.com" });
  assert.equal(parseIdentityToken("ada@example.com"), null);
  assert.equal(parseIdentityToken("a.b"), null);
  assert.equal(parseIdentityToken(`${ADA}<script>`), null);
  assert.equal(parseIdentityToken(token({ email: "x@y.z", pad: "x".repeat(5000) })), null);
  assert.deepEqual(parseIdentityToken("aaa.bbb.ccc"), { token: "aaa.bbb.ccc", email: null });
});

test("signing in on an anonymous conversation continues it, now marked as the customer's", () => {
  const t = tab();
  t.connection.start();
  t.socket.confirm();
  t.say("where is my parcel?");
  t.socket.fire("bot_uttered", { text: "Sign in to see your orders." });

  t.identify(ADA);
  t.say("I have signed in");

  assert.equal(t.socket.disconnects, 0);
  assert.equal(t.store.sessionId, "s1");
  assert.equal(t.store.state.messages.length, 3);
  assert.equal(t.store.owner, ownerKey("ada@example.com", t.store.epoch));
  assert.equal(t.socket.messages.at(-1).customData.identity_token, ADA);
});

test("a fresh token for the same customer continues the conversation", () => {
  const t = tab(browser(), { identityToken: ADA });
  t.connection.start();
  t.socket.confirm();
  t.say("hello");

  t.identify(ADA_AGAIN);
  t.say("and again");

  assert.equal(t.socket.disconnects, 0);
  assert.equal(t.store.state.messages.length, 2);
  assert.equal(t.socket.messages.at(-1).customData.identity_token, ADA_AGAIN);
});

// ---- sign-out and another customer ------------------------------------------

test("a sign-out leaves nothing of the customer in storage and asks the server for a new session", () => {
  const t = tab(browser(), { identityToken: ADA });
  t.connection.start();
  t.socket.confirm({ session_id: "ada-session", session_token: "ada-token" });
  t.say("show my tickets");
  t.socket.fire("bot_uttered", { text: "Ada, you have 2 open tickets: TCK-000001 ..." });

  t.reset();
  t.socket.confirm({ session_id: "fresh", session_token: "fresh-token" });
  t.say("hello");

  assert.equal(t.socket.disconnects, 1, "the socket left Ada's session");
  assert.deepEqual(t.socket.requests.at(-1), {}, "and asked for none");
  const stored = [...t.b.storage.items.values()].join("\n");
  for (const gone of ["ada-session", "ada-token", "open tickets", "show my tickets", "ada@example.com"]) {
    assert.ok(!stored.includes(gone), `${gone} is gone from storage`);
  }
  assert.equal(t.store.owner, null);
  assert.deepEqual(t.socket.messages.at(-1).customData, { channel: "web_widget" });
  assert.equal(t.socket.messages.at(-1).session_id, "fresh");
});

test("a reply to the previous customer's session that arrives during a sign-out is not shown", () => {
  const t = tab(browser(), { identityToken: ADA });
  t.connection.start();
  t.socket.confirm({ session_id: "ada-session", session_token: "ada-token" });
  t.say("show my tickets");

  t.reset();
  t.socket.open(); // the new socket's request is on its way
  t.socket.fire("bot_uttered", { text: "Ada, you have 2 open tickets" });
  t.socket.fire("session_confirm", { session_id: "fresh", session_token: "fresh-token" });

  assert.deepEqual(t.shown, []);
  assert.equal(t.store.state.messages.length, 0);
});

test("a confirm asked for before a sign-out does not bring the old session back", () => {
  const t = tab(browser(), { identityToken: ADA });
  t.connection.start();
  t.socket.open(); // asked for Ada's session...
  t.reset(); // ...and signed out before the answer
  t.socket.fire("session_confirm", { session_id: "ada-session", session_token: "ada-token" });

  assert.equal(t.store.sessionId, null);
  assert.deepEqual(t.socket.requests.at(-1), {});
});

test("another customer's token starts a new conversation; the previous one's messages are not kept", () => {
  const t = tab(browser(), { identityToken: ADA });
  t.connection.start();
  t.socket.confirm({ session_id: "ada-session", session_token: "ada-token" });
  t.say("show my tickets");

  t.identify(GRACE);
  t.socket.confirm({ session_id: "grace-session", session_token: "grace-token" });
  t.say("hi");

  assert.equal(t.socket.disconnects, 1);
  assert.deepEqual(t.store.state.messages.map((m) => m.text), ["hi"]);
  assert.equal(t.socket.messages.at(-1).customData.identity_token, GRACE);
  assert.equal(t.socket.messages.at(-1).session_id, "grace-session");
});

test("a page with nobody signed in, or someone else, does not continue a signed-in customer's conversation", () => {
  const b = browser();
  const ada = tab(b, { identityToken: ADA });
  ada.connection.start();
  ada.socket.confirm();
  ada.say("show my tickets");
  const owner = ada.store.owner;

  assert.equal(needsFreshStart(owner, parseIdentityToken(ADA_AGAIN), ada.store.epoch), false);
  assert.equal(needsFreshStart(owner, null, ada.store.epoch), true);
  assert.equal(needsFreshStart(owner, parseIdentityToken(GRACE), ada.store.epoch), true);
  assert.equal(needsFreshStart(null, null, ada.store.epoch), false, "an anonymous conversation goes on");

  const later = tab(b); // a reload after the host site signed Ada out without reset()
  assert.equal(later.store.state.messages.length, 0);
  assert.equal(later.store.sessionId, null);
});

test("a sign-out in another tab makes the connected tab leave the session and forget the token", () => {
  const b = browser();
  const connected = tab(b, { identityToken: ADA });
  connected.connection.start();
  connected.socket.confirm({ session_id: "ada-session", session_token: "ada-token" });
  const other = tab(b, { identityToken: ADA });

  other.reset();
  connected.socket.confirm({ session_id: "fresh", session_token: "fresh-token" });
  other.say("hello");
  connected.connection.flush();

  assert.equal(connected.socket.disconnects, 1);
  assert.deepEqual(connected.socket.requests.at(-1), {});
  assert.deepEqual(connected.socket.messages.at(-1).customData, { channel: "web_widget" });
  assert.equal(connected.socket.messages.at(-1).session_id, "fresh");
});

test("a customer who signs in in another tab is who the connected tab sends for", async () => {
  const b = browser();
  const connected = tab(b);
  connected.connection.start();
  connected.socket.confirm();
  const other = tab(b);

  other.identify(ADA);
  await new Promise((resolve) => setImmediate(resolve)); // the broadcast arrives
  other.say("show my tickets");
  connected.connection.flush();

  assert.equal(connected.socket.messages.at(-1).customData.identity_token, ADA);
});

test("another customer signing in in another tab: the connected tab starts over with that customer", async () => {
  const b = browser();
  const connected = tab(b, { identityToken: ADA });
  connected.connection.start();
  connected.socket.confirm({ session_id: "ada-session", session_token: "ada-token" });
  const other = tab(b, { identityToken: ADA });

  other.identify(GRACE);
  await new Promise((resolve) => setImmediate(resolve));
  connected.socket.confirm({ session_id: "grace-session", session_token: "grace-token" });
  other.say("hi");
  connected.connection.flush();

  assert.equal(connected.socket.messages.at(-1).customData.identity_token, GRACE);
  assert.equal(connected.socket.messages.at(-1).session_id, "grace-session");
});

// ---- limits ----------------------------------------------------------------

test("the server's message size limit is kept; without one the widget assumes 2000", () => {
  const t = tab();
  assert.equal(t.store.maxChars, DEFAULT_MAX_CHARS);
  t.connection.start();

  t.socket.confirm(undefined, { message_handled: true, max_message_chars: 500 });

  assert.equal(t.store.maxChars, 500);
  assert.equal(charCount("😀é"), 2, "characters as Python counts them");
});

test("a refusal from the server is a notice, not an answer", () => {
  assert.deepEqual(incomingMessage({ text: "Please slow down a little.", error: "rate_limited" }), {
    from: "notice",
    notice: "rate_limited",
    text: "Please slow down a little.",
  });
  const fallback = incomingMessage({ error: "message_too_long" });
  assert.equal(fallback.from, "notice");
  assert.match(fallback.text, /too long/);
});

test("a throttled message is still answered in full later: the notice does not count as part of its answer", () => {
  const t = tab();
  t.connection.start();
  t.socket.confirm();
  t.say("where is my order");
  const id = t.socket.messages[0].message_id;
  t.socket.fire("bot_uttered", { text: "Please slow down.", error: "rate_limited" });

  mock.timers.tick(RESEND_AFTER_MS + 5000);
  t.socket.fire("bot_uttered", { text: "It ships today.", replay_of: id });
  t.socket.fire("message_handled", { message_id: id });

  assert.deepEqual(t.socket.messages.map((m) => Boolean(m.resend)), [false, true]);
  assert.deepEqual(t.shown.map((m) => [m.from, m.text]), [["notice", "Please slow down."], ["bot", "It ships today."]]);
});

test("a message refused as too long is marked so and not sent again", () => {
  const t = tab();
  t.connection.start();
  t.socket.confirm(undefined, { message_handled: true, max_message_chars: 10 });
  t.store.addCustomerMessage({ text: "x".repeat(50) }); // typed before the limit was known
  t.connection.flush();

  t.socket.fire("bot_uttered", { text: "That is too long for me.", error: "message_too_long" });
  mock.timers.tick(RESEND_AFTER_MS + 5000);

  assert.equal(t.socket.messages.length, 1);
  assert.equal(t.store.state.messages[0].status, "refused");
});

test("a sign-out's greeting is queued in the same write as the reset, so another tab cannot overwrite it", () => {
  const b = browser();
  const t = tab(b, { identityToken: ADA });
  t.say("show my tickets");
  let writes = 0;
  const setItem = t.store.storage.setItem;
  t.store.storage.setItem = (key, value) => {
    writes += 1;
    setItem(key, value);
  };

  t.store.reset({ text: "/greet", payload: "/greet", hidden: true });

  assert.equal(writes, 1);
  assert.deepEqual(
    t.store.read().messages.map((m) => [m.text, m.status, m.hidden]),
    [["/greet", "queued", true]],
  );
});

test("no typing indicator for a message the server handled without a word (dropped while throttled)", () => {
  const t = tab();
  t.connection.start();
  t.socket.confirm();
  t.say("one more");
  assert.equal(t.store.awaitingReply(), true);

  t.socket.fire("message_handled", { message_id: t.socket.messages[0].message_id });

  assert.equal(t.store.awaitingReply(), false);
});
