"""Logging: one line per record, to stderr, at LOG_LEVEL."""

from __future__ import annotations

import logging
import sys

# LOG_LEVEL's values (the api's, pino's names) as Python levels; Python has no trace.
LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,
}


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # Dramatiq logs every consumer poll at debug; keep it at info unless asked.
    logging.getLogger("dramatiq").setLevel(max(logging.INFO, root.level))
