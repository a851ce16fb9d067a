"""The test-only fault plan's grammar: which steps of which jobs it breaks."""

from __future__ import annotations

import pytest

from likeness_worker.errors import StepFailure
from likeness_worker.faults import FaultPlan


def never() -> bool:
    return False


def test_a_rule_breaks_its_step_in_the_attempts_it_names():
    plan = FaultPlan.parse("tts:1")
    with pytest.raises(StepFailure, match="injected fault in step tts"):
        plan.before_step("tts", 1, never, {})
    plan.before_step("tts", 2, never, {})  # the retry runs
    plan.before_step("mux", 1, never, {})


def test_a_marked_rule_breaks_only_the_jobs_whose_command_has_the_marker():
    plan = FaultPlan.parse("talking_head/FAILONCE:1, upscale:sleep=0")
    marked = {"payload": {"script": {"narration": "Hello FAILONCE world"}}}
    with pytest.raises(StepFailure):
        plan.before_step("talking_head", 1, never, marked)
    plan.before_step("talking_head", 1, never, {"payload": {"script": {"narration": "Hello world"}}})
    plan.before_step("talking_head", 2, never, marked)
    assert plan.markers == {"talking_head": "FAILONCE"}
