import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from likeness_worker.media import proc
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
    with pytest.raises(Cancelled), pipe(["sh", "-c", "cat > /dev/null"], timeout=10, cancelled=lambda: flag["stop"]) as p:
        p.write(b"y")
        flag["stop"] = True
        p.write(b"z")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_tool_dies_when_its_parent_is_sigkilled(tmp_path):
    pid_file = tmp_path / "tool.pid"
    # A Python parent (the worker) running a long tool through proc.run.
    parent = subprocess.Popen([
        sys.executable, "-c",
        "import sys; from likeness_worker.media.proc import run; "
        f"run(['sh', '-c', 'echo $$ > {pid_file}; exec sleep 60'], timeout=120)",
    ])
    tool = None
    try:
        deadline = time.monotonic() + 20
        while tool is None and time.monotonic() < deadline:
            text = pid_file.read_text().strip() if pid_file.exists() else ""
            tool = int(text) if text.isdigit() else None
            time.sleep(0.05)
        assert tool is not None and _alive(tool), "the tool never started"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(tool) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(tool), "the tool outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()
        if tool is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tool, signal.SIGKILL)


def test_run_feeds_an_input_larger_than_a_pipe_to_a_slow_reader():
    # communicate() retried after its 0.1 s poll once stopped writing: the tool waited forever.
    data = bytes(range(256)) * (8 << 12)  # 8 MiB
    slow = "import sys, time, hashlib; time.sleep(0.5); print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"
    out = proc.run([sys.executable, "-c", slow], timeout=30, input=data)
    assert out.stdout.decode().strip() == hashlib.sha256(data).hexdigest()


def test_stream_hands_each_line_to_the_callback_and_keeps_the_tail():
    script = ("import sys, time\n"
              "for i in range(5):\n"
              "    sys.stderr.write(f'\\rsteps: {i * 25}%|##| {i}/4'); sys.stderr.flush(); time.sleep(0.02)\n"
              "sys.stderr.write('\\n'); sys.stderr.flush()\n"
              "print('CUDA out of memory. Tried to allocate 2.00 GiB'); sys.stdout.write('last words')\n"
              "sys.exit(3)")
    seen: list[str] = []
    with pytest.raises(proc.ToolExited) as info:
        proc.stream([sys.executable, "-c", script], 30, on_line=seen.append)
    assert seen[:5] == [f"steps: {i * 25}%|##| {i}/4" for i in range(5)]
    assert seen[-1] == "last words"  # a last line without a newline is a line too
    assert info.value.returncode == 3 and "out of memory" in info.value.output


def test_stream_is_killed_on_cancel_and_on_timeout():
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        proc.stream([sys.executable, "-c", "import time; time.sleep(30)"], 30, cancelled=lambda: time.monotonic() - t0 > 0.3)
    assert time.monotonic() - t0 < 5
    with pytest.raises(ToolTimeout) as info:
        proc.stream([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"], 0.5)
    assert "started" in str(info.value)


def test_stream_hands_on_a_tqdm_bar_before_its_next_redraw():
    # tqdm starts each redraw with \r and ends it with nothing: a bar waiting on a slow step is
    # seen while it waits, once.
    script = ("import sys, time\n"
              "sys.stderr.write('\\rsteps:  50%|#    | 1/2 [00:01<00:01,  1.00it/s, avr_loss=0.5]'); sys.stderr.flush()\n"
              "time.sleep(30)")
    seen: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        proc.stream([sys.executable, "-c", script], 60, cancelled=lambda: bool(seen) or time.monotonic() - t0 > 20,
                    on_line=seen.append)
    assert time.monotonic() - t0 < 10
    assert seen == ["steps:  50%|#    | 1/2 [00:01<00:01,  1.00it/s, avr_loss=0.5]"]
