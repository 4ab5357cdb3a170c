// Photos: picked, dropped or taken with the camera; large ones downscaled in the browser
// (canvas) before upload; drawn with each face's box and landmarks.

import { h, s } from "./ui.js";

export const MAX_SIDE = 1920; // longest side sent; the server's own limits stay the guard
export const MAX_BYTES = 4 * 1024 * 1024;

// A photo ready to send: {blob, url, width, height, name, note}. An image the browser cannot
// decode is sent as it is (url null), so that the API says what is wrong with it.
export async function preparePhoto(file) {
  const name = file.name || "photo.jpg";
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return { blob: file, url: null, width: 0, height: 0, name, note: "not an image the browser can show; sent as it is" };
  }
  const { width, height } = bitmap;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  if (scale === 1 && file.size <= MAX_BYTES) {
    bitmap.close();
    return { blob: file, url: URL.createObjectURL(file), width, height, name, note: "" };
  }
  const w = Math.max(1, Math.round(width * scale));
  const h2 = Math.max(1, Math.round(height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h2;
  canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h2);
  bitmap.close();
  const encoded = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  if (!encoded) {
    return { blob: file, url: URL.createObjectURL(file), width, height, name, note: "" };
  }
  const blob = new File([encoded], name.replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" });
  const note =
    `downscaled in the browser from ${width}×${height} to ${w}×${h2} ` +
    `(${kib(file.size)} → ${kib(blob.size)}) before upload`;
  return { blob, url: URL.createObjectURL(blob), width: w, height: h2, name, note };
}

function kib(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

export function releasePhoto(photo) {
  if (photo && photo.url) URL.revokeObjectURL(photo.url);
}

// A file input with a label, a drop zone and, where the browser allows it, the camera.
// onFiles(files) gets an array of File.
export function photoPicker({ id, label, multiple = false, onFiles }) {
  const input = h("input", { type: "file", id, accept: "image/*", multiple });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = ""; // the same file picked again is a new request
    if (files.length) onFiles(files);
  });
  const zone = h(
    "div",
    { class: "picker" },
    h("label", { for: id, text: label }),
    input,
    h("span", { class: "drop-hint", text: multiple ? "or drop photos here" : "or drop a photo here" }),
  );
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    zone.append(
      h("button", {
        type: "button",
        class: "camera",
        text: "Use camera",
        "aria-label": `${label}: use the camera`,
        on: { click: () => takePhoto().then((file) => file && onFiles([file])) },
      }),
    );
  }
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = [...event.dataTransfer.files];
    if (files.length) onFiles(multiple ? files : files.slice(0, 1));
  });
  return zone;
}

// The camera dialog: resolves to a JPEG File, or null when cancelled.
function takePhoto() {
  const dialog = document.getElementById("camera-dialog");
  const video = document.getElementById("camera-video");
  const take = document.getElementById("camera-take");
  const cancel = document.getElementById("camera-cancel");
  const errors = document.getElementById("camera-error");
  errors.replaceChildren();
  return new Promise((resolve) => {
    let stream = null;
    const finish = (file) => {
      take.removeEventListener("click", onTake);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (stream) stream.getTracks().forEach((track) => track.stop());
      video.srcObject = null;
      dialog.close();
      resolve(file);
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    const onTake = () => {
      if (!video.videoWidth) return;
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob(
        (blob) => finish(blob ? new File([blob], "camera.jpg", { type: "image/jpeg" }) : null),
        "image/jpeg",
        0.92,
      );
    };
    take.addEventListener("click", onTake);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    navigator.mediaDevices
      .getUserMedia({ video: true, audio: false })
      .then((media) => {
        stream = media;
        video.srcObject = media;
      })
      .catch((error) => {
        errors.replaceChildren(
          h("div", { class: "error", role: "alert", text: `The camera is not available: ${error.message || error.name}` }),
        );
      });
  });
}

// The photo with each face drawn: box, five landmarks, a label. faces[i] = {box, landmarks,
// label, kind ("match", "unknown", "plain" or "selected")}. Returns {node, update(faces)}.
export function photoView(photo, faces, alt) {
  const img = h("img", { src: photo.url, alt, width: photo.width, height: photo.height });
  const svg = s("svg", {
    viewBox: `0 0 ${photo.width} ${photo.height}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
    class: "overlay",
  });
  const font = Math.max(12, Math.round(Math.max(photo.width, photo.height) / 60));
  const update = (list) => {
    svg.replaceChildren(
      ...list.map((face, i) => {
        const [x1, y1, x2, y2] = face.box;
        const group = s("g", { class: `face ${face.kind || "plain"}`, "data-face": i });
        group.append(s("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
        for (const [x, y] of face.landmarks || []) {
          group.append(s("circle", { cx: x, cy: y, r: Math.max(1.5, (x2 - x1) / 40) }));
        }
        const text = face.label ?? String(i + 1);
        const width = text.length * font * 0.6 + font * 0.6;
        const top = y1 - font * 1.3 >= 0 ? y1 - font * 1.3 : y2;
        group.append(s("rect", { class: "tag", x: x1, y: top, width, height: font * 1.3 }));
        group.append(s("text", { x: x1 + font * 0.3, y: top + font, "font-size": font, text }));
        return group;
      }),
    );
  };
  update(faces);
  const node = h("figure", { class: "photo" }, h("div", { class: "stage" }, img, svg));
  if (photo.note) node.append(h("figcaption", { class: "note", text: photo.note }));
  return { node, update };
}

// A small canvas of one face, cut from the photo (for the enrol table).
export async function faceThumb(photo, box, size = 64) {
  const canvas = h("canvas", { width: size, height: size, class: "thumb" });
  canvas.setAttribute("role", "img");
  try {
    const bitmap = await createImageBitmap(photo.blob, { imageOrientation: "from-image" });
    const [x1, y1, x2, y2] = box;
    const side = Math.max(x2 - x1, y2 - y1) * 1.2;
    const cx = (x1 + x2) / 2;
    const cy = (y1 + y2) / 2;
    const sx = bitmap.width / photo.width; // the blob is the photo as sent, so 1
    canvas
      .getContext("2d")
      .drawImage(bitmap, (cx - side / 2) * sx, (cy - side / 2) * sx, side * sx, side * sx, 0, 0, size, size);
    bitmap.close();
  } catch {
    // a thumbnail is a courtesy; the face's box and number still say which it is
  }
  return canvas;
}
