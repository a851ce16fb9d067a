// Where every object lives in storage (a local folder or S3), for both planes. The worker reads the
// same templates from schema/tables.json (generated into likeness_worker/generated/tables.py).
// Keys are deterministic: a step re-run, redelivered or retried lands on the same objects.

/** Key templates: `{name}` parts are substituted; a template ending in "/" is a prefix. */
export const STORAGE_KEY_TEMPLATES = {
  /** Everything a user uploaded for one profile. */
  uploads: "uploads/{userId}/{profileId}/",
  /** One photo of a profile; `index` is its 1-based position, two digits. */
  uploadImage: "uploads/{userId}/{profileId}/images/{index}.{ext}",
  uploadVoice: "uploads/{userId}/{profileId}/voice/sample.{ext}",
  /** Everything one job made (all its attempts share the step outputs). */
  job: "jobs/{jobId}/",
  /** A file one step of a job wrote. */
  stepFile: "jobs/{jobId}/{step}/{name}",
  /** Written last by a step: its step_succeeded payload (artifacts, outputs, engine). */
  stepDone: "jobs/{jobId}/{step}/_done.json",
  /** Terminal marker of one attempt: its job_finished event was sent. */
  attemptDone: "jobs/{jobId}/_attempts/{attempt}.json",
} as const;

type Template = (typeof STORAGE_KEY_TEMPLATES)[keyof typeof STORAGE_KEY_TEMPLATES];
type Parts<T extends string> = T extends `${string}{${infer P}}${infer Rest}` ? P | Parts<Rest> : never;

/** A key from its template, every part given (a missing part is a type error). */
export function fillKey<T extends Template>(template: T, parts: Record<Parts<T>, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => String((parts as Record<string, string | number>)[name]));
}

export const storageKeys = {
  uploads: (userId: string, profileId: string) => fillKey(STORAGE_KEY_TEMPLATES.uploads, { userId, profileId }),
  uploadImage: (userId: string, profileId: string, position: number, ext: string) =>
    fillKey(STORAGE_KEY_TEMPLATES.uploadImage, { userId, profileId, index: String(position).padStart(2, "0"), ext }),
  uploadVoice: (userId: string, profileId: string, ext: string) =>
    fillKey(STORAGE_KEY_TEMPLATES.uploadVoice, { userId, profileId, ext }),
  job: (jobId: string) => fillKey(STORAGE_KEY_TEMPLATES.job, { jobId }),
};
