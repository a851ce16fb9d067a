"use client";
import { useEffect, useRef, useState } from "react";

/**
 * A destructive action asked twice: the first press shows what it does and a second button.
 * Focus follows: to the confirming button when it appears, back to the first when kept.
 */
export function ConfirmButton({ label, confirmLabel, warning, onConfirm }: { label: string; confirmLabel: string; warning: string; onConfirm: () => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLButtonElement>(null);
  const confirm = useRef<HTMLButtonElement>(null);
  const moved = useRef(false);
  useEffect(() => {
    if (!moved.current) return;
    (asking ? confirm : first).current?.focus();
  }, [asking]);
  const ask = (yes: boolean) => {
    moved.current = true;
    setAsking(yes);
  };

  if (!asking) {
    return (
      <button ref={first} type="button" className="button danger-outline" onClick={() => ask(true)}>
        {label}
      </button>
    );
  }
  return (
    <div className="confirm" role="group" aria-label={label}>
      <p>{warning}</p>
      <button
        ref={confirm}
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
      <button type="button" className="button" onClick={() => ask(false)} disabled={busy}>
        Keep it
      </button>
    </div>
  );
}
