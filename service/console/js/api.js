// The service's public HTTP API, as any client sees it: the key in X-API-Key, errors as the
// API words them ({"error": {"code", "message"}}). The key lives in sessionStorage (this tab
// only), never in a URL or a cookie; requests carry no credentials but that header.

const KEY_ITEM = "facerec.apiKey";
const COLLECTION_ITEM = "facerec.collection";

// The API's root: where /console/ is mounted, so a path prefix of a proxy is kept.
export const base = (() => {
  const path = window.location.pathname;
  const at = path.lastIndexOf("/console");
  return at > 0 ? path.slice(0, at) : "";
})();

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.body = body; // the parsed answer, when it was JSON
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

// The collection the gallery routes work on; "" is the default gallery (the plain routes).
export function getCollection() {
  return sessionStorage.getItem(COLLECTION_ITEM) || "";
}

export function setCollection(id) {
  if (id) sessionStorage.setItem(COLLECTION_ITEM, id);
  else sessionStorage.removeItem(COLLECTION_ITEM);
}

// A gallery route in the chosen collection: /identify → /collections/{cid}/identify.
export function scoped(path) {
  const id = getCollection();
  return id ? `/collections/${encodeURIComponent(id)}${path}` : path;
}

// One request; resolves to the parsed JSON body (null for 204), rejects with ApiError.
export async function call(method, path, { json, form, signal } = {}) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers["X-API-Key"] = key;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // multipart: the browser writes the boundary
  }
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body,
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") {
      throw new ApiError(0, "cancelled", "the request was cancelled in the console");
    }
    throw new ApiError(0, "network_error", `the service could not be reached (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    const error = data && typeof data === "object" ? data.error : null;
    if (error && typeof error.code === "string") {
      throw new ApiError(response.status, error.code, String(error.message ?? ""), retry, data);
    }
    const said = text.trim().slice(0, 200) || response.statusText;
    throw new ApiError(response.status, `http_${response.status}`, said, retry, data);
  }
  return data;
}

// A multipart form from fields; Blob values become file parts, objects become JSON text.
export function formOf(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    const values = Array.isArray(value) && value.every((v) => v instanceof Blob) ? value : [value];
    for (const v of values) {
      if (v instanceof Blob) form.append(name, v, v.name || "photo.jpg");
      else if (typeof v === "object") form.append(name, JSON.stringify(v));
      else form.append(name, String(v));
    }
  }
  return form;
}
