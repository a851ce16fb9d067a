// Original file names are kept for display only (storage keys come from the server). A name
// that carries a path is refused; control characters are dropped; at most 100 characters.
import { badRequest } from "../http/errors.js";

export const MAX_FILE_NAME = 100;

export function sanitizeFileName(raw: string | undefined, field: string): string {
  const name = raw ?? "";
  if (/[\\/]/.test(name)) throw badRequest(`${field}: the file name must not contain a path ("${name.slice(0, 60)}")`, field);
  // eslint-disable-next-line no-control-regex
  let clean = name.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").trim();
  if (clean === "" || clean === "." || clean === "..") throw badRequest(`${field}: the file has no usable name`, field);
  if (clean.length > MAX_FILE_NAME) {
    const dot = clean.lastIndexOf(".");
    const ext = dot > 0 && clean.length - dot <= 10 ? clean.slice(dot) : "";
    clean = clean.slice(0, MAX_FILE_NAME - ext.length) + ext;
  }
  return clean;
}
