// What customers and the bot write is split into text and safe links; the
// UI never parses it as HTML (tests/e2e/test_widget.py checks the page).
import assert from "node:assert/strict";
import { test } from "node:test";
import { safeHref, tokenize } from "../src/text.js";

const links = (text) => tokenize(text).filter((p) => p.type === "link").map((p) => p.href);

test("markup stays text", () => {
  const text = '<img src=x onerror="alert(1)"><script>alert(2)</script>';
  assert.deepEqual(tokenize(text), [{ type: "text", value: text }]);
});

test("bare URLs, www. addresses and emails become links", () => {
  assert.deepEqual(links("Track it at https://example.com/track?id=1, or www.example.com. Mail support@northwind.example"), [
    "https://example.com/track?id=1",
    "https://www.example.com/",
    "mailto:support@northwind.example",
  ]);
});

test("sentence punctuation is not part of the link", () => {
  const pieces = tokenize("See https://example.com/faq.");
  assert.deepEqual(pieces, [
    { type: "text", value: "See " },
    { type: "link", href: "https://example.com/faq", label: "https://example.com/faq" },
    { type: "text", value: "." },
  ]);
  assert.deepEqual(links("(see https://en.wikipedia.org/wiki/Jug_(vessel))"), ["https://en.wikipedia.org/wiki/Jug_(vessel)"]);
});

test("markdown links keep their label", () => {
  assert.deepEqual(tokenize("Read [our returns policy](https://example.com/returns) first"), [
    { type: "text", value: "Read " },
    { type: "link", href: "https://example.com/returns", label: "our returns policy" },
    { type: "text", value: " first" },
  ]);
});

test("only http, https and mailto links are ever made", () => {
  assert.equal(safeHref("javascript:alert(1)"), null);
  assert.equal(safeHref("data:text/html,<b>x</b>"), null);
  assert.equal(safeHref("vbscript:msgbox"), null);
  assert.equal(safeHref("JaVaScRiPt:alert(1)"), null);
  assert.deepEqual(links("[click me](javascript:alert(1))"), []);
  assert.equal(tokenize("[click me](javascript:alert(1))").map((p) => p.value).join(""), "[click me](javascript:alert(1))");
});
