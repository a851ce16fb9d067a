"""Pure media functions of the built-in CPU engines (faces, voice, speech, video).

No storage, no Redis: paths in, files and measured facts out. External tools run through
``proc.run``/``proc.pipe`` so that a timeout or a cancel kills them. Import the submodule you
need (``media.tts``, ``media.video``...): this package imports nothing, so a step that needs one
tool does not load OpenCV and the rest.
"""
