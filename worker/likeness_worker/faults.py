"""TEST-ONLY fault injection, switched on by LIKENESS_TEST_FAULTS. Never set it in production.

Grammar: comma-separated rules, each ``<step>:<what>``:
  ``tts:1``          the tts step fails (engine_failed, retryable) in every attempt <= 1, so the
                     first attempt fails and a retried attempt (2) succeeds;
  ``tts:sleep=5``    the tts step sleeps 5 s (cancel-aware) before it runs, so a test can kill
                     or cancel the worker in the middle of a step;
  ``tts:exit=1``     the tts step hard-exits the whole worker process (os._exit) in attempts <= 1.

A rule's step may name a marker, ``<step>/<marker>:<what>``: then it applies only to the jobs
whose command contains that text (a word in a narration, a profile's trigger word), so one
worker can serve the jobs a test leaves alone and the one it breaks.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import StepFailure

log = logging.getLogger(__name__)


@dataclass
class FaultPlan:
    fail_until_attempt: dict[str, int] = field(default_factory=dict)
    sleep_s: dict[str, float] = field(default_factory=dict)
    exit_until_attempt: dict[str, int] = field(default_factory=dict)
    # step -> the text a job's command must contain for the step's rules to apply
    markers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        plan = cls()
        for rule in (r.strip() for r in spec.split(",") if r.strip()):
            step, _, what = rule.partition(":")
            step, _, marker = step.partition("/")
            if marker:
                plan.markers[step] = marker
            if what.startswith("sleep="):
                plan.sleep_s[step] = float(what[6:])
            elif what.startswith("exit="):
                plan.exit_until_attempt[step] = int(what[5:])
            else:
                plan.fail_until_attempt[step] = int(what)
        return plan

    def before_step(self, step: str, attempt: int, cancelled: Callable[[], bool], command: dict | None = None) -> None:
        marker = self.markers.get(step)
        if marker is not None and marker not in json.dumps(command or {}):
            return
        if step in self.sleep_s:
            log.warning("TEST FAULT: %s sleeps %.1fs", step, self.sleep_s[step])
            end = time.monotonic() + self.sleep_s[step]
            while time.monotonic() < end:
                if cancelled():
                    raise StepFailure("cancelled", "cancelled during injected sleep")
                time.sleep(0.1)
        if attempt <= self.exit_until_attempt.get(step, 0):
            log.warning("TEST FAULT: %s kills this worker process", step)
            os._exit(137)
        if attempt <= self.fail_until_attempt.get(step, 0):
            raise StepFailure("engine_failed", f"injected fault in step {step} (LIKENESS_TEST_FAULTS)")
