import time

import pytest

from likeness_worker.media.errors import Cancelled, ToolFailed, ToolTimeout
from likeness_worker.media.proc import pipe, run


def test_run_returns_output():
    res = run(["sh", "-c", "printf hello"], timeout=10)
    assert res.returncode == 0 and res.stdout == b"hello"


def test_run_passes_input():
    assert run(["cat"], timeout=10, input=b"abc").stdout == b"abc"


def test_non_zero_exit_raises_with_stderr_tail():
    with pytest.raises(ToolFailed, match="exit 3.*boom"):
        run(["sh", "-c", "echo boom >&2; exit 3"], timeout=10)


def test_missing_tool_is_tool_failed():
    with pytest.raises(ToolFailed, match="not installed"):
        run(["no-such-tool-likeness"], timeout=5)


def test_timeout_kills_the_whole_process_group(tmp_path):
    marker = tmp_path / "child-survived"
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout):
        # the grandchild would write the marker after 1.5 s if it were not killed with its group
        run(["sh", "-c", f"(sleep 1.5; touch {marker}) & sleep 30"], timeout=0.5)
    assert time.monotonic() - t0 < 1.4
    time.sleep(1.6)
    assert not marker.exists()


def test_cancel_stops_a_running_tool():
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        run(["sleep", "30"], timeout=60, cancelled=lambda: time.monotonic() - t0 > 0.3)
    assert time.monotonic() - t0 < 2


def test_cancel_before_start():
    with pytest.raises(Cancelled):
        run(["true"], timeout=5, cancelled=lambda: True)


def test_pipe_feeds_stdin_and_cancel_kills(tmp_path):
    out = tmp_path / "copy.bin"
    with pipe(["sh", "-c", f"cat > {out}"], timeout=10) as p:
        p.write(b"x" * 100_000)
    assert out.stat().st_size == 100_000
    flag = {"stop": False}
    with pytest.raises(Cancelled):
        with pipe(["sh", "-c", "cat > /dev/null"], timeout=10, cancelled=lambda: flag["stop"]) as p:
            p.write(b"y")
            flag["stop"] = True
            p.write(b"z")
