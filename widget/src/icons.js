// Inline SVG icons (constant markup, never built from message text).

const svg = (body, size = 24) =>
  `<svg viewBox="0 0 24 24" width="${size}" height="${size}" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;

export const CHAT = svg(
  '<path d="M21 11.5a8.4 8.4 0 0 1-9 8.4 9.3 9.3 0 0 1-3.7-.8L3 21l1.9-5A8 8 0 0 1 3 11.5 8.4 8.4 0 0 1 12 3a8.4 8.4 0 0 1 9 8.5Z"/><path d="M8 11.5h.01M12 11.5h.01M16 11.5h.01" stroke-width="2.6"/>',
  28,
);
export const CHEVRON_DOWN = svg('<path d="m6 9 6 6 6-6"/>', 28);
export const CLOSE = svg('<path d="M18 6 6 18M6 6l12 12"/>', 20);
export const MINIMISE = svg('<path d="M5 12h14"/>', 20);
export const SEND = svg('<path d="M5 12h13M12 5l7 7-7 7"/>', 20);
export const BOT = svg(
  '<rect x="4" y="8" width="16" height="12" rx="4"/><path d="M12 4v4M9 13.5h.01M15 13.5h.01" stroke-width="2.4"/><path d="M2 13v3M22 13v3"/>',
  18,
);
export const CLOCK = svg('<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>', 12);
export const INFO = svg('<circle cx="12" cy="12" r="9"/><path d="M12 11v5M12 8h.01" stroke-width="2.4"/>', 16);
export const INFO_SMALL = svg('<circle cx="12" cy="12" r="9"/><path d="M12 11v5M12 8h.01" stroke-width="2.4"/>', 12);
