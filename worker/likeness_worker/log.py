"""Logging: one line per record, to stderr, at LOG_LEVEL."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Dramatiq logs every consumer poll at debug; keep it at info unless asked.
    logging.getLogger("dramatiq").setLevel(max(logging.INFO, root.level))
