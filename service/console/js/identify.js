// Identify: every face of a photo against the gallery. The threshold slider re-decides
// match/unknown from the answer's candidates, live, without sending the photo again.

import { call, formOf, scoped } from "./api.js";
import { photoPicker, photoView, preparePhoto, releasePhoto } from "./photo.js";
import { qualityText } from "./quality.js";
import { busy, fixed, h, showError, table, thresholdControl } from "./ui.js";

const TOP_K = 5;

let photo = null;
let answer = null;
let threshold = 0;
let view = null;

const $ = (id) => document.getElementById(id);

export function init() {
  const control = thresholdControl("identify-threshold-input", (value) => {
    threshold = value;
    render();
  });
  $("identify-picker").append(photoPicker({ id: "identify-file", label: "Photo", onFiles: (files) => run(files[0], control) }));
  $("identify-threshold").append(control.node);
}

export function show() {}

async function run(file, control) {
  $("identify-error").replaceChildren();
  releasePhoto(photo);
  photo = await preparePhoto(file);
  answer = null;
  view = null;
  $("identify-result").replaceChildren(photo.note ? h("p", { class: "note", text: photo.note }) : "");
  try {
    answer = await busy($("identify-busy"), "Identifying", (signal) =>
      call("POST", scoped("/identify"), { form: formOf({ image: photo.blob, top_k: TOP_K }), signal }),
    );
  } catch (error) {
    showError($("identify-error"), error);
    return;
  }
  threshold = answer.threshold;
  control.start(answer.threshold);
  render();
}

// The decision the service makes, on the slider's threshold.
function decide(face) {
  const best = face.candidates[0] || null;
  const match = best && best.similarity >= threshold ? best : null;
  return { best, match };
}

function render() {
  if (!answer) return;
  const faces = answer.faces.map((face, i) => {
    const { best, match } = decide(face);
    const label = match ? `${i + 1} ${match.name} ${fixed(match.similarity, 2)}` : `${i + 1} unknown`;
    return { box: face.box, landmarks: face.landmarks, label, kind: match ? "match" : "unknown", best, match };
  });
  const result = $("identify-result");
  if (!view && photo.url) {
    view = photoView(photo, faces, `the photo with ${faces.length} faces marked`);
  } else if (view) {
    view.update(faces);
  }
  const matched = faces.filter((f) => f.match).length;
  const summary = h("p", {
    class: "summary",
    role: "status",
    text:
      answer.faces.length === 0
        ? "No face found in this photo."
        : `${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"}: ` +
          `${matched} matched, ${answer.faces.length - matched} unknown at threshold ${threshold.toFixed(3)}.`,
  });
  const withQuality = answer.faces.some((f) => f.quality);
  const headers = ["Face", "Result", "Similarity", "Best candidate", "Other candidates", "Box"];
  if (withQuality) headers.push("Quality");
  const rows = answer.faces.map((face, i) => {
    const { best, match } = faces[i];
    const others = face.candidates.slice(1).map((c) => `${c.name} ${fixed(c.similarity)}`).join(", ");
    const cells = [
      String(i + 1),
      { content: match ? match.name : "unknown", props: { class: `name ${match ? "match" : "unknown"}` } },
      { content: best ? fixed(best.similarity) : "—", props: { class: "similarity" } },
      { content: best ? best.name : "(empty gallery)", props: { class: "best" } },
      others || "—",
      { content: face.box.map((v) => Math.round(v)).join(", "), props: { class: "box" } },
    ];
    if (withQuality) cells.push(qualityText(face.quality));
    return cells;
  });
  result.replaceChildren(
    summary,
    view ? view.node : h("p", { class: "note", text: photo.note }),
    answer.faces.length
      ? h("div", { class: "table-wrap" }, table("Faces found", headers, rows, (i) => ({ dataset: { face: String(i) } })))
      : "",
  );
}
