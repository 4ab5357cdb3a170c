// Per-face quality records, shown when the API gives them (a `quality` object on faces: a
// level and its measures). Unknown shapes are shown as they come, key by key.

export function qualityText(quality) {
  if (quality === undefined || quality === null) return "—";
  if (typeof quality !== "object") return String(quality);
  const parts = [];
  if (quality.level !== undefined) parts.push(String(quality.level));
  for (const [key, value] of Object.entries(quality)) {
    if (key === "level") continue;
    if (typeof value === "number") parts.push(`${key.replaceAll("_", " ")} ${Number.isInteger(value) ? value : value.toFixed(2)}`);
    else if (typeof value === "string" || typeof value === "boolean") parts.push(`${key.replaceAll("_", " ")} ${value}`);
  }
  return parts.join(" · ") || "—";
}
