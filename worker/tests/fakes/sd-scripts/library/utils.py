"""Fake sd-scripts library/utils.py: its logging set-up (``setup_logging``, ``add_logging_arguments``).

sd-scripts logs with rich's handler when rich is installed, else a plain ``%(message)s`` handler on
stdout; the fake always takes the plain one (what a box without rich prints).
"""

from __future__ import annotations

import logging
import sys


def setup_logging(args=None, log_level=None, reset=False):
    if logging.root.handlers:
        if reset:
            for handler in logging.root.handlers[:]:
                logging.root.removeHandler(handler)
        else:
            return
    if log_level is None and args is not None:
        log_level = args.console_log_level
    if log_level is None:
        log_level = "INFO"
    handler: logging.Handler
    if args is not None and getattr(args, "console_log_file", None):
        handler = logging.FileHandler(args.console_log_file, mode="w")
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(fmt="%(message)s", datefmt="%Y-%m-%d %H:%M:%S"))
    logging.root.setLevel(getattr(logging, log_level))
    logging.root.addHandler(handler)


setup_logging()
logger = logging.getLogger(__name__)
