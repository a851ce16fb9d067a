// Every migration, in order. Add a new file `NNNN-what.ts` and list it here (a static list
// works the same from src/ under vitest and from dist/ in production; no directory scanning).
import type { Migration } from "kysely";
import * as m0001 from "./0001-initial.js";
import * as m0002 from "./0002-job-cancelling.js";
import * as m0003 from "./0003-video-subtitles.js";
import * as m0004 from "./0004-step-outputs.js";
import * as m0005 from "./0005-job-dispatch.js";
import * as m0006 from "./0006-engine-choice.js";
import * as m0007 from "./0007-video-edits.js";
import * as m0008 from "./0008-session-expiry.js";
import * as m0009 from "./0009-engine-licences.js";

export const migrations: Record<string, Migration> = {
  "0001-initial": m0001,
  "0002-job-cancelling": m0002,
  "0003-video-subtitles": m0003,
  "0004-step-outputs": m0004,
  "0005-job-dispatch": m0005,
  "0006-engine-choice": m0006,
  "0007-video-edits": m0007,
  "0008-session-expiry": m0008,
  "0009-engine-licences": m0009,
};
