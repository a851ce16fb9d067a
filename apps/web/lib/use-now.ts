"use client";
import { useEffect, useState } from "react";

/** The current time, ticking every `ms` while `running` (elapsed times and ETAs). */
export function useNow(running: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [running, ms]);
  return now;
}
