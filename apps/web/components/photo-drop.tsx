"use client";
// Photos for a profile: drop them or pick them, see each one, and why one cannot be used (the
// browser's own checks at once, the server's reasons after a refused upload).
import { useEffect, useRef, useState, type DragEvent } from "react";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { checkPhoto, IMAGE_TYPES, RECOMMENDED_PHOTOS } from "@/lib/upload-checks";

export interface PhotoItem {
  key: string;
  file: File;
  url: string;
  checking: boolean;
  width?: number;
  height?: number;
  /** Why it cannot be used: the browser's check, or the server's reason. */
  problem?: string;
}

let nextKey = 0;

export function PhotoDrop({ photos, onChange }: { photos: PhotoItem[]; onChange: (update: (p: PhotoItem[]) => PhotoItem[]) => void }) {
  const [over, setOver] = useState(false);
  const urls = useRef(new Set<string>());

  useEffect(() => {
    const owned = urls.current;
    return () => owned.forEach((u) => URL.revokeObjectURL(u));
  }, []);

  const add = (files: FileList | File[]) => {
    const items = [...files].map((file) => {
      const url = URL.createObjectURL(file);
      urls.current.add(url);
      return { key: `p${nextKey++}`, file, url, checking: true } satisfies PhotoItem;
    });
    onChange((p) => [...p, ...items]);
    for (const item of items) {
      void checkPhoto(item.file).then((r) =>
        onChange((p) => p.map((x) => (x.key === item.key ? { ...x, checking: false, ...("problem" in r ? { problem: r.problem } : r) } : x))),
      );
    }
  };
  const remove = (item: PhotoItem) => {
    URL.revokeObjectURL(item.url);
    urls.current.delete(item.url);
    onChange((p) => p.filter((x) => x.key !== item.key));
  };
  const drop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    if (e.dataTransfer.files.length) add(e.dataTransfer.files);
  };

  const count = photos.length;
  const advice =
    count === 0
      ? `Add ${RECOMMENDED_PHOTOS.min} to ${RECOMMENDED_PHOTOS.max} photos: your face clearly visible, different angles and light.`
      : count > UPLOAD_LIMITS.maxImages
        ? `At most ${UPLOAD_LIMITS.maxImages} photos: remove ${count - UPLOAD_LIMITS.maxImages}.`
        : count < RECOMMENDED_PHOTOS.min
          ? `${count} photo${count === 1 ? "" : "s"}. ${RECOMMENDED_PHOTOS.min} or more give a better likeness.`
          : `${count} photos.`;

  return (
    <fieldset className="field">
      <legend>Photos</legend>
      <div
        className={`dropzone${over ? " over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={drop}
        data-testid="photo-dropzone"
      >
        <p>Drag photos here, or</p>
        <input
          id="photos-input"
          className="visually-hidden"
          type="file"
          accept={IMAGE_TYPES.join(",")}
          multiple
          aria-describedby="photos-advice"
          onChange={(e) => {
            if (e.target.files) add(e.target.files);
            e.target.value = "";
          }}
        />
        {/* After its input: the input is hidden, and its focus shows on this label (globals.css). */}
        <label className="button" htmlFor="photos-input">
          Choose photos
        </label>
        <p className="hint">PNG, JPEG or WebP; each at most {UPLOAD_LIMITS.maxImageBytes / 2 ** 20} MB and at least {UPLOAD_LIMITS.minImageSide} px a side.</p>
      </div>
      <p id="photos-advice" className={count > UPLOAD_LIMITS.maxImages ? "field-error" : "hint"} aria-live="polite">
        {advice}
      </p>
      {count > 0 && (
        <ul className="grid photos" aria-label="Chosen photos">
          {photos.map((p, i) => (
            <li key={p.key} className={`photo-item${p.problem ? " bad" : ""}`} data-testid="photo-item">
              <img src={p.url} alt={`Preview of ${p.file.name}`} className="photo" />
              <span className="photo-name">{p.file.name}</span>
              {p.checking ? (
                <span className="muted">Checking…</span>
              ) : p.problem ? (
                <span className="field-error">Cannot use: {p.problem}</span>
              ) : (
                <span className="muted">
                  {p.width}×{p.height}
                </span>
              )}
              <button type="button" className="button small" onClick={() => remove(p)} aria-label={`Remove ${p.file.name} (photo ${i + 1})`}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </fieldset>
  );
}
