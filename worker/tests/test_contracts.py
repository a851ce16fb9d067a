"""The golden fixtures of packages/contracts: valid ones pass, invalid.* are refused; and every
message the worker writes is checked against the same schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from likeness_worker import contracts
from likeness_worker.contracts import (
    ProtocolError,
    RedisKeys,
    validate_advert,
    validate_command,
    validate_event,
    validate_progress,
)
from likeness_worker.events import job_finished_event_id, now_iso
from likeness_worker.graphs.dag import DAGS
from likeness_worker.media.subtitles import subtitle_mode

FIXTURES = Path(__file__).resolve().parents[2] / "packages" / "contracts" / "fixtures"
VALIDATORS = {
    "job-command": validate_command,
    "job-event": validate_event,
    "progress": validate_progress,
    "worker-advert": validate_advert,
}


def _validator(name: str):
    base = name.removeprefix("invalid.").split(".")[0]
    return VALIDATORS[base]


FILES = sorted(FIXTURES.glob("*.json"))


def test_there_are_fixtures_of_every_kind():
    names = {f.name.removeprefix("invalid.").split(".")[0] for f in FILES}
    assert names == set(VALIDATORS)
    assert any(f.name.startswith("invalid.") for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fixture(path: Path):
    message = json.loads(path.read_text())
    check = _validator(path.name)
    if path.name.startswith("invalid."):
        with pytest.raises(ProtocolError):
            check(message)
    else:
        check(message)


def test_refuses_what_zod_refuses():
    cmd = json.loads((FIXTURES / "job-command.generate_video.json").read_text())
    for mutate in (
        lambda c: c.update(jobId="not-a-uuid"),
        lambda c: c.update(createdAt="2026-11-25T10:05:00+01:00"),  # contracts want UTC with Z
        lambda c: c["payload"].update(width=513),
        lambda c: c["payload"]["profile"].update(portraitKey="../x.png"),
        lambda c: c.update(kind="train_profile"),
    ):
        bad = json.loads(json.dumps(cmd))
        mutate(bad)
        with pytest.raises(ProtocolError):
            validate_command(bad)


def test_subtitle_modes_of_the_fixtures_old_booleans_included():
    def mode(name: str) -> str:
        return subtitle_mode(validate_command(json.loads((FIXTURES / name).read_text()))["payload"])

    assert mode("job-command.generate_video.json") == "soft"
    assert mode("job-command.generate_video.burned.json") == "burned"
    # a command queued before the modes existed: still valid, its boolean read as a mode
    assert mode("job-command.generate_video.boolean-subtitles.json") == "none"


def test_worker_dags_run_the_workflows_of_the_contracts():
    # Each worker DAG has exactly the workflow's steps minus those that run in the api.
    assert tuple(DAGS["train_profile"]) == contracts.TRAIN_PROFILE_STEPS
    for pipeline, steps in contracts.GENERATE_VIDEO_STEPS.items():
        assert set(DAGS[pipeline]) == set(steps) - set(contracts.API_STEPS)


def test_unknown_fields_are_ignored_and_a_newer_version_is_refused():
    cmd = json.loads((FIXTURES / "job-command.generate_video.json").read_text())
    cmd["traceId"] = "abc"
    cmd["payload"]["profile"]["loraScale"] = 0.8
    assert validate_command(cmd) is cmd
    cmd["v"] = 2
    with pytest.raises(contracts.NewerProtocol, match="protocol version 2; this worker speaks version 1"):
        validate_command(cmd)
    cmd["v"] = 0  # older than any api that ever ran: simply invalid
    with pytest.raises(ProtocolError) as refused:
        validate_command(cmd)
    assert not isinstance(refused.value, contracts.NewerProtocol)


def test_job_results_are_checked_per_job_kind():
    video = {"videoKey": "jobs/j/mux/video.mp4", "durationSec": 2.5, "width": 512, "height": 512, "fps": 25}
    assert contracts.validate_result("generate_video", video) is video
    with pytest.raises(ProtocolError, match="train_profile result at \\(root\\)"):
        contracts.validate_result("train_profile", video)
    with pytest.raises(ProtocolError, match="generate_video result at width"):
        contracts.validate_result("generate_video", {**video, "width": "512"})


def test_redis_key_names_come_from_the_exported_templates():
    keys = RedisKeys("lk")
    assert keys.job_stream("train_profile") == "lk:jobs:train_profile"
    assert keys.events == "lk:events"
    assert keys.progress("j") == "lk:progress:j"
    assert keys.cancel("j") == "lk:cancel:j"
    assert keys.worker_group == "workers" and keys.field == "data" and keys.maxlen == 100_000


def test_contracts_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("LIKENESS_CONTRACTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="LIKENESS_CONTRACTS_DIR"):
        contracts.load_schemas(contracts.contracts_dir())


def test_generated_messages_are_valid():
    assert now_iso().endswith("Z")
    job = "11111111-1111-4111-8111-111111111111"
    eid = job_finished_event_id(job, 2)
    assert eid == job_finished_event_id(job, 2) != job_finished_event_id(job, 3)
    validate_event(
        {"v": 1, "eventId": eid, "jobId": job, "attempt": 2, "at": now_iso(), "type": "job_finished", "state": "cancelled"}
    )
