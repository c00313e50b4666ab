// What the widget's tests run it on: an in-memory localStorage, a window with
// just what the widget touches, and a socket.io client that records what the
// widget sends and lets a test fire what the server would.

export function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

/** A window; `listeners` holds its "storage" listeners (another tab writing). */
export function fakeWindow(storage = memoryStorage()) {
  const listeners = [];
  return {
    localStorage: storage,
    navigator: { onLine: true }, // no Web Locks: the tab connects at once
    addEventListener(type, fn) {
      if (type === "storage") listeners.push(fn);
    },
    listeners,
    setInterval: (fn, ms) => setInterval(fn, ms),
  };
}

export class FakeSocket {
  constructor() {
    this.handlers = {};
    this.sent = [];
    this.connected = false;
    this.io = { on() {} };
  }
  on(event, handler) {
    this.handlers[event] = handler;
  }
  emit(event, data) {
    this.sent.push([event, data]);
  }
  fire(event, ...args) {
    this.handlers[event]?.(...args);
  }
  connect() {}
  disconnect() {}
  get messages() {
    return this.sent.filter(([event]) => event === "user_uttered").map(([, data]) => data);
  }
}
