// Turning message text into safe pieces the UI renders as DOM nodes.
//
// Nothing here produces HTML: the UI makes text nodes of "text" pieces and
// <a> elements of "link" pieces, so neither the customer nor the bot can
// inject markup. Links are only ever http(s) or mailto.

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

// [label](url) as Rasa responses often write links.
const MARKDOWN_LINK = /\[([^\]\n]{1,200})\]\(([^()\s]{1,2000})\)/g;
// Bare URLs, www. addresses and email addresses.
const AUTOLINK = /\b(?:https?:\/\/|mailto:|www\.)[^\s<>"]+|[\w.+-]+@[a-z\d-]+(?:\.[a-z\d-]+)*\.[a-z]{2,}\b/gi;
const TRAILING_PUNCTUATION = ".,;:!?'\"*]}>";

/** The absolute URL for `raw` if it is safe to open, otherwise null. */
export function safeHref(raw) {
  if (typeof raw !== "string") return null;
  let candidate = raw.trim();
  if (/^www\./i.test(candidate)) candidate = `https://${candidate}`;
  else if (!/^[a-z][a-z\d+.-]*:/i.test(candidate) && /^[^\s@/]+@[^\s@/]+\.[^\s@/]+$/.test(candidate)) {
    candidate = `mailto:${candidate}`;
  }
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
  if (url.protocol !== "mailto:" && !url.hostname) return null;
  return url.href;
}

/** Splits off closing punctuation that ends a sentence rather than the URL. */
function trimUrl(match) {
  let url = match;
  while (url) {
    const last = url[url.length - 1];
    // "(see https://example.com/a_(b))" keeps the balanced parenthesis.
    const unbalanced = last === ")" && count(url, "(") < count(url, ")");
    if (!TRAILING_PUNCTUATION.includes(last) && !unbalanced) break;
    url = url.slice(0, -1);
  }
  return [url, match.slice(url.length)];
}

function count(text, char) {
  return text.split(char).length - 1;
}

function autolink(text, pieces) {
  let last = 0;
  for (const match of text.matchAll(AUTOLINK)) {
    const [candidate, trailing] = trimUrl(match[0]);
    const href = safeHref(candidate);
    if (!href) continue;
    if (match.index > last) pieces.push({ type: "text", value: text.slice(last, match.index) });
    pieces.push({ type: "link", href, label: candidate });
    last = match.index + candidate.length;
    if (trailing) {
      pieces.push({ type: "text", value: trailing });
      last += trailing.length;
    }
  }
  if (last < text.length) pieces.push({ type: "text", value: text.slice(last) });
}

/**
 * Splits message text into `{type: "text", value}` and
 * `{type: "link", href, label}` pieces, in order.
 */
export function tokenize(text) {
  const pieces = [];
  if (typeof text !== "string" || !text) return pieces;
  let last = 0;
  for (const match of text.matchAll(MARKDOWN_LINK)) {
    const href = safeHref(match[2]);
    if (!href) continue;
    autolink(text.slice(last, match.index), pieces);
    pieces.push({ type: "link", href, label: match[1] });
    last = match.index + match[0].length;
  }
  autolink(text.slice(last), pieces);
  // Adjacent text pieces merge, so the DOM gets one text node per run.
  return pieces.reduce((merged, piece) => {
    const previous = merged[merged.length - 1];
    if (piece.type === "text" && previous?.type === "text") previous.value += piece.value;
    else merged.push({ ...piece });
    return merged;
  }, []);
}

/** "14:05" today, "Mon 14:05" this week, "12 Mar, 14:05" before. */
export function formatTime(timestamp, now = Date.now(), locale = undefined) {
  const date = new Date(timestamp);
  const time = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" }).format(date);
  const today = new Date(now);
  if (date.toDateString() === today.toDateString()) return time;
  const sixDays = 6 * 24 * 3600 * 1000;
  if (now - timestamp < sixDays) {
    return `${new Intl.DateTimeFormat(locale, { weekday: "short" }).format(date)} ${time}`;
  }
  return `${new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" }).format(date)}, ${time}`;
}
