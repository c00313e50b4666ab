// Who the customer is, as the host site says it: a signed identity token (a
// JWT its backend signs with CHAT_IDENTITY_SECRET for its own signed-in
// customer, docs/widget.md "Signed-in customers"). The widget cannot verify
// it and does not try: Rasa's channel does, on every message. The widget only
// reads the token's `email` to tell whether the conversation in this browser
// belongs to someone else, so as not to show one customer's messages to the
// next.
//
// The token lives in memory only (never in localStorage or sessionStorage):
// the host page puts it on the script tag on every page a signed-in customer
// sees, so a reload brings it back, and a page left open after the host's
// sign-out no longer has it after a reload. Other tabs of the site learn it
// through a BroadcastChannel (memory too), because only one tab holds the
// connection and sends what every tab's customer types.
//
// The stored conversation is marked with its owner: a salted hash of the
// email of the identity it was continued under (`ownerKey`), not the email.
// A page whose identity differs from the owner's, or that has none at all,
// starts a new conversation (`needsFreshStart`): Rasa keeps a verified
// identity for the rest of its session, so the stored session must not pass
// from one customer to the next.

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// The channel refuses longer ones (docs/security.md); so does the widget.
export const MAX_TOKEN_CHARS = 4096;

function decodeSegment(segment) {
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/**
 * `{token, email}` for a value shaped like a JWT (`email` read from its
 * payload, unverified, lowercased; null when it has none), otherwise null.
 */
export function parseIdentityToken(value) {
  if (typeof value !== "string") return null;
  const token = value.trim();
  if (!token || token.length > MAX_TOKEN_CHARS || !JWT.test(token)) return null;
  let email = null;
  try {
    const claims = JSON.parse(decodeSegment(token.split(".")[1]));
    if (typeof claims?.email === "string" && claims.email.trim()) email = claims.email.trim().toLowerCase();
  } catch {
    // Not JSON: Rasa's channel will refuse it; the widget sends it all the same.
  }
  return { token, email };
}

/** cyrb53: a small, fast, well-mixed 53-bit string hash (public domain, bryc). */
function cyrb53(text, seed = 0) {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * What the stored conversation keeps to know whose it is: a hash of the
 * email salted with the conversation's `epoch` (random per conversation),
 * so the address itself is not left in the browser's storage. Null without
 * an email.
 */
export function ownerKey(email, salt) {
  if (!email) return null;
  return cyrb53(`${salt}\n${email}`).toString(16);
}

/**
 * Whether the stored conversation, owned by `owner` (an ownerKey or null),
 * must not be continued by a page whose identity is `identity` ({email} or
 * null): it belongs to a signed-in customer and this is someone else, or
 * nobody signed in.
 */
export function needsFreshStart(owner, identity, salt) {
  return owner !== null && owner !== ownerKey(identity?.email, salt);
}

/**
 * The identity of this tab, in memory, kept in step with the other tabs of
 * the site: a new conversation (another tab's reset, a changed `epoch` in the
 * store) forgets it, unless it came with that very conversation.
 */
export class IdentityKeeper {
  /**
   * @param store         the ConversationStore
   * @param claimedEmail  data-customer-email: an unverified claim, sent only without a token
   * @param channel       a BroadcastChannel (or null): how the tabs tell each other
   */
  constructor(store, { claimedEmail = null, channel = null } = {}) {
    this.store = store;
    this.current = null;
    this.claimedEmail = claimedEmail;
    this.channel = channel;
    this.epoch = store.epoch;
    this.pending = null; // a token another tab announced for a conversation this tab has not seen yet
    store.subscribe(() => this.followStore());
    if (channel) {
      channel.onmessage = (event) => this.receive(event.data);
    }
  }

  get token() {
    return this.current?.token || null;
  }

  /** The fields of `customData` that say who the customer is. */
  customData() {
    if (this.current) return { identity_token: this.current.token };
    if (this.claimedEmail) return { email: this.claimedEmail };
    return {};
  }

  /** Whether adopting `identity` ({token, email}) requires a new conversation first. */
  needsFreshStart(identity) {
    if (this.current?.email && identity?.email && this.current.email !== identity.email) return true;
    return needsFreshStart(this.store.owner, identity, this.store.epoch);
  }

  /**
   * Adopts `identity` in this tab (the caller started a new conversation
   * first if needsFreshStart said so), marks the conversation as its, and
   * tells the other tabs.
   */
  adopt(identity) {
    this.current = identity;
    this.claimedEmail = null; // a token says more than a claim
    this.epoch = this.store.epoch;
    const key = ownerKey(identity.email, this.store.epoch);
    if (key && this.store.owner !== key) this.store.setOwner(key);
    this.channel?.postMessage({ type: "identity", token: identity.token, epoch: this.store.epoch });
  }

  /** Forgets who the customer is (sign-out). */
  clear() {
    this.current = null;
    this.claimedEmail = null;
    this.pending = null;
    this.epoch = this.store.epoch;
  }

  followStore() {
    if (this.store.epoch === this.epoch) return;
    // Another tab started a new conversation (sign-out, or another customer).
    this.epoch = this.store.epoch;
    const pending = this.pending;
    this.clear();
    if (pending?.epoch === this.epoch) this.current = parseIdentityToken(pending.token);
  }

  receive(data) {
    if (!data || data.type !== "identity" || typeof data.epoch !== "string") return;
    const identity = parseIdentityToken(data.token);
    if (!identity) return;
    if (data.epoch === this.store.epoch) {
      this.current = identity;
      this.claimedEmail = null;
    } else {
      this.pending = { token: identity.token, epoch: data.epoch };
    }
  }
}
