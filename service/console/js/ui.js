// Small DOM helpers. Everything from the API (names, ids, messages) is written as text,
// never parsed as markup.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

export function fixed(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

export function dateTime(text) {
  const when = new Date(text);
  return Number.isNaN(when.getTime()) ? String(text) : when.toLocaleString();
}

// An API error as the API words it: code, message, HTTP status.
export function errorBox(error) {
  const status = error.status ? `HTTP ${error.status}` : "no answer";
  const box = h(
    "div",
    { class: "error", role: "alert" },
    h("strong", { class: "error-code", text: error.code || "error" }),
    " ",
    h("span", { class: "error-status", text: `(${status})` }),
    ": ",
    h("span", { class: "error-message", text: error.message || String(error) }),
  );
  if (error.retryAfter) box.append(` Retry after ${error.retryAfter} s.`);
  if (error.status === 401) box.append(" Check the API key (button at the top).");
  return box;
}

export function showError(slot, error) {
  slot.replaceChildren(errorBox(error));
}

// Runs fn(signal) with a progress bar, elapsed time and a cancel button in slot (after
// 250 ms, so that quick answers do not flicker). Resolves to fn's result.
export async function busy(slot, label, fn) {
  const controller = new AbortController();
  const started = performance.now();
  const text = h("span", { class: "busy-text", text: `${label}…` });
  const bar = h("progress", { "aria-label": label });
  const cancel = h("button", { type: "button", text: "Cancel", on: { click: () => controller.abort() } });
  const box = h("div", { class: "busy", role: "status" }, bar, text, cancel);
  const tick = () => {
    const seconds = (performance.now() - started) / 1000;
    text.textContent = `${label}… ${seconds.toFixed(1)} s`;
  };
  const shown = setTimeout(() => slot.replaceChildren(box), 250);
  const timer = setInterval(tick, 100);
  try {
    return await fn(controller.signal, (what) => (label = what));
  } finally {
    clearTimeout(shown);
    clearInterval(timer);
    slot.replaceChildren();
  }
}

// A modal yes/no question; resolves to true when confirmed.
export function confirmDialog(message, yes = "Delete") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = message;
  document.getElementById("confirm-yes").textContent = yes;
  return new Promise((resolve) => {
    const form = document.getElementById("confirm-form");
    const no = document.getElementById("confirm-no");
    const done = (answer) => {
      form.removeEventListener("submit", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("cancel", onNo);
      dialog.close();
      resolve(answer);
    };
    const onYes = (event) => {
      event.preventDefault();
      done(true);
    };
    const onNo = (event) => {
      event.preventDefault();
      done(false);
    };
    form.addEventListener("submit", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("cancel", onNo);
    dialog.showModal();
    no.focus(); // the safe answer under the keyboard
  });
}

// A table from column headers and rows of cells (nodes or text).
export function table(caption, headers, rows, rowProps = () => ({})) {
  return h(
    "table",
    {},
    caption ? h("caption", { text: caption }) : null,
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col", text: name })))),
    h(
      "tbody",
      {},
      rows.map((cells, i) => h("tr", rowProps(i), cells.map((cell) => h("td", cell.props || {}, cell.content ?? cell)))),
    ),
  );
}

// A threshold slider; onChange(value) fires live. set(value) places it without firing.
export function thresholdControl(id, onChange) {
  const input = h("input", { type: "range", id, min: "-1", max: "1", step: "0.001", disabled: true });
  const output = h("output", { for: id, class: "threshold-value", text: "—" });
  let exact = null;
  const reset = h("button", {
    type: "button",
    text: "Reset",
    disabled: true,
    on: { click: () => set(exact, true) },
  });
  const set = (value, fire = false) => {
    exact = exact ?? value;
    input.value = String(value);
    output.textContent = value.toFixed(3);
    if (fire) onChange(value);
  };
  input.addEventListener("input", () => {
    const value = Number.parseFloat(input.value);
    output.textContent = value.toFixed(3);
    onChange(value);
  });
  const node = h(
    "div",
    { class: "threshold" },
    h("label", { for: id, text: "Threshold" }),
    input,
    output,
    reset,
  );
  return {
    node,
    // a new answer: its threshold is the exact default (a slider step could round it)
    start(value) {
      exact = value;
      input.disabled = false;
      reset.disabled = false;
      set(value);
    },
  };
}
