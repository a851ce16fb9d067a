"""Built-in CPU engines (the defaults of docs/foundation.md): honest, no GPU, no weights.

They call the pure media functions in likeness_worker.media (imported lazily, inside each verb,
so the runtime starts fast and a worker that never runs a step never loads mediapipe).
"""

from . import speech, train, video  # noqa: F401  (importing registers the engines)
