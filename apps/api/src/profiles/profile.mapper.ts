import type { Profile } from "@likeness/contracts";
import type { ProfileInputRow, ProfileRow } from "../db/types.js";

export function toProfile(row: ProfileRow, inputs: ProfileInputRow[]): Profile {
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    triggerWord: row.trigger_word,
    inputs: inputs.map((i) => ({
      kind: i.kind,
      name: i.original_name,
      contentType: i.content_type,
      bytes: i.bytes,
      ...(i.width !== null ? { width: i.width } : {}),
      ...(i.height !== null ? { height: i.height } : {}),
      ...(i.duration_sec !== null ? { durationSec: i.duration_sec } : {}),
    })),
    trainJobId: row.train_job_id,
    engines: (row.engines ?? {}) as Profile["engines"],
    assets: (row.assets as Record<string, unknown> | null) ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
