// No message lost (issue 11): message ids, resends after a reconnect or 20 s
// of silence, replayed answers shown once. The socket is a recorder; the
// store is the real one on an in-memory localStorage.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { Connection } from "../src/connection.js";
import { IdentityKeeper } from "../src/identity.js";
import { ConversationStore, RESEND_AFTER_MS, RESEND_WITHIN_MS } from "../src/store.js";
import { FakeSocket, fakeWindow, memoryStorage } from "./fakes.mjs";

class RecordingSocket extends FakeSocket {
  // What a (re)connection to Rasa looks like from the widget; `acks`: our
  // channel's, which says when it has finished a message (bot/channels.py).
  confirm({ acks = false } = {}) {
    this.connected = true;
    this.fire("connect");
    if (acks) this.fire("session_features", { message_handled: true });
    this.fire("session_confirm", "session");
  }
  drop() {
    this.connected = false;
    this.fire("disconnect", "transport close");
  }
}

function widget(win = fakeWindow()) {
  const store = new ConversationStore("helpdesk-chat:test", win);
  const socket = new RecordingSocket();
  const shown = [];
  const connection = new Connection(
    { server: "http://rasa", socketPath: "/socket.io/", storageKey: "helpdesk-chat:test" },
    store,
    { onStatus() {}, onIncoming: (message) => shown.push(message.text) },
    win,
    () => socket,
    new IdentityKeeper(store, { claimedEmail: "ada@example.com" }),
  );
  connection.start();
  return { store, socket, shown, connection, win };
}

function say(w, text) {
  w.store.addCustomerMessage({ text });
  w.connection.flush();
}

beforeEach(() => mock.timers.enable({ apis: ["Date", "setInterval"], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

test("each message goes out once with its own id as message_id, beside the fields Rasa reads", () => {
  const w = widget();
  w.socket.confirm();

  say(w, "where is my order");
  say(w, "it was a kettle");

  const [first, second] = w.socket.messages;
  assert.deepEqual(Object.keys(first).sort(), ["customData", "message", "message_id", "session_id"]);
  assert.equal(first.message, "where is my order");
  assert.equal(first.session_id, w.store.sessionId);
  assert.deepEqual(first.customData, { channel: "web_widget", email: "ada@example.com" });
  assert.match(first.message_id, /^[0-9a-f]{32}$/);
  assert.notEqual(first.message_id, second.message_id);
  assert.equal(first.message_id, w.store.state.messages[0].id);
  assert.equal(w.socket.messages.length, 2);
});

test("a message unanswered when the socket reconnects is sent again, once, with the same id", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  const [original] = w.socket.messages;

  w.socket.drop();
  w.socket.confirm();
  w.socket.drop();
  w.socket.confirm();

  assert.deepEqual(w.socket.messages, [original, { ...original, resend: true }]);
});

test("a message answered before the reconnect is not sent again", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  w.socket.fire("bot_uttered", { text: "It ships today." });

  w.socket.drop();
  w.socket.confirm();

  assert.equal(w.socket.messages.length, 1);
  assert.deepEqual(w.shown, ["It ships today."]);
});

test("no reply for 20 s while connected sends the message again, once", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");

  mock.timers.tick(RESEND_AFTER_MS - 5000);
  const before = w.socket.messages.length;
  mock.timers.tick(5000);
  mock.timers.tick(60_000);

  assert.equal(before, 1);
  assert.deepEqual(w.socket.messages.map((m) => m.resend), [undefined, true]);
  assert.equal(w.socket.messages[1].message_id, w.socket.messages[0].message_id);
});

test("a message answered in time is not sent again by the timer", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  mock.timers.tick(3000);
  w.socket.fire("bot_uttered", { text: "It ships today." });

  mock.timers.tick(60_000);

  assert.equal(w.socket.messages.length, 1);
});

test("Rasa's replayed answer to a resent message is shown, every part of it", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  const id = w.socket.messages[0].message_id;
  w.socket.drop(); // the reply went to a socket that was gone
  w.socket.confirm();

  w.socket.fire("bot_uttered", { text: "It ships today.", replay_of: id });
  w.socket.fire("bot_uttered", { text: "Anything else?", replay_of: id });

  assert.deepEqual(w.shown, ["It ships today.", "Anything else?"]);
});

test("a replayed answer is dropped when the reply itself came after all: nothing is shown twice", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  const id = w.socket.messages[0].message_id;
  mock.timers.tick(RESEND_AFTER_MS); // slow, so sent again

  w.socket.fire("bot_uttered", { text: "It ships today." }); // the first copy's answer
  w.socket.fire("bot_uttered", { text: "It ships today.", replay_of: id }); // the copy's

  assert.equal(w.socket.messages.length, 2);
  assert.deepEqual(w.shown, ["It ships today."]);
});

test("a replay for a message that was never resent is dropped", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");

  w.socket.fire("bot_uttered", { text: "It ships today.", replay_of: w.socket.messages[0].message_id });
  w.socket.fire("bot_uttered", { text: "Hello", replay_of: "someone-elses-message" });

  assert.deepEqual(w.shown, []);
});

test("a message from long ago is not sent again on reconnect", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  w.socket.drop();

  mock.timers.tick(RESEND_WITHIN_MS);
  w.socket.confirm();

  assert.equal(w.socket.messages.length, 1);
});

test("queued messages still go out once, after the unanswered ones are resent", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "first");
  w.socket.drop();
  say(w, "typed while offline");

  w.socket.confirm();

  assert.deepEqual(
    w.socket.messages.map((m) => [m.message, Boolean(m.resend)]),
    [["first", false], ["first", true], ["typed while offline", false]],
  );
});

test("the tab that takes over the connection sends an unanswered message again, and only once", () => {
  const storage = memoryStorage();
  const first = widget(fakeWindow(storage));
  first.socket.confirm();
  say(first, "where is my order");
  first.socket.drop(); // the tab is closed before the reply

  const second = widget(fakeWindow(storage));
  second.socket.confirm();
  const third = widget(fakeWindow(storage));
  third.socket.confirm();

  assert.equal(second.socket.messages.length, 1);
  assert.equal(second.socket.messages[0].resend, true);
  assert.equal(second.socket.messages[0].message_id, first.socket.messages[0].message_id);
  assert.equal(third.socket.messages.length, 0);
});

test("the typing indicator shows again while a resent message waits for its answer", () => {
  const w = widget();
  w.socket.confirm();
  say(w, "where is my order");
  w.socket.drop();
  mock.timers.tick(RESEND_AFTER_MS + 1000);
  assert.equal(w.store.awaitingReply(), false, "past the typing timeout of the first send");

  w.socket.confirm();

  assert.equal(w.store.awaitingReply(), true);
});

// --- a server that says when it has finished a message (message_handled) ---

test("a reply cut off half-way is sent again on reconnect, and only the rest of the replayed answer is shown", () => {
  const w = widget();
  w.socket.confirm({ acks: true });
  say(w, "my blender arrived cracked");
  const id = w.socket.messages[0].message_id;
  w.socket.fire("bot_uttered", { text: "Sorry to hear that." });
  w.socket.drop(); // the instance died before the rest of the answer (and before saving it)

  w.socket.confirm({ acks: true });
  assert.deepEqual(
    w.socket.messages.map((m) => [m.message_id, Boolean(m.resend)]),
    [[id, false], [id, true]],
  );
  // Processed again, every part marked as a replay: the first part is there already.
  w.socket.fire("bot_uttered", { text: "Sorry to hear that.", replay_of: id });
  w.socket.fire("bot_uttered", { text: "What is your email?", replay_of: id });
  w.socket.fire("message_handled", { message_id: id });

  assert.deepEqual(w.shown, ["Sorry to hear that.", "What is your email?"]);
  w.socket.drop();
  w.socket.confirm({ acks: true });
  assert.equal(w.socket.messages.length, 2, "handled: not sent a third time");
});

test("a message handled is not sent again, however many replies it had or none", () => {
  const w = widget();
  w.socket.confirm({ acks: true });
  say(w, "where is my order");
  w.socket.fire("bot_uttered", { text: "It ships today." });
  w.socket.fire("bot_uttered", { text: "Anything else?" });
  w.socket.fire("message_handled", { message_id: w.socket.messages[0].message_id });
  say(w, "thanks"); // a person has the conversation: the bot stays silent
  w.socket.fire("message_handled", { message_id: w.socket.messages[1].message_id });

  mock.timers.tick(RESEND_AFTER_MS + 5000);
  w.socket.drop();
  w.socket.confirm({ acks: true });

  assert.equal(w.socket.messages.length, 2);
  assert.deepEqual(w.shown, ["It ships today.", "Anything else?"]);
});

test("replies count towards the oldest message still awaiting, each replay shown once", () => {
  const w = widget();
  w.socket.confirm({ acks: true });
  say(w, "first");
  say(w, "second");
  const [first, second] = w.socket.messages.map((m) => m.message_id);
  w.socket.fire("bot_uttered", { text: "answer to first" });
  w.socket.fire("message_handled", { message_id: first });
  w.socket.drop(); // before anything answered the second

  w.socket.confirm({ acks: true });
  w.socket.fire("bot_uttered", { text: "answer to second", replay_of: second });
  w.socket.fire("bot_uttered", { text: "answer to second", replay_of: second }); // a duplicate replay: a later part

  assert.deepEqual(
    w.socket.messages.map((m) => [m.message_id, Boolean(m.resend)]),
    [[first, false], [second, false], [second, true]],
  );
  assert.deepEqual(w.shown, ["answer to first", "answer to second", "answer to second"]);
});

test("a slow whole answer followed by the replay of the resend shows nothing twice", () => {
  const w = widget();
  w.socket.confirm({ acks: true });
  say(w, "where is my order");
  const id = w.socket.messages[0].message_id;
  mock.timers.tick(RESEND_AFTER_MS); // slow, so sent again
  assert.equal(w.socket.messages.length, 2);

  w.socket.fire("bot_uttered", { text: "It ships today." }); // the first copy's answer
  w.socket.fire("bot_uttered", { text: "Anything else?" });
  w.socket.fire("message_handled", { message_id: id });
  w.socket.fire("bot_uttered", { text: "It ships today.", replay_of: id }); // the copy's
  w.socket.fire("bot_uttered", { text: "Anything else?", replay_of: id });
  w.socket.fire("message_handled", { message_id: id });

  assert.deepEqual(w.shown, ["It ships today.", "Anything else?"]);
});

test("from a server that does not say so, the first reply still answers a message", () => {
  const w = widget();
  w.socket.confirm({ acks: true });
  w.socket.drop();
  w.socket.confirm(); // another instance, a stock one
  say(w, "where is my order");
  w.socket.fire("bot_uttered", { text: "It ships today." });
  w.socket.drop();

  w.socket.confirm();

  assert.equal(w.socket.messages.length, 1);
});
