// The console's shell: pages by the URL's fragment, the API key dialog, the untrained
// banner, and the collection selector once the API has collections.

import { call, getCollection, getKey, setCollection, setKey } from "./api.js";
import * as gallery from "./gallery.js";
import * as identify from "./identify.js";
import * as status from "./status.js";
import * as verify from "./verify.js";

const PAGES = { identify, verify, gallery, status };
const $ = (id) => document.getElementById(id);
let auth = "api_keys";

function route() {
  const name = (window.location.hash || "#identify").slice(1);
  const page = PAGES[name] ? name : "identify";
  for (const key of Object.keys(PAGES)) {
    $(`page-${key}`).hidden = key !== page;
    const link = document.querySelector(`[data-nav="${key}"]`);
    if (key === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · facerec console`;
  PAGES[page].show();
}

function showKeyState() {
  $("key-state").textContent =
    auth === "open" ? "open service (no key needed)" : getKey() ? "API key set" : "no API key";
}

function askKey() {
  const dialog = $("key-dialog");
  $("key-input").value = "";
  dialog.showModal();
  $("key-input").focus();
}

function keyDialog() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault(); // never a form submission: the key goes in no URL
    const key = $("key-input").value.trim();
    $("key-input").value = "";
    if (key) setKey(key);
    $("key-dialog").close();
    keyChanged();
  });
  $("key-forget").addEventListener("click", () => {
    setKey("");
    $("key-input").value = "";
    $("key-dialog").close();
    keyChanged();
  });
  $("key-cancel").addEventListener("click", () => $("key-dialog").close());
  $("key-change").addEventListener("click", askKey);
}

function keyChanged() {
  showKeyState();
  probeCollections();
  route();
}

// The selector appears only when GET /collections answers 200; else the default gallery.
async function probeCollections() {
  const box = $("collection-box");
  const select = $("collection");
  let listing;
  try {
    listing = await call("GET", "/collections");
  } catch {
    box.hidden = true;
    if (getCollection()) {
      setCollection("");
      window.dispatchEvent(new Event("facerec:collection"));
    }
    return;
  }
  const items = (Array.isArray(listing) ? listing : listing?.items || []).filter((c) => c && c.id !== undefined);
  const others = items.filter((c) => String(c.id) !== "default");
  const option = (id, text) => {
    const node = document.createElement("option");
    node.value = id;
    node.textContent = text;
    return node;
  };
  select.replaceChildren(
    option("", "default"),
    ...others.map((c) => option(String(c.id), c.name && c.name !== c.id ? `${c.name} (${c.id})` : String(c.id))),
  );
  if (!others.some((c) => String(c.id) === getCollection())) setCollection("");
  select.value = getCollection();
  box.hidden = false;
}

async function start() {
  keyDialog();
  $("collection").addEventListener("change", () => {
    setCollection($("collection").value);
    window.dispatchEvent(new Event("facerec:collection"));
    route();
  });
  for (const page of Object.values(PAGES)) page.init();
  window.addEventListener("hashchange", route);
  try {
    const info = await call("GET", "/info");
    auth = info.auth;
    $("untrained-banner").hidden = !info.untrained;
  } catch {
    // the status page says what is wrong; the other pages still try
  }
  showKeyState();
  if (auth !== "open" && !getKey()) askKey();
  probeCollections();
  route();
}

start();
