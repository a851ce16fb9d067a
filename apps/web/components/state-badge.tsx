import type { JobState, ProfileState } from "@likeness/contracts";
import { STATE_TEXT } from "@/lib/format";

export function StateBadge({ state }: { state: JobState | ProfileState }) {
  const { text, tone } = STATE_TEXT[state];
  return (
    <span className={`badge badge-${tone}`} data-state={state}>
      {text}
    </span>
  );
}
