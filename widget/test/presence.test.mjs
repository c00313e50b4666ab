// A person visibly there (issue 21): the place in the queue, "Sam joined",
// "Sam is typing", "Sam left, you're back with the assistant", as the CRM and
// the assistant send them (custom bot messages, docs/widget.md "A person in
// the chat"). The socket is a recorder; the store is the real one on an
// in-memory localStorage.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { Connection, incomingMessage, presenceOf } from "../src/connection.js";
import { AGENT_TYPING_MS, ConversationStore, describeWait, queueText } from "../src/store.js";
import { FakeSocket, fakeWindow, memoryStorage } from "./fakes.mjs";

class RecordingSocket extends FakeSocket {
  confirm() {
    this.connected = true;
    this.fire("connect");
    this.fire("session_features", { message_handled: true });
    this.fire("session_confirm", { session_id: "session-1", session_token: "token" });
  }
}

/** The widget's connection and store, wired the way index.js wires them. */
function widget(win = fakeWindow()) {
  const store = new ConversationStore("helpdesk-chat:test", win);
  const socket = new RecordingSocket();
  const connection = new Connection(
    { server: "http://rasa", socketPath: "/socket.io/", storageKey: "helpdesk-chat:test" },
    store,
    {
      onStatus() {},
      onIncoming(message) {
        if (message.from === "presence") store.applyPresence(message);
        else store.addIncoming(message, false);
      },
    },
    win,
    () => socket,
  );
  connection.start();
  socket.confirm();
  return { store, socket, connection };
}

const lines = (store) => store.state.messages.filter((m) => m.from === "event").map((m) => m.text);

beforeEach(() => mock.timers.enable({ apis: ["Date", "setInterval"], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

test("a presence payload is read as presence, never as a message with text", () => {
  assert.deepEqual(incomingMessage({ presence: "joined", agent_name: " Sam Rivera " }), {
    from: "presence",
    presence: "joined",
    agentName: "Sam Rivera",
  });
  assert.deepEqual(presenceOf({ presence: "queued", position: 2, expected_wait_seconds: 240 }), {
    from: "presence",
    presence: "queued",
    position: 2,
    expectedWaitSeconds: 240,
  });
});

test("presence payloads that do not make sense are ignored", () => {
  for (const bad of [
    { presence: "joined" }, // nobody joined
    { presence: "typing", agent_name: "   " },
    { presence: "dancing", agent_name: "Sam" },
    { presence: { evil: true }, agent_name: "Sam" },
  ]) {
    assert.equal(incomingMessage(bad), null, JSON.stringify(bad));
  }
  // Nonsense numbers are dropped, the place in the queue is still said.
  assert.deepEqual(presenceOf({ presence: "queued", position: -3, expected_wait_seconds: "soon" }), {
    from: "presence",
    presence: "queued",
  });
  assert.equal(presenceOf({ presence: "queued", expected_wait_seconds: 1e12 }).expectedWaitSeconds, undefined);
});

test("the queue line says the place and the measured wait in plain words", () => {
  assert.equal(queueText({ position: 1, expectedWaitSeconds: 30 }), "You're next in the queue for a person. Expected wait: less than a minute.");
  assert.equal(queueText({ position: 3, expectedWaitSeconds: 250 }), "You're number 3 in the queue for a person. Expected wait: about 4 minutes.");
  assert.equal(queueText({ position: 2 }), "You're number 2 in the queue for a person.");
  assert.equal(queueText({}), "You're in the queue for a person.");
  assert.equal(describeWait(60), "about 1 minute");
  assert.equal(describeWait(2 * 3600 + 60), "about 2 hours");
  // The header's one line says it short.
  assert.equal(describeWait(250, true), "~4 min");
  assert.equal(describeWait(20, true), "under 1 min");
});

test("queued, joined, typing, reply, left: the conversation as the customer sees it", () => {
  const { store, socket } = widget();
  socket.fire("bot_uttered", { text: "Thanks! I've asked our support team to join." });
  socket.fire("bot_uttered", { presence: "queued", position: 2, expected_wait_seconds: 180 });
  assert.deepEqual(store.state.handoff, { state: "queued", position: 2, expectedWaitSeconds: 180 });

  socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam Rivera" });
  assert.equal(store.state.handoff.state, "joined");
  assert.equal(store.state.handoff.agentName, "Sam Rivera");
  assert.equal(store.agentTyping(), false);

  socket.fire("bot_uttered", { presence: "typing", agent_name: "Sam Rivera" });
  assert.equal(store.agentTyping(), true);
  mock.timers.tick(AGENT_TYPING_MS + 1);
  assert.equal(store.agentTyping(), false, "a person who stopped typing is not shown typing for ever");

  socket.fire("bot_uttered", { presence: "typing", agent_name: "Sam Rivera" });
  socket.fire("bot_uttered", { text: "Hi, I'm Sam. Let me look.", agent_name: "Sam Rivera" });
  assert.equal(store.agentTyping(), false, "the reply ends the typing");

  socket.fire("bot_uttered", { presence: "left", agent_name: "Sam Rivera" });
  assert.equal(store.state.handoff, null);
  assert.deepEqual(lines(store), [
    "You're number 2 in the queue for a person. Expected wait: about 3 minutes.",
    "Sam Rivera joined the conversation",
    "Sam Rivera left the conversation. You're back with the assistant.",
  ]);
  // In order, among the messages.
  assert.deepEqual(
    store.state.messages.map((m) => m.from),
    ["bot", "event", "event", "agent", "event"],
  );
});

test("a second 'joined' of the same person adds no second line", () => {
  const { store, socket } = widget();
  socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam" });
  socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam" });
  assert.deepEqual(lines(store), ["Sam joined the conversation"]);
});

test("the assistant speaking again after a person means they left, even if their 'left' was missed", () => {
  const { store, socket } = widget();
  socket.fire("bot_uttered", { text: "Hello, Sam here.", agent_name: "Sam" });
  assert.equal(store.state.handoff.state, "joined", "a reply without a 'joined' still means a person has the chat");
  socket.fire("bot_uttered", { text: "How would you rate the help you got?" });
  assert.equal(store.state.handoff, null);
  assert.deepEqual(lines(store), ["You're back with the assistant."]);
});

test("the CRM's presence signals do not count as replies; the queue line from the assistant does", () => {
  const w = widget();
  w.store.addCustomerMessage({ text: "a person please" });
  w.connection.flush();
  const [sent] = w.socket.messages;
  w.socket.fire("bot_uttered", { presence: "typing", agent_name: "Sam" });
  w.socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam" });
  assert.equal(w.store.state.messages.find((m) => m.id === sent.message_id).replies, undefined);
  w.socket.fire("bot_uttered", { text: "Thanks! I've asked our support team to join." });
  w.socket.fire("bot_uttered", { presence: "queued", position: 1 });
  assert.equal(w.store.state.messages.find((m) => m.id === sent.message_id).replies, 2);
});

test("a replayed 'joined' or 'typing' is old news and changes nothing", () => {
  const w = widget();
  w.socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam", replay_of: "a".repeat(32) });
  w.socket.fire("bot_uttered", { presence: "typing", agent_name: "Sam", replay_of: "a".repeat(32) });
  assert.equal(w.store.state.handoff, null);
  assert.deepEqual(lines(w.store), []);
});

test("a button's title goes with its payload, so the agent later reads what the customer chose", () => {
  const w = widget();
  w.store.addCustomerMessage({ text: "Talk to a person", payload: "/request_human" });
  w.store.addCustomerMessage({ text: "/greet", payload: "/greet", hidden: true });
  w.store.addCustomerMessage({ text: "just words" });
  w.connection.flush();
  const [button, greet, typed] = w.socket.messages;
  assert.equal(button.message, "/request_human");
  assert.equal(button.customData.button_title, "Talk to a person");
  assert.equal(greet.customData.button_title, undefined);
  assert.equal(typed.customData.button_title, undefined);
});

test("the person in the chat is shared with the site's other tabs and survives a reload", () => {
  const storage = memoryStorage();
  const first = widget(fakeWindow(storage));
  first.socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam" });
  const reloaded = new ConversationStore("helpdesk-chat:test", fakeWindow(storage));
  assert.deepEqual(reloaded.state.handoff, { state: "joined", agentName: "Sam", typingAt: null });
});

test("a new conversation (sign-out) forgets the person who had the last one", () => {
  const { store, socket } = widget();
  socket.fire("bot_uttered", { presence: "joined", agent_name: "Sam" });
  store.reset();
  assert.equal(store.state.handoff, null);
});
