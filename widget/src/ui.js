// The launcher and the chat panel, inside a shadow root.
//
// Message text only ever becomes text nodes and <a> elements built by
// `appendText` (see text.js): nothing a customer, the bot or an agent says
// is parsed as HTML. The markup strings below are constants.

import css from "./styles.css";
import * as icons from "./icons.js";
import { AGENT_TYPING_MS, TYPING_TIMEOUT_MS, charCount, describeWait } from "./store.js";
import { formatTime, tokenize } from "./text.js";

const SKELETON = `
<div class="hc">
  <section class="panel" id="hc-panel" role="dialog" aria-labelledby="hc-title" aria-describedby="hc-subtitle">
    <header class="header">
      <span class="avatar" aria-hidden="true">${icons.BOT}</span>
      <div class="heading">
        <h2 class="title" id="hc-title" tabindex="-1"></h2>
        <p class="subtitle" id="hc-subtitle"><span class="dot" aria-hidden="true"></span><span class="status-text"></span></p>
      </div>
      <button type="button" class="icon-button close" aria-label="Close chat">${icons.MINIMISE}</button>
    </header>
    <p class="banner" role="status" hidden></p>
    <div class="scroller" tabindex="0" role="region" aria-label="Conversation">
      <div class="log" role="log" aria-live="polite" aria-relevant="additions"></div>
      <p class="empty" hidden>Send us a message and we'll get right back to you.</p>
      <div class="row typing from-bot" hidden>
        <span class="avatar" aria-hidden="true">${icons.BOT}</span>
        <div class="body"><div class="bubble"><span class="sr-only typing-label"></span><i></i><i></i><i></i></div></div>
      </div>
    </div>
    <div class="quick-replies" role="group" aria-label="Suggested replies" hidden></div>
    <form class="composer" novalidate>
      <label class="sr-only" for="hc-input">Your message</label>
      <textarea class="input" id="hc-input" rows="1" placeholder="Write a message…" enterkeyhint="send" autocomplete="off" aria-describedby="hc-limit"></textarea>
      <button type="submit" class="send" aria-label="Send message">${icons.SEND}</button>
    </form>
    <div class="limit" id="hc-limit" aria-hidden="true" hidden>
      <p class="limit-text"></p>
      <span class="limit-count"></span>
    </div>
    <p class="sr-only limit-status" role="status"></p>
  </section>
  <button type="button" class="launcher" aria-controls="hc-panel" aria-expanded="false">
    <span class="icon icon-chat">${icons.CHAT}</span>
    <span class="icon icon-close">${icons.CHEVRON_DOWN}</span>
    <span class="badge" aria-hidden="true" hidden></span>
  </button>
</div>`;

// The character counter shows from this share of the limit on.
const LIMIT_WARNING_SHARE = 0.9;
const formatNumber = (n) => n.toLocaleString("en-GB");

const STATUS_TEXT = {
  connecting: "Connecting…",
  offline: "Offline",
};
const BANNER_TEXT = {
  connecting: "Reconnecting… Anything you send now goes out as soon as we're back.",
  offline: "You're offline. Anything you send now goes out when you're back online.",
};
// Messages this far apart start a new group with its own name and time.
const GROUP_GAP_MS = 5 * 60 * 1000;
// Brief blips while (re)connecting are not worth a banner.
const BANNER_DELAY_MS = 1500;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Appends `text` to `parent` as text nodes and safe links. */
export function appendText(parent, text) {
  for (const piece of tokenize(text)) {
    if (piece.type === "link") {
      const link = el("a", "", piece.label);
      link.href = piece.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      parent.append(link);
    } else {
      parent.append(document.createTextNode(piece.value));
    }
  }
}

function initials(name) {
  const parts = name.split(/\s+/).filter(Boolean);
  return (parts[0]?.[0] || "?") + (parts.length > 1 ? parts[parts.length - 1][0] : "");
}

export class ChatUI {
  /**
   * @param config   the widget configuration
   * @param store    the ConversationStore
   * @param actions  {send(text, payload), opened(), closed()}
   */
  constructor(config, store, actions) {
    this.config = config;
    this.store = store;
    this.actions = actions;
    this.rendered = new Map();
    this.lastRendered = null;
    this.isOpen = false;
    this.status = "idle";
    this.bannerTimer = null;
    this.typingTimer = null;
  }

  mount(doc = document) {
    this.host = el("div");
    this.host.setAttribute("data-helpdesk-chat", "");
    const root = this.host.attachShadow({ mode: "open" });
    const style = el("style", "", css);
    const template = el("template");
    template.innerHTML = SKELETON;
    root.append(style, template.content);

    const $ = (selector) => root.querySelector(selector);
    this.root = $(".hc");
    this.panel = $(".panel");
    this.title = $(".title");
    this.headerAvatar = $(".header .avatar");
    this.subtitle = $(".subtitle");
    this.statusText = $(".status-text");
    this.banner = $(".banner");
    this.scroller = $(".scroller");
    this.log = $(".log");
    this.empty = $(".empty");
    this.typing = $(".typing");
    this.typingAvatar = $(".typing .avatar");
    this.typingLabel = $(".typing-label");
    this.quickReplies = $(".quick-replies");
    this.form = $(".composer");
    this.input = $(".input");
    this.sendButton = $(".send");
    this.limit = $(".limit");
    this.limitText = $(".limit-text");
    this.limitCount = $(".limit-count");
    this.limitStatus = $(".limit-status");
    this.launcher = $(".launcher");
    this.badge = $(".badge");

    const { colors, position, title, botName } = this.config;
    for (const [name, value] of Object.entries({
      "--hc-primary": colors.primary,
      "--hc-on-primary": colors.onPrimary,
      "--hc-on-primary-rgb": colors.onPrimary === "#ffffff" ? "255 255 255" : "17 24 39",
      "--hc-accent": colors.accent,
      "--hc-accent-soft": colors.accentSoft,
    })) {
      this.root.style.setProperty(name, value);
    }
    this.root.classList.toggle("left", position === "left");
    this.title.textContent = title;
    this.typingLabel.textContent = `${botName} is typing`;
    this.updateLauncher();
    this.setStatus("idle");

    this.launcher.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    $(".close").addEventListener("click", () => this.close());
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        this.close();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line; not while an IME composes.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.fitInput();
      this.updateLimit();
    });
    // Keep the newest message in view when the panel changes size (a phone
    // turned, the keyboard shown), unless the customer scrolled up to read.
    this.pinned = true;
    let lastTop = 0;
    let lastSize = "";
    this.scroller.addEventListener(
      "scroll",
      () => {
        const top = this.scroller.scrollTop;
        const size = `${this.scroller.clientWidth}x${this.scroller.clientHeight}`;
        // Scrolling caused by a resize says nothing about the customer's intent,
        // and a smooth scroll to a new message only goes down: only the
        // customer scrolling up unpins the view.
        if (size === lastSize && (top < lastTop - 2 || this.isNearEnd())) this.pinned = this.isNearEnd();
        lastTop = top;
        lastSize = size;
      },
      { passive: true },
    );
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        if (this.pinned) this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: "instant" });
      }).observe(this.scroller);
    }

    doc.body.append(this.host);
    this.store.subscribe(() => this.render());
    this.render();
  }

  // ---- opening and closing ------------------------------------------------

  open({ focus = true } = {}) {
    if (this.isOpen) return;
    this.isOpen = true;
    this.root.classList.add("open");
    this.updateLauncher();
    this.store.markRead();
    this.actions.opened();
    this.render();
    this.scrollToEnd(true);
    if (focus) {
      // On touch screens focusing the field would throw up the keyboard over
      // the greeting; the dialog's title takes focus there instead.
      const touch = window.matchMedia?.("(pointer: coarse)").matches;
      requestAnimationFrame(() => (touch ? this.title : this.input).focus({ preventScroll: true }));
    }
  }

  close() {
    if (!this.isOpen) return;
    const hadFocus = this.host.shadowRoot.activeElement !== null;
    this.isOpen = false;
    this.root.classList.remove("open");
    this.updateLauncher();
    this.actions.closed();
    if (hadFocus) this.launcher.focus();
  }

  updateLauncher() {
    const unread = this.store.state.unread;
    const label = this.isOpen ? "Close chat" : unread ? `Open chat, ${unread} new message${unread > 1 ? "s" : ""}` : "Open chat";
    this.launcher.setAttribute("aria-label", label);
    this.launcher.setAttribute("aria-expanded", String(this.isOpen));
    this.badge.hidden = this.isOpen || !unread;
    this.badge.textContent = unread > 9 ? "9+" : String(unread);
  }

  // ---- composing ------------------------------------------------------------

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    if (this.updateLimit()) {
      // Refused: the text stays for the customer to shorten; the message under the field says why.
      this.limit.classList.remove("nudge");
      void this.limit.offsetWidth; // restart the animation
      this.limit.classList.add("nudge");
      return;
    }
    this.input.value = "";
    this.fitInput();
    this.updateLimit();
    this.actions.send(text, null);
    this.scrollToEnd(true);
  }

  choose(button) {
    this.actions.send(button.title, button.payload);
    this.input.focus({ preventScroll: true });
    this.scrollToEnd(true);
  }

  /** Forgets what was typed (sign-out: nothing of the previous customer stays on screen). */
  clearComposer() {
    this.input.value = "";
    this.fitInput();
    this.updateLimit();
  }

  /**
   * Shows the character counter near the server's limit and a message over
   * it; returns whether the text is over the limit (and may not be sent).
   */
  updateLimit() {
    const max = this.store.maxChars;
    const count = charCount(this.input.value.trim());
    const over = count > max;
    const near = count >= Math.floor(max * LIMIT_WARNING_SHARE);
    this.limit.hidden = !near;
    this.limit.classList.toggle("over", over);
    this.limitCount.textContent = near ? `${formatNumber(count)} / ${formatNumber(max)}` : "";
    // Written only when crossing the limit, so screen readers hear it once
    // (a live region that is always there), not at every key; the field's
    // description (aria-describedby) holds it meanwhile.
    const state = over ? `over:${max}` : "ok";
    if (this.limitText.dataset.state !== state) {
      this.limitText.dataset.state = state;
      const text = over
        ? `Your message is too long: we can take at most ${formatNumber(max)} characters. Please shorten it or send it in parts.`
        : "";
      this.limitText.textContent = text;
      this.limitStatus.textContent = text;
    }
    this.input.setAttribute("aria-invalid", String(over));
    this.sendButton.setAttribute("aria-disabled", String(over));
    return over;
  }

  fitInput() {
    this.input.style.height = "";
    if (this.input.scrollHeight > this.input.clientHeight) {
      this.input.style.height = `${Math.min(this.input.scrollHeight + 3, 128)}px`;
    }
  }

  // ---- connection status ----------------------------------------------------

  setStatus(status) {
    this.status = status;
    const shown = status === "online" || status === "idle" || status === "standby" ? "online" : status;
    this.subtitle.className = `subtitle status-${shown}`;
    this.renderHeader();
    clearTimeout(this.bannerTimer);
    if (shown === "online") {
      this.banner.hidden = true;
    } else {
      const show = () => {
        this.banner.textContent = BANNER_TEXT[shown];
        this.banner.hidden = false;
      };
      if (shown === "offline") show();
      else this.bannerTimer = setTimeout(show, BANNER_DELAY_MS);
    }
  }

  /**
   * Who is in the chat: the agent's name and initials while a person has it,
   * "waiting for a person" while queued, else the widget's own title. A
   * connection problem is said first.
   */
  renderHeader() {
    const handoff = this.store.state.handoff;
    const shown = this.subtitle.className.replace(/^.*status-/, "");
    const person = handoff?.state === "joined" ? handoff.agentName : null;
    const key = person ? `agent:${person}` : "bot";
    if (this.headerAvatar.dataset.who !== key) {
      this.headerAvatar.dataset.who = key;
      this.headerAvatar.classList.toggle("agent", Boolean(person));
      if (person) this.headerAvatar.textContent = initials(person);
      else this.headerAvatar.innerHTML = icons.BOT;
    }
    this.title.textContent = person || this.config.title;
    this.root.classList.toggle("with-agent", Boolean(person));
    let text = this.config.subtitle;
    if (person) text = "Support team · here to help you";
    else if (handoff?.state === "queued") {
      // Short: the header has one line (the transcript's queue line says it in full).
      text =
        typeof handoff.expectedWaitSeconds === "number"
          ? `Waiting for a person · ${describeWait(handoff.expectedWaitSeconds, true)}`
          : handoff.position === 1
            ? "Waiting for a person · you're next"
            : "Waiting for a person";
    }
    this.statusText.textContent = STATUS_TEXT[shown] || text;
  }

  // ---- the transcript -------------------------------------------------------

  render() {
    const messages = this.store.state.messages.filter((m) => !m.hidden);
    // A trimmed or replaced transcript (another tab, a new session) is drawn anew.
    if (messages.length && this.rendered.size && !this.rendered.has(messages[0].id)) this.clearLog();
    if (!messages.length && this.rendered.size) this.clearLog();

    // Pinned unless the customer scrolled up: a reply of several bubbles
    // arrives while the scroll to the first is still under way, when the view
    // is not "near the end" yet.
    const wasAtEnd = this.pinned || this.isNearEnd();
    let added = false;
    let addedNotice = false;
    let previous = null;
    for (const message of messages) {
      const known = this.rendered.get(message.id);
      if (known && known.from !== message.from) {
        // The last bot message became an agent's (store.addIncoming): redraw that row.
        known.row.remove();
        this.rendered.delete(message.id);
        this.lastRendered = previous;
      } else if (known) {
        if (known.status !== message.status) this.updateStatus(known, message);
        previous = message;
        continue;
      }
      this.appendRow(message);
      added = true;
      addedNotice ||= message.from === "notice";
      previous = message;
    }

    const agentTyping = this.store.agentTyping();
    const awaiting = this.store.awaitingReply() && !this.store.state.handoff;
    const typing = awaiting || agentTyping;
    this.renderTyping(agentTyping ? this.store.state.handoff.agentName : null);
    this.typing.hidden = !typing;
    clearTimeout(this.typingTimer);
    if (typing) this.typingTimer = setTimeout(() => this.render(), agentTyping ? AGENT_TYPING_MS : TYPING_TIMEOUT_MS);
    this.empty.hidden = messages.length > 0 || typing;
    this.renderHeader();

    this.renderQuickReplies(messages[messages.length - 1], awaiting);
    this.updateLimit(); // the server's limit may have come since
    this.updateLauncher();
    if (this.isOpen && this.store.state.unread) this.store.markRead();
    // A notice answers what the customer just did: always brought into view.
    if (added || typing) this.scrollToEnd(wasAtEnd || addedNotice);
  }

  /** The typing indicator is the assistant's, or the agent's with their initials and name. */
  renderTyping(agentName) {
    const key = agentName ? `agent:${agentName}` : "bot";
    if (this.typing.dataset.who === key) return;
    this.typing.dataset.who = key;
    this.typing.classList.toggle("from-agent", Boolean(agentName));
    this.typing.classList.toggle("from-bot", !agentName);
    if (agentName) this.typingAvatar.textContent = initials(agentName);
    else this.typingAvatar.innerHTML = icons.BOT;
    this.typingLabel.textContent = `${agentName || this.config.botName} is typing`;
  }

  clearLog() {
    this.log.replaceChildren();
    this.rendered.clear();
    this.lastRendered = null;
  }

  appendRow(message) {
    if (message.from === "notice") {
      this.appendNotice(message);
      return;
    }
    if (message.from === "event") {
      this.appendEvent(message);
      return;
    }
    const previous = this.lastRendered;
    const sender = message.from === "agent" ? `agent:${message.agentName}` : message.from;
    const previousSender = previous && (previous.from === "agent" ? `agent:${previous.agentName}` : previous.from);
    const continued = previousSender === sender && message.ts - previous.ts < GROUP_GAP_MS;
    const incoming = message.from !== "customer";
    const name =
      message.from === "customer" ? "You" : message.from === "agent" ? message.agentName : this.config.botName;
    const time = formatTime(message.ts);

    const row = el("div", `row from-${message.from}${continued ? " continued" : ""}`);
    row.dataset.id = message.id;
    if (!continued) {
      const meta = el("div", "meta");
      meta.setAttribute("aria-hidden", "true");
      if (incoming) {
        meta.append(el("span", "name", name), el("span", "tag", message.from === "agent" ? "Support team" : "Bot"));
      }
      const stamp = el("time", "", time);
      stamp.dateTime = new Date(message.ts).toISOString();
      meta.append(stamp);
      row.append(meta);
      if (incoming) {
        const avatar = el("span", "avatar");
        avatar.setAttribute("aria-hidden", "true");
        if (message.from === "agent") avatar.textContent = initials(message.agentName);
        else avatar.innerHTML = icons.BOT;
        row.append(avatar);
      }
    }

    const body = el("div", "body");
    const bubble = el("div", "bubble");
    const label = message.from === "agent" ? `${name} (support team)` : name;
    bubble.append(el("span", "sr-only", `${label} at ${time}: `));
    if (message.text) appendText(bubble, message.text);
    if (message.image) {
      const image = el("img");
      image.src = message.image;
      image.alt = "";
      image.loading = "lazy";
      image.referrerPolicy = "no-referrer";
      bubble.append(image);
    }
    body.append(bubble);
    row.append(body);

    const entry = { row, body, from: message.from, status: undefined };
    this.updateStatus(entry, message);
    this.log.append(row);
    this.rendered.set(message.id, entry);
    this.lastRendered = message;
  }

  /** The server refused a message (too long, too fast): a notice across the log, not a bot's answer. */
  appendNotice(message) {
    const row = el("div", "row notice");
    row.dataset.id = message.id;
    row.dataset.notice = message.notice || "";
    const body = el("p", "notice-text");
    body.innerHTML = icons.INFO;
    body.append(el("span", "sr-only", "Notice: "));
    appendText(body, message.text);
    row.append(body);
    this.log.append(row);
    this.rendered.set(message.id, { row, body, from: message.from, status: undefined });
    this.lastRendered = message;
  }

  /** A person joined or left, or the place in the queue: a quiet line across the log. */
  appendEvent(message) {
    const row = el("div", `row event event-${message.event || "info"}`);
    row.dataset.id = message.id;
    row.dataset.event = message.event || "";
    const body = el("p", "event-text");
    if (message.event === "joined" && message.agentName) {
      const avatar = el("span", "avatar", initials(message.agentName));
      avatar.setAttribute("aria-hidden", "true");
      body.append(avatar);
    }
    body.append(el("span", "", message.text));
    const stamp = el("time", "", formatTime(message.ts));
    stamp.dateTime = new Date(message.ts).toISOString();
    body.append(stamp);
    row.append(body);
    this.log.append(row);
    this.rendered.set(message.id, { row, body, from: message.from, status: undefined });
    this.lastRendered = message;
  }

  updateStatus(entry, message) {
    entry.status = message.status;
    entry.row.classList.toggle("queued", message.status === "queued");
    entry.statusNode?.remove();
    entry.statusNode = null;
    if (message.from === "customer" && message.status === "queued") {
      const status = el("div", "status");
      status.innerHTML = icons.CLOCK;
      status.append(document.createTextNode("Waiting for connection"));
      entry.body.append(status);
      entry.statusNode = status;
    } else if (message.from === "customer" && message.status === "refused") {
      const status = el("div", "status refused");
      status.innerHTML = icons.INFO_SMALL;
      status.append(document.createTextNode("Not delivered: too long"));
      entry.body.append(status);
      entry.statusNode = status;
    }
  }

  renderQuickReplies(last, awaiting) {
    const buttons = !awaiting && last && last.from !== "customer" ? last.buttons || [] : [];
    const key = buttons.length ? last.id : "";
    if (this.quickReplies.dataset.for === key) return;
    this.quickReplies.dataset.for = key;
    const hadFocus = this.quickReplies.contains(this.host.shadowRoot.activeElement);
    this.quickReplies.replaceChildren(
      ...buttons.map((button) => {
        const node = el("button", "quick-reply", button.title);
        node.type = "button";
        node.addEventListener("click", () => this.choose(button));
        return node;
      }),
    );
    this.quickReplies.hidden = buttons.length === 0;
    if (hadFocus && !buttons.length) this.input.focus({ preventScroll: true });
  }

  isNearEnd() {
    const { scrollTop, scrollHeight, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < 80;
  }

  scrollToEnd(force) {
    if (!force && !this.isNearEnd()) return;
    this.pinned = true;
    requestAnimationFrame(() => {
      this.scroller.scrollTop = this.scroller.scrollHeight;
    });
  }
}
