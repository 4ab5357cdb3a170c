// Verify: the largest face of a photo against that of a second photo, or against an
// enrolled identity's template. Similarity and threshold on one bar.

import { call, formOf, scoped } from "./api.js";
import { photoPicker, photoView, preparePhoto, releasePhoto } from "./photo.js";
import { qualityText } from "./quality.js";
import { busy, fixed, h, showError, thresholdControl } from "./ui.js";

const photos = { image: null, image2: null };
let answer = null;
let threshold = 0;
let control = null;

const $ = (id) => document.getElementById(id);
const mode = () => document.querySelector('input[name="verify-mode"]:checked').value;

export function init() {
  $("verify-a").append(h("h2", { text: "Photo" }), photoPicker({ id: "verify-file-a", label: "Photo", onFiles: (f) => pick("image", f[0]) }));
  $("verify-b").append(
    h("h2", { text: "Second photo" }),
    photoPicker({ id: "verify-file-b", label: "Second photo", onFiles: (f) => pick("image2", f[0]) }),
  );
  for (const radio of document.querySelectorAll('input[name="verify-mode"]')) {
    radio.addEventListener("change", () => {
      $("verify-b").hidden = mode() !== "photo";
      $("verify-identity").hidden = mode() !== "identity";
      if (mode() === "identity") loadIdentities();
      ready();
    });
  }
  $("verify-identity-select").addEventListener("change", () => {
    $("verify-identity-id").value = "";
    ready();
  });
  $("verify-identity-id").addEventListener("input", ready);
  $("verify-run").addEventListener("click", run);
  control = thresholdControl("verify-threshold-input", (value) => {
    threshold = value;
    render();
  });
  $("verify-threshold").append(control.node);
  window.addEventListener("facerec:collection", () => mode() === "identity" && loadIdentities());
}

export function show() {
  if (mode() === "identity") loadIdentities();
}

async function pick(field, file) {
  releasePhoto(photos[field]);
  photos[field] = await preparePhoto(file);
  const slot = field === "image" ? $("verify-a") : $("verify-b");
  slot.querySelector(".preview")?.remove();
  const preview = h("div", { class: "preview" });
  if (photos[field].url) {
    preview.append(h("img", { src: photos[field].url, alt: `${field === "image" ? "the photo" : "the second photo"}` }));
  }
  if (photos[field].note) preview.append(h("p", { class: "note", text: photos[field].note }));
  slot.append(preview);
  ready();
}

function identityId() {
  return $("verify-identity-id").value.trim() || $("verify-identity-select").value;
}

function ready() {
  const other = mode() === "photo" ? photos.image2 : identityId();
  $("verify-run").disabled = !(photos.image && other);
}

async function loadIdentities() {
  const select = $("verify-identity-select");
  $("verify-identity-error").replaceChildren();
  try {
    const list = await call("GET", scoped("/identities?limit=1000&offset=0"));
    const previous = select.value;
    select.replaceChildren(
      h("option", { value: "", text: list.items.length ? "choose an identity" : "(no identities)" }),
      ...list.items.map((item) =>
        h("option", { value: item.id, text: item.external_id ? `${item.name} (${item.external_id})` : item.name }),
      ),
    );
    select.value = previous;
    if (list.total > list.items.length) {
      $("verify-identity-error").append(h("p", { class: "note", text: `the first ${list.items.length} of ${list.total}; enter another by its id` }));
    }
  } catch (error) {
    select.replaceChildren(h("option", { value: "", text: "(could not list identities)" }));
    showError($("verify-identity-error"), error);
  }
  ready();
}

async function run() {
  $("verify-error").replaceChildren();
  $("verify-result").replaceChildren();
  answer = null;
  const fields = { image: photos.image.blob };
  if (mode() === "photo") fields.image2 = photos.image2.blob;
  else fields.identity_id = identityId();
  try {
    answer = await busy($("verify-busy"), "Comparing", (signal) =>
      // against an identity: in the chosen collection; two photos need no gallery
      call("POST", fields.identity_id ? scoped("/verify") : "/verify", { form: formOf(fields), signal }),
    );
  } catch (error) {
    showError($("verify-error"), error);
    return;
  }
  threshold = answer.threshold;
  control.start(answer.threshold);
  render();
}

function render() {
  if (!answer) return;
  const match = answer.similarity >= threshold;
  // the bar spans [0, 1], or [-1, 1] when a negative value is on it
  const low = Math.min(answer.similarity, threshold) < 0 ? -1 : 0;
  const position = (value) => `${((Math.max(low, Math.min(1, value)) - low) / (1 - low)) * 100}%`;
  const marker = h("span", { class: "marker similarity-marker" });
  marker.style.left = position(answer.similarity);
  const line = h("span", { class: "marker threshold-marker" });
  line.style.left = position(threshold);
  const fill = h("span", { class: "fill" });
  fill.style.width = position(answer.similarity);
  const bar = h(
    "div",
    {
      class: `bar ${match ? "match" : "unknown"}`,
      role: "img",
      "aria-label": `similarity ${fixed(answer.similarity)} against threshold ${threshold.toFixed(3)} on a scale from ${low} to 1`,
    },
    fill,
    line,
    marker,
  );
  const ticks = low < 0 ? ["−1", "0", "1"] : ["0", "0.5", "1"];
  const scale = h("div", { class: "scale", "aria-hidden": "true" }, ticks.map((text) => h("span", { text })));
  const faces = answer.faces.map((face) => {
    const source = photos[face.source];
    const view = source && source.url ? photoView(source, [{ ...face, kind: match ? "match" : "unknown", label: "compared" }], `the ${face.source === "image" ? "" : "second "}photo with the compared face marked`) : null;
    return h(
      "div",
      { class: "verified-face" },
      view ? view.node : "",
      h("p", {
        class: "note",
        text: `${face.source === "image" ? "photo" : "second photo"}: ${face.faces_found} face${face.faces_found === 1 ? "" : "s"} found, the largest compared` + (face.quality ? `; quality ${qualityText(face.quality)}` : ""),
      }),
    );
  });
  $("verify-result").replaceChildren(
    h(
      "p",
      { class: `verdict ${match ? "match" : "unknown"}`, role: "status" },
      h("strong", { class: "verdict-word", text: match ? "Same person" : "Not the same person" }),
      " — similarity ",
      h("span", { class: "similarity", text: fixed(answer.similarity) }),
      `, threshold ${threshold.toFixed(3)}`,
      answer.identity_id ? ` (identity ${answer.identity_id})` : "",
    ),
    h("div", { class: "bar-wrap" }, bar, scale),
    h("div", { class: "verified-faces" }, faces),
  );
}
