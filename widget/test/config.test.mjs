import assert from "node:assert/strict";
import { test } from "node:test";
import { contrast, paletteFor, parseColor, readConfig } from "../src/config.js";

const page = new URL("https://shop.example/products?id=3");

test("the server's path is a prefix for socket.io, not a namespace", () => {
  const config = readConfig({ server: "https://chat.example/rasa/" }, page);
  assert.equal(config.server, "https://chat.example");
  assert.equal(config.socketPath, "/rasa/socket.io/");
});

test("without data-server the widget looks for Rasa on the page's host", () => {
  const config = readConfig({}, page);
  assert.equal(config.server, "https://shop.example:5005");
  assert.equal(config.socketPath, "/socket.io/");
});

test("the identity token is read from data-identity-token, trimmed; empty means none", () => {
  assert.equal(readConfig({ identityToken: " aaa.bbb.ccc " }, page).identityToken, "aaa.bbb.ccc");
  assert.equal(readConfig({ identityToken: "" }, page).identityToken, null);
  assert.equal(readConfig({}, page).identityToken, null);
});

test("a customer email that is not an email is ignored", () => {
  assert.equal(readConfig({ customerEmail: "ada@example.com" }, page).customerEmail, "ada@example.com");
  assert.equal(readConfig({ customerEmail: "<script>" }, page).customerEmail, null);
});

test("every brand colour gives text colours that pass WCAG AA", () => {
  for (const brand of ["#0f5c4d", "#ffd400", "#777777", "#ffffff", "#000000", "#2454d6", "#ff6b6b"]) {
    const palette = paletteFor(parseColor(brand));
    assert.ok(contrast(parseColor(palette.primary), parseColor(palette.onPrimary)) >= 4.5, `${brand} header`);
    assert.ok(contrast(parseColor(palette.accent), [255, 255, 255]) >= 4.5, `${brand} accent`);
  }
});
