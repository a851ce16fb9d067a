"""`npm run bench`: figures measured on a finished video (see bench/run.mjs).

`metrics` holds the pure functions (landmark and audio arrays in, figures out) that the unit
tests check; `measure` decodes an MP4, re-detects the face on every frame and computes them.
Nothing here is imported by the worker itself.
"""
