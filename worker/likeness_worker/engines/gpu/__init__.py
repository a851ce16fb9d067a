"""GPU engines over the seed's tools, each one file: a script in the tool's own checkout run in its
own process group (Wav2Lip, SadTalker, MuseTalk, Real-ESRGAN, kohya) or a server the tool runs
(GPT-SoVITS). Selectable, never a default: each is advertised unhealthy, with the reason, until
its settings name a working install."""
