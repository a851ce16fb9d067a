"use client";
// The voice sample: recorded here (MediaRecorder) or uploaded; shown as a waveform with its
// duration and a player, with the reason when it cannot be used.
import { useEffect, useRef, useState } from "react";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { checkVoice, VOICE_ACCEPT } from "@/lib/upload-checks";
import { duration } from "@/lib/format";

export interface VoiceSample {
  file: File;
  url: string;
  checking: boolean;
  durationSec?: number;
  peaks?: number[];
  problem?: string;
}

export function VoiceInput({ voice, onChange }: { voice: VoiceSample | undefined; onChange: (update: (v: VoiceSample | undefined) => VoiceSample | undefined) => void }) {
  const [recording, setRecording] = useState<{ recorder: MediaRecorder; started: number }>();
  const [elapsed, setElapsed] = useState(0);
  const [micProblem, setMicProblem] = useState<string>();
  const chunks = useRef<Blob[]>([]);

  useEffect(() => {
    if (!recording) return;
    const t = setInterval(() => setElapsed(Date.now() - recording.started), 200);
    return () => clearInterval(t);
  }, [recording]);

  const url = voice?.url;
  useEffect(
    () => () => {
      if (url) URL.revokeObjectURL(url);
    },
    [url],
  );

  const use = (file: File) => {
    const url = URL.createObjectURL(file);
    onChange(() => ({ file, url, checking: true }));
    void checkVoice(file).then((r) => onChange((v) => (v?.url === url ? { ...v, checking: false, ...r } : v)));
  };

  const record = async () => {
    setMicProblem(undefined);
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      setMicProblem("This browser cannot record here (a secure page is needed). Upload a recording instead.");
      return;
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      setMicProblem("The microphone is not available or permission was refused. Allow it, or upload a recording instead.");
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"].find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    chunks.current = [];
    recorder.ondataavailable = (e) => e.data.size && chunks.current.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      const mime = recorder.mimeType.split(";")[0] || "audio/webm";
      const ext = mime.includes("ogg") ? "ogg" : mime.includes("mp4") ? "m4a" : "webm";
      use(new File(chunks.current, `recording.${ext}`, { type: mime }));
      setRecording(undefined);
    };
    recorder.start(250);
    setElapsed(0);
    setRecording({ recorder, started: Date.now() });
  };

  return (
    <fieldset className="field">
      <legend>Voice sample</legend>
      <p className="hint">
        Read anything aloud for 10 to 30 seconds in a quiet room ({UPLOAD_LIMITS.minVoiceSec} s at least, {UPLOAD_LIMITS.maxVoiceSec / 60} minutes at most).
      </p>
      <div className="voice-actions">
        {recording ? (
          <button type="button" className="button danger" onClick={() => recording.recorder.stop()}>
            Stop recording
          </button>
        ) : (
          <button type="button" className="button" onClick={() => void record()}>
            {voice ? "Record again" : "Record"}
          </button>
        )}
        <span className="muted">or</span>
        <input
          id="voice-input"
          className="visually-hidden"
          type="file"
          accept={VOICE_ACCEPT}
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) use(f);
            e.target.value = "";
          }}
        />
        <label className="button" htmlFor="voice-input">
          Upload a recording
        </label>
      </div>
      {recording && (
        <p className="recording" role="status">
          <span className="rec-dot" aria-hidden="true" /> Recording… {duration(elapsed)}
        </p>
      )}
      {micProblem && <p className="field-error">{micProblem}</p>}
      {voice && (
        <div className={`voice-sample${voice.problem ? " bad" : ""}`} data-testid="voice-sample">
          <div className="voice-head">
            <span className="photo-name">{voice.file.name}</span>
            {voice.durationSec !== undefined && <span className="muted">{duration(voice.durationSec * 1000)}</span>}
            <button type="button" className="button small" onClick={() => onChange(() => undefined)} aria-label={`Remove ${voice.file.name}`}>
              Remove
            </button>
          </div>
          {voice.peaks && <Waveform peaks={voice.peaks} label={`Waveform of ${voice.file.name}, ${duration((voice.durationSec ?? 0) * 1000)}`} />}
          {voice.checking && <p className="muted">Checking…</p>}
          {voice.problem && (
            <p className="field-error">Cannot use: {voice.problem}</p>
          )}
          <audio controls src={voice.url} aria-label={`Play ${voice.file.name}`} />
        </div>
      )}
    </fieldset>
  );
}

function Waveform({ peaks, label }: { peaks: number[]; label: string }) {
  const w = peaks.length * 3;
  return (
    <svg className="waveform" viewBox={`0 0 ${w} 40`} preserveAspectRatio="none" role="img" aria-label={label}>
      {peaks.map((p, i) => {
        const h = Math.max(1, p * 38);
        return <rect key={i} x={i * 3} y={20 - h / 2} width={2} height={h} rx={1} />;
      })}
    </svg>
  );
}
