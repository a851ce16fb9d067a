// Creating, reading and deleting profiles. A rejected upload leaves no row and no object:
// everything is validated from temp files first, then the objects are written, then the rows
// are inserted in one transaction; on any failure the objects written so far are deleted.
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { buffer } from "node:stream/consumers";
import type { Kysely } from "kysely";
import pLimit from "p-limit";
import type { FastifyBaseLogger } from "fastify";
import { CreateProfileFields, storageKeys, type Profile } from "@likeness/contracts";
import type { Database, NewProfileInput } from "../db/types.js";
import sharp from "sharp";
import type { ObjectStorage } from "../storage/object-storage.js";
import { badRequest, combined, conflict, HttpError, notFound } from "../http/errors.js";
import { ProfilesRepository } from "./profiles.repository.js";
import { ProfileInputsRepository } from "./profile-inputs.repository.js";
import { toProfile } from "./profile.mapper.js";
import { sanitizeFileName } from "./file-name.js";
import { checkImage, checkVoice } from "./media-check.js";
import type { ParsedUpload } from "./upload-parser.js";
import { humanErrorMap } from "../http/validation.js";

/**
 * Run before a profile is deleted: throw (an HttpError) to refuse, or return storage prefixes
 * (each ending in "/") to delete after the rows are gone, e.g. the profile's `jobs/<jobId>/`.
 */
export type ProfileDeleteHook = (ctx: { userId: string; profileId: string }) => Promise<string[]>;

const TRIGGER_WORD = /^[a-z][a-z0-9]{2,31}$/;
const IMAGE_CHECK_CONCURRENCY = 4;

/** "Ada Lovelace" → "lkadalovelace": lk + the lowercase ASCII letters of the name. */
export function baseTriggerWord(name: string): string {
  const letters = name.normalize("NFKD").toLowerCase().replace(/[^a-z]/g, "").slice(0, 24);
  return `lk${letters || "person"}`;
}


function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === "23505" && e.constraint === constraint;
}

const outcome = <T>(p: Promise<T>) => p.then((value) => ({ value }), (error: unknown) => ({ error }));

/** The media checks' refusals as one answer; anything else (a bug, a crash) as itself. */
function refusal(failures: unknown[]): unknown {
  return failures.find((e) => !(e instanceof HttpError)) ?? combined(failures as HttpError[]);
}

export class ProfileService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly storage: ObjectStorage,
    private readonly log: FastifyBaseLogger,
    private readonly deleteHooks: readonly ProfileDeleteHook[] = [],
  ) {}

  async create(userId: string, upload: ParsedUpload): Promise<Profile> {
    // 1. The cheap checks: fields, counts, file names.
    const fields = CreateProfileFields.safeParse({ name: upload.fields.name ?? "" }, { error: humanErrorMap });
    if (!fields.success) throw badRequest(`name: ${fields.error.issues[0]?.message ?? "invalid"}`, "name");
    const name = fields.data.name;
    const explicitTrigger = upload.fields.triggerWord?.trim();
    if (explicitTrigger !== undefined && !TRIGGER_WORD.test(explicitTrigger)) {
      throw badRequest("triggerWord: 3..32 characters, lowercase letters and digits, starting with a letter", "triggerWord");
    }
    if (upload.images.length === 0) throw badRequest("images: at least one image is required", "images");
    if (upload.voices.length === 0) throw badRequest("voice: a voice sample is required", "voice");
    const voiceFile = upload.voices[0]!;
    const imageNames = upload.images.map((f) => sanitizeFileName(f.rawName, f.field));
    const voiceName = sanitizeFileName(voiceFile.rawName, voiceFile.field);

    // 2. The media checks (decode everything) before anything is stored. Every file is checked,
    //    so a refusal names all the bad ones with their reasons, not only the first.
    const imageChecks = await pLimit(IMAGE_CHECK_CONCURRENCY).map(upload.images, (f) => outcome(checkImage(f.path, f.field, f.bytes)));
    const voiceCheck = await outcome(checkVoice(voiceFile.path, voiceFile.field, voiceFile.bytes));
    const failures = [...imageChecks, voiceCheck].flatMap((c) => ("error" in c ? [c.error] : []));
    if (failures.length > 0 || !("value" in voiceCheck)) throw refusal(failures);
    const images = imageChecks.flatMap((c) => ("value" in c ? [c.value] : []));
    const voice = voiceCheck.value;

    // 3. Objects, then rows; undo the objects if anything fails.
    const profileId = randomUUID();
    const prefix = storageKeys.uploads(userId, profileId);
    const inputs: NewProfileInput[] = [];
    try {
      for (const [i, img] of images.entries()) {
        const file = upload.images[i]!;
        const key = storageKeys.uploadImage(userId, profileId, i + 1, img.ext);
        await this.storage.put(key, createReadStream(file.path), img.contentType);
        inputs.push({
          profile_id: profileId,
          kind: "image",
          position: i + 1,
          key,
          original_name: imageNames[i]!,
          content_type: img.contentType,
          bytes: file.bytes,
          width: img.width,
          height: img.height,
          duration_sec: null,
        });
      }
      const voiceKey = storageKeys.uploadVoice(userId, profileId, voice.ext);
      await this.storage.put(voiceKey, createReadStream(voiceFile.path), voice.contentType);
      inputs.push({
        profile_id: profileId,
        kind: "voice",
        position: 1,
        key: voiceKey,
        original_name: voiceName,
        content_type: voice.contentType,
        bytes: voiceFile.bytes,
        width: null,
        height: null,
        duration_sec: voice.durationSec,
      });

      return await this.insertProfile(userId, profileId, name, explicitTrigger, inputs);
    } catch (err) {
      await this.storage.deletePrefix(prefix).catch((cleanupErr: unknown) =>
        this.log.error({ err: cleanupErr, prefix }, "could not delete the objects of a refused upload"),
      );
      throw err;
    }
  }

  private async insertProfile(
    userId: string,
    profileId: string,
    name: string,
    explicitTrigger: string | undefined,
    inputs: NewProfileInput[],
  ): Promise<Profile> {
    for (let attempt = 0; ; attempt++) {
      const triggerWord = explicitTrigger ?? (await this.deriveTriggerWord(userId, name));
      try {
        return await this.db.transaction().execute(async (trx) => {
          const profile = await new ProfilesRepository(trx).insert({
            id: profileId,
            user_id: userId,
            name,
            trigger_word: triggerWord,
          });
          const rows = await new ProfileInputsRepository(trx).insertMany(inputs);
          return toProfile(profile, rows);
        });
      } catch (err) {
        if (isUniqueViolation(err, "profiles_user_id_trigger_word_key")) {
          if (explicitTrigger !== undefined) throw conflict(`triggerWord: you already use "${explicitTrigger}"`, "triggerWord");
          if (attempt < 3) continue; // another upload took the derived word at the same moment
        }
        throw err;
      }
    }
  }

  private async deriveTriggerWord(userId: string, name: string): Promise<string> {
    const base = baseTriggerWord(name);
    const taken = await new ProfilesRepository(this.db).triggerWordsStartingWith(userId, base);
    if (!taken.has(base)) return base;
    for (let n = 2; ; n++) if (!taken.has(`${base}${n}`)) return `${base}${n}`;
  }

  async get(userId: string, id: string): Promise<Profile> {
    const row = await new ProfilesRepository(this.db).findForUser(userId, id);
    if (!row) throw notFound("profile");
    const inputs = await new ProfileInputsRepository(this.db).listForProfiles([row.id]);
    return toProfile(row, inputs);
  }

  /**
   * A photo the profile was made from (1-based position) as a square WebP thumbnail; 404 when the
   * profile is not the user's or has no such photo.
   */
  async thumbnail(userId: string, id: string, position: number, size: number): Promise<Buffer> {
    const row = await new ProfilesRepository(this.db).findForUser(userId, id);
    if (!row) throw notFound("profile");
    const input = (await new ProfileInputsRepository(this.db).listForProfiles([row.id])).find((i) => i.kind === "image" && i.position === position);
    if (!input) throw notFound("photo");
    const { stream } = await this.storage.getStream(input.key);
    // EXIF orientation first (a phone's portrait photo is stored sideways), then a square around what stands out.
    return sharp(await buffer(stream))
      .rotate()
      .resize(size, size, { fit: "cover", position: "attention" })
      .webp({ quality: 80 })
      .toBuffer();
  }

  async list(userId: string): Promise<Profile[]> {
    const rows = await new ProfilesRepository(this.db).listForUser(userId);
    const inputs = await new ProfileInputsRepository(this.db).listForProfiles(rows.map((r) => r.id));
    return rows.map((r) => toProfile(r, inputs.filter((i) => i.profile_id === r.id)));
  }

  /**
   * Deletes the rows (inputs, jobs, steps, artifacts and videos cascade), then the uploaded
   * objects and whatever the delete hooks named (the job side's outputs).
   */
  async delete(userId: string, id: string): Promise<void> {
    const repo = new ProfilesRepository(this.db);
    const row = await repo.findForUser(userId, id);
    if (!row) throw notFound("profile");
    if (row.state === "queued" || row.state === "training") {
      throw conflict("the profile is being trained: cancel the training job first");
    }
    const prefixes = [storageKeys.uploads(userId, id)];
    for (const hook of this.deleteHooks) prefixes.push(...(await hook({ userId, profileId: id })));
    if (!(await repo.deleteForUser(userId, id))) throw notFound("profile");
    for (const prefix of prefixes) {
      await this.storage.deletePrefix(prefix).catch((err: unknown) =>
        this.log.error({ err, profileId: id, prefix }, "profile deleted but some of its objects could not be removed"),
      );
    }
  }
}
