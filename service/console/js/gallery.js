// Gallery: identities (paged, searched), one identity's faces with their quality, faces added
// by upload, deletions after a confirmation, and enrolment of the faces of a group photo
// (each face picked by its box, the API's `box` field).

import { call, formOf, scoped } from "./api.js";
import { faceThumb, photoPicker, photoView, preparePhoto, releasePhoto } from "./photo.js";
import { qualityText } from "./quality.js";
import { busy, confirmDialog, dateTime, fixed, h, showError, table } from "./ui.js";

const PAGE = 20;
const SCAN_PAGE = 1000; // the API lists by pages of at most 1000
const SCAN_LIMIT = 20000; // search reads at most this many identities

const list = { offset: 0, query: "", scanned: null, total: 0 };
let opened = null; // the identity shown on the right
const enrol = { photo: null, faces: [], done: [], names: [] };

const $ = (id) => document.getElementById(id);

export function init() {
  let typing = null;
  $("gallery-search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      list.query = $("gallery-search").value.trim().toLowerCase();
      list.offset = 0;
      list.scanned = null;
      loadList();
    }, 250);
  });
  $("gallery-prev").addEventListener("click", () => {
    list.offset = Math.max(0, list.offset - PAGE);
    loadList();
  });
  $("gallery-next").addEventListener("click", () => {
    list.offset += PAGE;
    loadList();
  });
  $("gallery-create").addEventListener("submit", createIdentity);
  $("gallery-enrol-picker").append(
    photoPicker({ id: "gallery-enrol-file", label: "Group or portrait photo", onFiles: (f) => detect(f[0]) }),
  );
  window.addEventListener("facerec:collection", () => {
    opened = null;
    $("gallery-detail").replaceChildren(h("p", { class: "note", text: "Open an identity to see its faces." }));
    changed();
  });
}

export function show() {
  list.scanned = null;
  loadList();
}

function changed() {
  list.scanned = null;
  loadList();
  if (opened) openIdentity(opened.id);
}

// ---------- the list ----------

async function loadList() {
  $("gallery-list-error").replaceChildren();
  try {
    await busy($("gallery-list-busy"), "Loading identities", async (signal) => {
      if (!list.query) {
        const page = await call("GET", scoped(`/identities?limit=${PAGE}&offset=${list.offset}`), { signal });
        if (page.items.length === 0 && list.offset > 0 && page.total > 0) {
          list.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
          return loadList();
        }
        renderList(page.items, page.total, "");
        return;
      }
      if (list.scanned === null) list.scanned = await scanAll(signal);
      const found = list.scanned.items.filter(
        (item) =>
          item.name.toLowerCase().includes(list.query) ||
          (item.external_id || "").toLowerCase().includes(list.query),
      );
      const note = list.scanned.partial ? ` (searched the first ${list.scanned.items.length} of ${list.scanned.total})` : "";
      renderList(found.slice(list.offset, list.offset + PAGE), found.length, note);
    });
  } catch (error) {
    $("gallery-list").replaceChildren();
    $("gallery-range").textContent = "";
    showError($("gallery-list-error"), error);
  }
}

// The API has no search parameter: search reads the list (up to SCAN_LIMIT) and filters here.
async function scanAll(signal) {
  const items = [];
  let total = 0;
  do {
    const page = await call("GET", scoped(`/identities?limit=${SCAN_PAGE}&offset=${items.length}`), { signal });
    total = page.total;
    items.push(...page.items);
    if (page.items.length === 0) break;
  } while (items.length < total && items.length < SCAN_LIMIT);
  return { items, total, partial: items.length < total };
}

function renderList(items, total, note) {
  $("gallery-range").textContent = total
    ? `${list.offset + 1}–${list.offset + items.length} of ${total}${list.query ? " found" : ""}${note}`
    : list.query
      ? `none found${note}`
      : "no identities yet";
  $("gallery-prev").disabled = list.offset === 0;
  $("gallery-next").disabled = list.offset + items.length >= total;
  const rows = items.map((item) => [
    h("button", {
      type: "button",
      class: "link identity-open",
      text: item.name,
      "aria-label": `Open ${item.name}`,
      on: { click: () => openIdentity(item.id) },
    }),
    item.external_id || "—",
    { content: String(item.face_count), props: { class: "count" } },
    dateTime(item.created_at),
  ]);
  $("gallery-list").replaceChildren(
    items.length ? table("", ["Name", "External id", "Faces", "Created"], rows, (i) => ({ dataset: { identity: items[i].id } })) : "",
  );
}

async function createIdentity(event) {
  event.preventDefault();
  const name = $("gallery-create-name").value.trim();
  const external = $("gallery-create-external").value.trim();
  $("gallery-create-error").replaceChildren();
  try {
    const made = await call("POST", scoped("/identities"), { json: { name, external_id: external || null } });
    $("gallery-create-name").value = "";
    $("gallery-create-external").value = "";
    changed();
    openIdentity(made.id);
  } catch (error) {
    showError($("gallery-create-error"), error);
  }
}

// ---------- one identity ----------

async function openIdentity(id) {
  const detail = $("gallery-detail");
  const slot = h("div", { class: "busy-slot" });
  detail.replaceChildren(slot);
  try {
    const [identity, faces] = await busy(slot, "Loading the identity", (signal) =>
      Promise.all([
        call("GET", scoped(`/identities/${id}`), { signal }),
        call("GET", scoped(`/identities/${id}/faces`), { signal }),
      ]),
    );
    opened = identity;
    renderDetail(identity, faces);
  } catch (error) {
    opened = null;
    showError(detail, error);
  }
  renderEnrolTable();
}

function renderDetail(identity, faces) {
  const errors = h("div", { class: "error-slot" });
  const working = h("div", { class: "busy-slot" });
  const nameInput = h("input", { id: "detail-name", type: "text", value: identity.name, required: true, maxlength: "200", autocomplete: "off" });
  const externalInput = h("input", { id: "detail-external", type: "text", value: identity.external_id || "", maxlength: "200", autocomplete: "off" });
  const edit = h(
    "form",
    { class: "inline-form" },
    h("label", { for: "detail-name", text: "Name" }),
    nameInput,
    h("label", { for: "detail-external", text: "External id" }),
    externalInput,
    h("button", { type: "submit", text: "Save" }),
  );
  edit.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    try {
      await call("PATCH", scoped(`/identities/${identity.id}`), {
        json: { name: nameInput.value.trim(), external_id: externalInput.value.trim() || null },
      });
      changed();
    } catch (error) {
      showError(errors, error);
    }
  });
  const withQuality = faces.some((f) => f.quality);
  const headers = ["Face", "Detector score", "Size (px)", "Enrolled", ""];
  if (withQuality) headers.splice(3, 0, "Quality");
  const rows = faces.map((face, i) => {
    const cells = [
      { content: `${i + 1} (${face.id.slice(0, 8)})`, props: { title: face.id } },
      fixed(face.score),
      `${Math.round(face.width)} × ${Math.round(face.height)}`,
      dateTime(face.created_at),
      h("button", {
        type: "button",
        class: "danger face-delete",
        text: "Delete face",
        "aria-label": `Delete face ${i + 1} of ${identity.name}`,
        on: {
          click: async () => {
            const sure = await confirmDialog(`Delete face ${i + 1} of ${identity.name}? Its embedding is gone for good; the template is recomputed.`, "Delete face");
            if (!sure) return;
            try {
              await call("DELETE", scoped(`/identities/${identity.id}/faces/${face.id}`));
              changed();
            } catch (error) {
              showError(errors, error);
            }
          },
        },
      }),
    ];
    if (withQuality) cells.splice(3, 0, qualityText(face.quality));
    return cells;
  });
  const add = photoPicker({
    id: "detail-add-file",
    label: "Add faces (one face per photo)",
    multiple: true,
    onFiles: async (files) => {
      errors.replaceChildren();
      try {
        await busy(working, `Enrolling ${files.length} photo${files.length === 1 ? "" : "s"}`, async (signal) => {
          const prepared = await Promise.all(files.map(preparePhoto));
          await call("POST", scoped(`/identities/${identity.id}/faces`), { form: formOf({ image: prepared.map((p) => p.blob) }), signal });
          prepared.forEach(releasePhoto);
        });
        changed();
      } catch (error) {
        showError(errors, error);
        if (error.code === "too_many_faces") {
          errors.append(h("p", { class: "note", text: "Several faces in one photo: use “Enrol from a photo” below to pick the face." }));
        }
      }
    },
  });
  const remove = h("button", {
    type: "button",
    class: "danger",
    id: "detail-delete",
    text: "Delete identity",
    on: {
      click: async () => {
        const sure = await confirmDialog(`Delete ${identity.name} and all ${identity.face_count} of its faces? Their embeddings are gone for good.`, "Delete identity");
        if (!sure) return;
        try {
          await call("DELETE", scoped(`/identities/${identity.id}`));
          opened = null;
          $("gallery-detail").replaceChildren(h("p", { class: "note", role: "status", text: `${identity.name} was deleted.` }));
          changed();
          renderEnrolTable();
        } catch (error) {
          showError(errors, error);
        }
      },
    },
  });
  $("gallery-detail").replaceChildren(
    h(
      "section",
      { class: "detail", "aria-labelledby": "detail-title" },
      h("h2", { id: "detail-title", text: identity.name }),
      h(
        "dl",
        {},
        h("dt", { text: "Id" }),
        h("dd", { class: "mono", text: identity.id }),
        h("dt", { text: "External id" }),
        h("dd", { text: identity.external_id || "—" }),
        h("dt", { text: "Faces" }),
        h("dd", { text: String(identity.face_count) }),
        h("dt", { text: "Metadata" }),
        h("dd", { class: "mono", text: Object.keys(identity.metadata).length ? JSON.stringify(identity.metadata) : "—" }),
        h("dt", { text: "Created / updated" }),
        h("dd", { text: `${dateTime(identity.created_at)} / ${dateTime(identity.updated_at)}` }),
      ),
      edit,
      h("h3", { text: "Faces" }),
      faces.length
        ? h("div", { class: "table-wrap" }, table("", headers, rows))
        : h("p", { class: "note", text: "No faces yet: this identity matches nothing until one is added." }),
      add,
      working,
      errors,
      h("p", {}, remove),
    ),
  );
}

// ---------- enrolment from a photo ----------

async function detect(file) {
  $("gallery-enrol-error").replaceChildren();
  $("gallery-enrol-result").replaceChildren();
  releasePhoto(enrol.photo);
  enrol.photo = await preparePhoto(file);
  enrol.faces = [];
  enrol.done = [];
  enrol.names = [];
  try {
    const answer = await busy($("gallery-enrol-busy"), "Detecting faces", (signal) =>
      call("POST", "/embed", { form: formOf({ image: enrol.photo.blob }), signal }),
    );
    enrol.faces = answer.faces;
    enrol.done = answer.faces.map(() => null);
    enrol.names = answer.faces.map((_, i) => `Face ${i + 1}`);
  } catch (error) {
    showError($("gallery-enrol-error"), error);
    return;
  }
  renderEnrolTable();
}

async function renderEnrolTable() {
  const { photo, faces } = enrol;
  if (!photo || !faces) return;
  const result = $("gallery-enrol-result");
  if (faces.length === 0) {
    result.replaceChildren(h("p", { class: "note", role: "status", text: "No face found in this photo." }));
    return;
  }
  const marks = faces.map((face, i) => ({
    box: face.box,
    landmarks: face.landmarks,
    kind: enrol.done[i] ? "match" : "plain",
    label: enrol.done[i] ? `${i + 1} ${enrol.done[i]}` : String(i + 1),
  }));
  const view = photo.url ? photoView(photo, marks, `the photo with its ${faces.length} faces numbered`) : null;
  const thumbs = await Promise.all(faces.map((face) => faceThumb(photo, face.box)));
  const withQuality = faces.some((face) => face.quality);
  const rows = faces.map((face, i) => {
    thumbs[i].setAttribute("aria-label", `face ${i + 1}`);
    const nameId = `enrol-name-${i}`;
    const name = h("input", { id: nameId, class: "enrol-name", type: "text", value: enrol.names[i], maxlength: "200", autocomplete: "off", disabled: Boolean(enrol.done[i]) });
    name.addEventListener("input", () => (enrol.names[i] = name.value));
    const actions = enrol.done[i]
      ? h("span", { class: "enrolled", text: `enrolled: ${enrol.done[i]}` })
      : h(
          "span",
          { class: "actions" },
          h("button", {
            type: "button",
            class: "enrol-new",
            text: "Enrol as new identity",
            "aria-label": `Enrol face ${i + 1} as a new identity`,
            on: { click: () => enrolFaces([i]) },
          }),
          opened
            ? h("button", {
                type: "button",
                class: "enrol-add",
                text: `Add to ${opened.name}`,
                "aria-label": `Add face ${i + 1} to ${opened.name}`,
                on: { click: () => addToOpened(i) },
              })
            : "",
        );
    return [
      String(i + 1),
      thumbs[i],
      h("span", {}, h("label", { for: nameId, class: "visually-hidden", text: `Name for face ${i + 1}` }), name),
      { content: face.box.map((v) => Math.round(v)).join(", "), props: { class: "box" } },
      fixed(face.score),
      `${Math.round(face.box[2] - face.box[0])} × ${Math.round(face.box[3] - face.box[1])}`,
      ...(withQuality ? [qualityText(face.quality)] : []),
      actions,
    ];
  });
  const headers = ["Face", "", "Name", "Box", "Detector score", "Size (px)", ...(withQuality ? ["Quality"] : []), ""];
  const pending = enrol.done.filter((d) => !d).length;
  result.replaceChildren(
    view ? view.node : h("p", { class: "note", text: photo.note }),
    h(
      "div",
      { class: "table-wrap" },
      table(`${faces.length} face${faces.length === 1 ? "" : "s"} found`, headers, rows, (i) => ({
        dataset: { face: String(i) },
      })),
    ),
    pending
      ? h("p", {}, h("button", {
          type: "button",
          class: "primary",
          id: "enrol-each",
          text: `Enrol each face as a new identity (${pending})`,
          on: { click: () => enrolFaces(enrol.faces.map((_, i) => i).filter((i) => !enrol.done[i])) },
        }))
      : h("p", { class: "note", role: "status", text: "Every face of this photo is enrolled." }),
  );
}

function nameOf(i) {
  return (enrol.names[i] || "").trim() || `Face ${i + 1}`;
}

// Each face: a new identity with the name typed, then the photo with the face's box. A face
// the API refuses leaves no empty identity behind.
async function enrolFaces(indices) {
  const names = indices.map(nameOf);
  $("gallery-enrol-error").replaceChildren();
  try {
    await busy($("gallery-enrol-busy"), "Enrolling", async (signal, relabel) => {
      for (const [n, i] of indices.entries()) {
        relabel(`Enrolling face ${i + 1} (${n + 1} of ${indices.length})`);
        const made = await call("POST", scoped("/identities"), { json: { name: names[n] }, signal });
        try {
          await call("POST", scoped(`/identities/${made.id}/faces`), {
            form: formOf({ image: enrol.photo.blob, box: enrol.faces[i].box }),
            signal,
          });
        } catch (error) {
          await call("DELETE", scoped(`/identities/${made.id}`)).catch(() => {});
          throw error;
        }
        enrol.done[i] = names[n];
      }
    });
  } catch (error) {
    showError($("gallery-enrol-error"), error);
  }
  renderEnrolTable();
  changed();
}

async function addToOpened(i) {
  const target = opened;
  $("gallery-enrol-error").replaceChildren();
  try {
    await busy($("gallery-enrol-busy"), `Adding face ${i + 1} to ${target.name}`, (signal) =>
      call("POST", scoped(`/identities/${target.id}/faces`), {
        form: formOf({ image: enrol.photo.blob, box: enrol.faces[i].box }),
        signal,
      }),
    );
    enrol.done[i] = target.name;
  } catch (error) {
    showError($("gallery-enrol-error"), error);
  }
  renderEnrolTable();
  changed();
}
