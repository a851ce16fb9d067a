"use client";
import { useState } from "react";

/** A destructive action asked twice: the first press shows what it does and a second button. */
export function ConfirmButton({ label, confirmLabel, warning, onConfirm }: { label: string; confirmLabel: string; warning: string; onConfirm: () => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking) {
    return (
      <button type="button" className="button danger-outline" onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <div className="confirm" role="group" aria-label={label}>
      <p>{warning}</p>
      <button
        type="button"
        className="button danger"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void onConfirm().finally(() => setBusy(false));
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" className="button" onClick={() => setAsking(false)} disabled={busy}>
        Keep it
      </button>
    </div>
  );
}
