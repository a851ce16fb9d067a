"""Errors raised by the media functions.

The runtime maps them to job errors: ``BadInput`` is never retried (the user must change the
input), ``ToolFailed`` may be retried, ``Cancelled`` ends the job as cancelled.
"""

from __future__ import annotations


class BadInput(Exception):
    """The user's input cannot work. The message says what to change."""


class ToolFailed(Exception):
    """An external tool (ffmpeg, espeak-ng, ...) failed or ran past its time limit."""


class ToolTimeout(ToolFailed):
    """A tool ran past its time limit and was killed."""


class Cancelled(Exception):
    """The job was cancelled while a media function was running."""
