// Settings come from the data- attributes of the widget's own <script> tag.

export const DEFAULTS = {
  title: "Chat with us",
  subtitle: "We usually reply in a few seconds",
  botName: "Assistant",
  primaryColor: "#2454d6",
  initPayload: "/greet",
  position: "right",
  socketPath: "/socket.io/",
};

const EMAIL = /^[^\s@<>"]{1,64}@[^\s@<>"]{1,190}\.[^\s@<>"]{2,63}$/;

/** The <script> element that loaded the widget. */
export function findScript(doc = document) {
  return (
    doc.currentScript ||
    doc.querySelector("script[data-server][src*='widget']") ||
    doc.querySelector("script[src*='widget.js']")
  );
}

/**
 * Reads the configuration from a script element's dataset.
 * `location` is the host page's location (for the default server).
 */
export function readConfig(dataset, location) {
  const server = parseServer(dataset.server, location);
  const primary = parseColor(dataset.primaryColor) || parseColor(DEFAULTS.primaryColor);
  const email = (dataset.customerEmail || "").trim();
  return {
    server: server.origin,
    socketPath: joinPath(server.pathname, dataset.socketPath || DEFAULTS.socketPath),
    title: clean(dataset.title, 60) || DEFAULTS.title,
    subtitle: clean(dataset.subtitle, 90) || DEFAULTS.subtitle,
    botName: clean(dataset.botName, 40) || DEFAULTS.botName,
    colors: paletteFor(primary),
    // A claim, not proof (docs/widget.md): the assistant may open a ticket for
    // it and shows nothing personal. data-identity-token proves who it is.
    customerEmail: EMAIL.test(email) ? email : null,
    // Checked by identity.js; kept in memory only.
    identityToken: typeof dataset.identityToken === "string" ? dataset.identityToken.trim() || null : null,
    initPayload: dataset.initPayload === undefined ? DEFAULTS.initPayload : clean(dataset.initPayload, 200),
    position: dataset.position === "left" ? "left" : "right",
    startOpen: dataset.open === "true",
    storageKey: `helpdesk-chat:v1:${server.origin}${server.pathname}`,
  };
}

function clean(value, maxLength) {
  return typeof value === "string" ? value.trim().slice(0, maxLength) : "";
}

function parseServer(value, location) {
  // Rasa's default port on the host page's host, like a local `make run`.
  const fallback = `${location.protocol}//${location.hostname}:5005`;
  let url;
  try {
    url = new URL(value || fallback, location.href);
  } catch {
    url = new URL(fallback);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") url = new URL(fallback);
  return { origin: url.origin, pathname: url.pathname.replace(/\/+$/, "") };
}

// A server behind a path prefix (https://example.com/rasa) keeps socket.io
// under that prefix; the URL's path is not a socket.io namespace.
function joinPath(prefix, socketPath) {
  const path = `/${socketPath.replace(/^\/+/, "")}`;
  return `${prefix}${path}`.replace(/\/{2,}/g, "/");
}

// ---- colours ---------------------------------------------------------------

/** [r, g, b] from "#rgb" or "#rrggbb", otherwise null. */
export function parseColor(value) {
  const match = /^#?([\da-f]{3}|[\da-f]{6})$/i.exec((value || "").trim());
  if (!match) return null;
  let hex = match[1];
  if (hex.length === 3) hex = [...hex].map((c) => c + c).join("");
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function luminance([r, g, b]) {
  const [lr, lg, lb] = [r, g, b].map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * lr + 0.7152 * lg + 0.0722 * lb;
}

/** WCAG contrast ratio of two colours. */
export function contrast(a, b) {
  const [high, low] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (high + 0.05) / (low + 0.05);
}

function mix(color, toward, amount) {
  return color.map((c, i) => Math.round(c + (toward[i] - c) * amount));
}

const toHex = (color) => `#${color.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
const WHITE = [255, 255, 255];
const INK = [17, 24, 39];
const BLACK = [0, 0, 0];

/** Darkens `color` until it reaches `ratio` against `background`. */
function readableOn(color, background, ratio) {
  let result = color;
  for (let step = 1; step <= 20 && contrast(result, background) < ratio; step++) {
    result = mix(color, BLACK, step / 20);
  }
  return result;
}

/**
 * The colours the UI needs from one brand colour, all meeting WCAG AA:
 * `primary` the brand colour, shifted only if no text colour reaches AA on it (backgrounds: header, launcher, customer bubbles),
 * `onPrimary` text on it (white or near-black, whichever contrasts more),
 * `accent` the brand colour darkened where needed for text and borders on white.
 */
export function paletteFor(brand) {
  const onPrimary = contrast(brand, WHITE) >= contrast(brand, INK) ? WHITE : INK;
  let primary = brand;
  // Mid-tones reach 4.5:1 with neither: shift the background, not the text.
  for (let step = 1; step <= 20 && contrast(primary, onPrimary) < 4.5; step++) {
    primary = mix(brand, onPrimary === WHITE ? BLACK : WHITE, step / 20);
  }
  return {
    primary: toHex(primary),
    onPrimary: toHex(onPrimary),
    accent: toHex(readableOn(brand, WHITE, 4.5)),
    accentSoft: toHex(mix(brand, WHITE, 0.9)),
  };
}
