// Status: what /info and /health/ready say — pack, models, runtime, threshold, gallery size,
// whether keys are required — with the untrained warning in red where it applies.

import { call } from "./api.js";
import { busy, h, showError } from "./ui.js";

const $ = (id) => document.getElementById(id);

// /info's fields in reading order; fields the API adds later are shown after them.
const FIELDS = [
  ["version", "Service version"],
  ["pack", "Model pack"],
  ["license", "Licence"],
  ["detector", "Detector"],
  ["recognizer", "Recognizer"],
  ["runtime", "Runtime"],
  ["device", "Device"],
  ["precision", "Precision"],
  ["embedding_size", "Embedding size"],
  ["threshold", "Default threshold"],
  ["threshold_source", "Threshold source"],
  ["gallery_size", "Gallery size (identities)"],
  ["auth", "Access"],
];

export function init() {}

export async function show() {
  $("status-error").replaceChildren();
  // both asked at once; /info answers 503 model_not_ready while the models load, and the
  // readiness line still shows what is missing
  const [info, ready] = await busy($("status-busy"), "Reading the service's status", (signal) =>
    Promise.all([
      call("GET", "/info", { signal }).catch((error) => error),
      // 503 while starting, with the same body as 200: {"status": "starting", "detail"}
      call("GET", "/health/ready", { signal }).catch((error) =>
        error.body && typeof error.body.status === "string" ? error.body : { status: error.code, detail: {} },
      ),
    ]),
  );
  if (info instanceof Error) showError($("status-error"), info);
  render(info instanceof Error ? null : info, ready);
}

function value(key, raw) {
  if (key === "auth") return raw === "open" ? "open: no API keys configured, anyone who can reach the service can use it" : "API keys with scopes";
  if (key === "threshold" && typeof raw === "number") return `${raw} (cosine)`;
  if (typeof raw === "object" && raw !== null) return JSON.stringify(raw);
  return String(raw);
}

function render(info, ready) {
  info = info || {};
  const known = new Set(FIELDS.map(([key]) => key).concat(["untrained"]));
  const rows = FIELDS.filter(([key]) => key in info).concat(
    Object.keys(info)
      .filter((key) => !known.has(key))
      .map((key) => [key, key.replaceAll("_", " ")]),
  );
  const list = h("dl", { class: "facts" });
  for (const [key, label] of rows) {
    list.append(h("dt", { text: label }), h("dd", { dataset: { field: key }, text: value(key, info[key]) }));
  }
  const waiting = Object.entries(ready.detail || {}).filter(([, ok]) => !ok).map(([what]) => what);
  const readiness = ready.status === "ok" ? "yes" : `no (${ready.status}${waiting.length ? `: ${waiting.join(", ")} not yet` : ""})`;
  list.append(h("dt", { text: "Ready" }), h("dd", { dataset: { field: "ready" }, text: readiness }));
  $("status-result").replaceChildren(
    info.untrained
      ? h(
          "p",
          { class: "untrained", role: "alert" },
          h("strong", { text: "Untrained recognizer. " }),
          "This pack's recognizer is random-initialised: its similarities mean nothing about faces. " +
            "It is for trying the service end to end, not for recognising anyone.",
        )
      : "",
    info.auth === "open" ? h("p", { class: "warning", text: "No API keys are configured: every route is open." }) : "",
    list,
  );
}
