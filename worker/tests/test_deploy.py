"""Consistency of deploy/ with the code: nothing here runs Docker (no engine on the test machines).

What would otherwise only break on a user's GPU box: a compose file that does not parse, a
Prometheus target naming a service that does not exist, a variable the api, the worker, npm start
or the web app's build reads that .env.example does not document (or one it documents that nobody
reads), a Dockerfile COPY of a path that moved, and a dashboard query on a metric or label that
was renamed.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
API_SRC = REPO / "apps" / "api" / "src"
WORKER_PKG = REPO / "worker" / "likeness_worker"

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


# --- helpers -----------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def services() -> dict:
    return compose()["services"]


def env_example() -> dict[str, str]:
    """Documented variables: `NAME=value` lines, and `# NAME=value` lines (optional, commented out)."""
    names: dict[str, str] = {}
    for n, line in enumerate((DEPLOY / ".env.example").read_text().splitlines(), 1):
        m = re.match(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if not m:
            continue
        name, value = m.groups()
        assert name not in names, f".env.example line {n}: {name} is listed twice"
        names[name] = value
    return names


def api_env_names() -> set[str]:
    """Names in the api's EnvSchema (apps/api/src/config.ts) and any process.env.X elsewhere."""
    text = (API_SRC / "config.ts").read_text()
    block = re.search(r"const EnvSchema = z\.object\(\{(.*?)\n\}\);", text, re.S)
    assert block, "EnvSchema not found in apps/api/src/config.ts"
    names = set(re.findall(r"^\s{2}([A-Z][A-Z0-9_]*):", block.group(1), re.M))
    for path in API_SRC.rglob("*.ts"):
        if ".test." in path.name:
            continue
        names |= set(re.findall(r"process\.env\.([A-Z][A-Z0-9_]*)", path.read_text()))
        names |= set(re.findall(r"process\.env\[\"([A-Z][A-Z0-9_]*)\"\]", path.read_text()))
    assert {"DATABASE_URL", "REDIS_URL", "API_PORT"} <= names, names
    return names


def worker_env_names() -> set[str]:
    """Every Settings field (read as its upper-case name) and any os.environ read in the package."""
    from likeness_worker.config import Settings
    from likeness_worker.engines import load_engines

    names = {f.upper() for f in Settings.model_fields}
    for group in load_engines().settings_groups():  # each engine's own group (REALESRGAN_*, KOHYA_*…)
        names |= {f.upper() for f in group.model_fields}
    for path in WORKER_PKG.rglob("*.py"):
        names |= set(re.findall(r"os\.environ(?:\.get)?[\[(]\s*[\"']([A-Z][A-Z0-9_]*)[\"']", path.read_text()))
        names |= set(re.findall(r"os\.getenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", path.read_text()))
    assert {"DATABASE_URL", "WORKER_QUEUES", "LIKENESS_CONTRACTS_DIR"} <= names, names
    return names


def studio_env_names() -> set[str]:
    """What `npm start` (scripts/start.mjs) and the web app's build (apps/web/next.config.ts) read."""
    names: set[str] = set()
    for path in (REPO / "scripts" / "start.mjs", REPO / "apps" / "web" / "next.config.ts"):
        names |= set(re.findall(r"process\.env\.([A-Z][A-Z0-9_]*)", path.read_text()))
    assert {"WEB_PORT", "API_PORT", "LIKENESS_API_URL"} <= names, names
    return names


def compose_env_names() -> set[str]:
    """Variables compose.yaml interpolates (${NAME...}); $$ is an escaped, literal $."""
    text = (DEPLOY / "compose.yaml").read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


# --- compose -----------------------------------------------------------------------------------


def test_compose_parses_and_has_the_stack() -> None:
    svc = services()
    for name in ("traefik", "api", "web", "worker", "worker-gpu", "postgres", "redis", "minio", "minio-init",
                 "prometheus", "grafana", "cadvisor", "dcgm-exporter", "ollama", "open-webui", "comfyui"):
        assert name in svc, f"compose.yaml has no service {name}"
    # `docker compose up` without profiles starts only what works today.
    assert all("profiles" not in svc[name] for name in ("api", "web", "worker"))
    assert svc["worker-gpu"]["profiles"] == ["gpu"] and svc["dcgm-exporter"]["profiles"] == ["gpu"]
    for name in ("ollama", "open-webui", "comfyui"):
        assert svc[name]["profiles"] == ["engines"], name
    gpu = svc["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert "deploy" not in svc["worker"], "the default worker must run without a GPU"
    # One network for everything.
    for name, s in svc.items():
        assert s.get("networks") == ["likeness"], f"{name} is not (only) on the likeness network"
    # Redis as STYLE.md asks.
    cmd = " ".join(svc["redis"]["command"])
    assert "--maxmemory-policy noeviction" in cmd and "--appendonly yes" in cmd


def test_images_are_pinned_and_no_secret_is_written_in_compose() -> None:
    for name, s in services().items():
        image = s["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag and tag not in ("", "latest"), f"{name}: image {image} has no pinned tag"
    text = yaml.safe_dump(compose())  # the values, without the comments
    env = env_example()
    for secret in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert env[secret] not in text, f"the example value of {secret} is written in compose.yaml"
    assert "change-me" not in text


def test_app_services_read_env_file_and_pin_their_ports() -> None:
    svc = services()
    for name in ("api", "worker", "worker-gpu"):
        assert svc[name]["env_file"] in (".env", [".env"]), name
    assert svc["api"]["environment"]["API_PORT"] == "8080"
    for name in ("worker", "worker-gpu"):
        assert svc[name]["environment"]["WORKER_METRICS_PORT"] == "9101"
    assert svc["worker"]["environment"]["WORKER_QUEUES"] == "cpu"
    assert svc["worker-gpu"]["environment"]["WORKER_QUEUES"] == "gpu0"
    assert "/healthz" in " ".join(svc["api"]["healthcheck"]["test"])


def test_bind_mounts_and_build_files_exist() -> None:
    for name, s in services().items():
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (DEPLOY / src).exists(), f"{name}: mounted {src} does not exist"
        build = s.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert context == REPO, f"{name}: build context should be the repository root"
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"


# --- Prometheus --------------------------------------------------------------------------------


def prometheus_targets() -> list[tuple[str, str, int]]:
    """(job, host, port) of every static target and DNS name."""
    conf = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    out = []
    for job in conf["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                host, port = target.rsplit(":", 1)
                out.append((job["job_name"], host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            for host in dns["names"]:
                out.append((job["job_name"], host, int(dns["port"])))
    return out


def test_every_prometheus_target_is_a_compose_service() -> None:
    svc = services()
    targets = prometheus_targets()
    for job, host, _port in targets:
        assert host == "localhost" or host in svc, f"prometheus job {job}: no compose service {host}"
    ports = {(host, port) for _job, host, port in targets}
    assert ("api", 8080) in ports and ("worker", 9101) in ports and ("worker-gpu", 9101) in ports
    for host in ("cadvisor", "dcgm-exporter", "redis-exporter"):
        assert any(h == host for h, _ in ports), f"prometheus does not scrape {host}"


# --- .env.example <-> the configs --------------------------------------------------------------


def test_env_example_documents_exactly_what_is_read() -> None:
    documented = set(env_example())
    api, worker, comp, studio = api_env_names(), worker_env_names(), compose_env_names(), studio_env_names()
    # The process's own environment, passed on to a GPU tool (GPT-SoVITS's scripts need their
    # checkout on PYTHONPATH, added to whatever is there): not a Likeness setting.
    read = (api | worker | comp | studio) - {"PYTHONPATH"}
    undocumented = sorted(read - documented)
    assert not undocumented, (
        "read by the api config, the worker config, compose.yaml, npm start or the web app's build "
        f"but not in deploy/.env.example: {undocumented}"
    )
    unread = sorted(documented - read)
    assert not unread, f"in deploy/.env.example but read by nobody (api, worker, compose, npm start, web): {unread}"


def test_env_example_values_agree() -> None:
    env = env_example()
    # The password the postgres service creates is the one the apps connect with.
    m = re.match(r"^postgres(?:ql)?://([^:]+):([^@]+)@postgres:5432/(\w+)$", env["DATABASE_URL"])
    assert m, env["DATABASE_URL"]
    assert m.group(1) == "likeness" and m.group(3) == "likeness" and m.group(2) == env["POSTGRES_PASSWORD"]
    assert env["STORAGE_DRIVER"] == "s3" and env["S3_ENDPOINT"] == "http://minio:9000"
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert len(env["MINIO_ROOT_PASSWORD"]) >= 8 and len(env["S3_SECRET_ACCESS_KEY"]) >= 8
    # A $ in an htpasswd hash must be single-quoted or compose reads it as a variable.
    assert env["ADMIN_BASIC_AUTH"].startswith("'") and env["ADMIN_BASIC_AUTH"].endswith("'")
    # The example must be accepted by both configs.
    from likeness_worker.config import load_settings

    plain = {k: v.strip("'") for k, v in env.items()}
    settings = load_settings(plain)
    assert settings.storage_driver == "s3"


# --- Dockerfiles -------------------------------------------------------------------------------


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#") and not ln.startswith("!")]


@pytest.mark.parametrize("dockerfile", ["api.Dockerfile", "web.Dockerfile", "worker.Dockerfile"])
def test_dockerfile_copy_sources_exist_and_are_not_ignored(dockerfile: str) -> None:
    text = (DEPLOY / dockerfile).read_text().replace("\\\n", " ")
    copies = [ln.split()[1:] for ln in text.splitlines() if ln.strip().startswith("COPY ")]
    assert copies
    ignored = dockerignore()
    checked = 0
    for args in copies:
        if any(a.startswith("--from") for a in args):
            continue
        sources = [a for a in args if not a.startswith("--")][:-1]
        for src in sources:
            matches = list(REPO.glob(src))
            assert matches, f"{dockerfile}: COPY source {src} does not exist"
            for pattern in ignored:
                bare = pattern.removeprefix("**/")
                hit = fnmatch.fnmatch(src, pattern) or fnmatch.fnmatch(Path(src).name, bare) or src.startswith(pattern + "/")
                assert not hit, f"{dockerfile}: COPY source {src} is excluded by .dockerignore ({pattern})"
            checked += 1
    assert checked >= 2


def test_worker_image_finds_the_contract_schemas() -> None:
    text = (DEPLOY / "worker.Dockerfile").read_text()
    m = re.search(r"COPY packages/contracts/schema (\S+)/schema\b", text)
    assert m, "the worker image must copy packages/contracts/schema to <dir>/schema"
    assert f"LIKENESS_CONTRACTS_DIR={m.group(1)}" in text
    # The worker reads LIKENESS_CONTRACTS_DIR/schema/<name>.json: all of them must be in the repo.
    for name in ("job-command", "job-event", "progress", "redis-keys"):
        assert (REPO / "packages" / "contracts" / "schema" / f"{name}.json").is_file()
    assert 'CMD ["likeness-worker"]' in text and "USER 1000:1000" in text
    api = (DEPLOY / "api.Dockerfile").read_text()
    assert 'CMD ["node", "apps/api/dist/server.js"]' in api and "USER 1000:1000" in api


# --- Grafana -----------------------------------------------------------------------------------

PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "by",
    "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "topk",
    "bottomk", "abs", "clamp_min", "clamp_max", "delta", "deriv", "time", "vector", "scalar",
    "label_replace", "offset", "bool", "avg_over_time", "max_over_time", "quantile",
}
# Metrics of third-party exporters: allowed when Prometheus scrapes that exporter.
EXPORTER_PREFIXES = {"DCGM_": "dcgm-exporter", "container_": "cadvisor", "redis_": "redis-exporter"}
SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metrics() -> dict[str, set[str]]:
    """Metric name -> label names, read from the code that registers them (api and worker)."""
    out: dict[str, set[str]] = {}

    def labels(raw: str) -> set[str]:
        return set(re.findall(r"[\"']([a-z_][a-z0-9_]*)[\"']", raw))

    for path in API_SRC.rglob("*.ts"):
        if ".test." in path.name:
            continue
        text = path.read_text()
        for m in re.finditer(r"name:\s*\"(likeness_[a-z0-9_]+)\"(.*?)labelNames:\s*\[([^\]]*)\]", text, re.S):
            if "name:" not in m.group(2):  # the labelNames belong to this metric, not a later one
                out[m.group(1)] = labels(m.group(3))
    text = (WORKER_PKG / "metrics.py").read_text()
    for m in re.finditer(r"(?:Histogram|Counter|Gauge)\(\s*\"(likeness_[a-z0-9_]+)\",\s*\"[^\"]*\",\s*\[([^\]]*)\]", text, re.S):
        out[m.group(1)] = labels(m.group(2))
    for m in re.finditer(r"(?:Histogram|Counter|Gauge)\(\s*\"(likeness_[a-z0-9_]+)\",\s*\"[^\"]*\"\s*\)", text):
        out[m.group(1)] = set()
    for m in re.finditer(r"GaugeMetricFamily\(\s*\"(likeness_[a-z0-9_]+)\".*?labels=\[([^\]]*)\]", text, re.S):
        out[m.group(1)] = labels(m.group(2))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "likeness.json").read_text())
    exprs = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            exprs.append((panel["title"], target["expr"]))
    return exprs


def metric_names(expr: str) -> set[str]:
    e = re.sub(r'"[^"]*"', "", expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\w+", " ", e)
    return {t for t in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e) if t not in PROMQL_WORDS}


def base_name(name: str, known: dict[str, set[str]]) -> str:
    if name in known:
        return name
    for suffix in SERIES_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in known:
            return name.removesuffix(suffix)
    return name


def test_the_metric_extraction_sees_the_known_metrics() -> None:
    known = exported_metrics()
    assert known["likeness_job_step_duration_seconds"] == {"step", "engine", "outcome", "reused"}
    assert known["likeness_worker_step_duration_seconds"] == {"task", "engine", "outcome"}
    assert known["likeness_worker_queue_depth"] == {"queue", "state"}
    assert known["likeness_stream_length"] == {"stream"}
    assert "likeness_worker_jobs_running" in known
    assert metric_names('sum by (le, step) (rate(a_b_bucket{reused="false"}[5m])) / c') == {"a_b_bucket", "c"}


def test_dashboard_queries_use_metrics_and_labels_that_exist() -> None:
    known = exported_metrics()
    jobs = {job for job, _h, _p in prometheus_targets()}
    hosts = {h for _j, h, _p in prometheus_targets()}
    used: set[str] = set()
    for title, expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        ours = set()
        for name in names:
            if name.startswith("likeness_"):
                base = base_name(name, known)
                assert base in known, f"dashboard panel {title!r}: metric {name} is not exported by the api or the worker"
                ours.add(base)
                used.add(base)
            else:
                exporter = next((svc for p, svc in EXPORTER_PREFIXES.items() if name.startswith(p)), None)
                assert exporter, f"dashboard panel {title!r}: {name} belongs to no known exporter"
                assert exporter in hosts, f"dashboard panel {title!r}: {name} needs {exporter}, not scraped"
        if ours:
            allowed = set().union(*(known[n] for n in ours)) | {"le", "instance", "job"}
            grouped = set()
            for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
                grouped |= {g.strip() for g in group.split(",") if g.strip()}
            for matcher in re.findall(r"\{([^}]*)\}", expr):
                grouped |= set(re.findall(r"([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)", matcher))
            unknown = grouped - allowed
            assert not unknown, f"dashboard panel {title!r}: labels {sorted(unknown)} not on {sorted(ours)}"
    assert "api" in jobs and "worker" in jobs
    # The dashboard covers what ARCHITECTURE §5 promises.
    for must in ("likeness_job_step_duration_seconds", "likeness_job_step_failures_total",
                 "likeness_worker_step_retries_total", "likeness_stream_length",
                 "likeness_worker_queue_depth", "likeness_worker_real_time_factor"):
        assert must in used, f"the dashboard does not show {must}"


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    dash = json.loads((DEPLOY / "grafana/dashboards/likeness.json").read_text())
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
    prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/likeness.yaml").read_text())
    path = prov["providers"][0]["options"]["path"]
    mounts = services()["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


# --- Traefik -----------------------------------------------------------------------------------


def test_traefik_config_parses_and_routers_use_defined_middlewares() -> None:
    static = yaml.safe_load((DEPLOY / "traefik" / "traefik.yml").read_text())
    assert set(static["entryPoints"]) >= {"web", "websecure", "metrics"}
    assert static["providers"]["docker"]["network"] == compose()["networks"]["likeness"]["name"]
    assert ("traefik", 8082) in {(h, p) for _j, h, p in prometheus_targets()}
    file_mw: set[str] = set()
    for path in (DEPLOY / "traefik" / "dynamic").glob("*.yml"):
        file_mw |= set((yaml.safe_load(path.read_text()).get("http") or {}).get("middlewares") or {})
    labels = [lbl for s in services().values() for lbl in s.get("labels", [])]
    docker_mw = {m.group(1) for lbl in labels if (m := re.match(r"traefik\.http\.middlewares\.([\w-]+)\.", lbl))}
    admin_routers = set()
    for lbl in labels:
        m = re.match(r"traefik\.http\.routers\.([\w-]+)\.middlewares=(.*)$", lbl)
        if not m:
            continue
        for ref in m.group(2).split(","):
            name, _, provider = ref.partition("@")
            assert name in (file_mw if provider == "file" else docker_mw), f"router {m.group(1)}: no middleware {ref}"
            if name == "admin-auth":
                admin_routers.add(m.group(1))
    assert {"traefik", "grafana", "prometheus", "minio"} <= admin_routers, "admin UIs must sit behind basic-auth"
    api_rule = next(lbl for lbl in labels if lbl.startswith("traefik.http.routers.api.rule="))
    assert "!PathPrefix(`/metrics`)" in api_rule, "the api's /metrics must not be public"
    # One origin: the api takes /v1 (and the WebSocket under it), the web studio the rest.
    assert "PathPrefix(`/v1`)" in api_rule
    web_rule = next(lbl for lbl in labels if lbl.startswith("traefik.http.routers.web.rule="))
    assert web_rule.endswith("PathPrefix(`/`)")
    priority = {m.group(1): int(m.group(2)) for lbl in labels
                if (m := re.match(r"traefik\.http\.routers\.(\w+)\.priority=(\d+)$", lbl))}
    assert priority["api"] > priority["web"], "the api's paths must win over the web app's catch-all"


def test_only_traefik_publishes_ports_and_every_admin_ui_needs_auth() -> None:
    svc = services()
    for name, s in svc.items():
        if name != "traefik":
            assert "ports" not in s, f"{name} publishes ports on the host: only Traefik may"
        assert s.get("network_mode") != "host", f"{name} uses the host's network"
    labels = {name: s.get("labels", []) for name, s in svc.items()}
    routers: dict[str, str] = {}  # router -> the service that declares it
    for name, lbls in labels.items():
        for lbl in lbls:
            if m := re.match(r"traefik\.http\.routers\.([\w-]+)\.rule=", lbl):
                routers[m.group(1)] = name
    # The app's own routers are public (the api has its own auth; the web studio signs in through
    # it). Every other router is an admin UI: basic-auth first.
    public = {"api", "web"}
    assert {"traefik", "grafana", "prometheus", "minio", "open-webui", "comfyui"} <= set(routers) - public, routers
    for router, name in routers.items():
        if router in public:
            continue
        key = f"traefik.http.routers.{router}.middlewares="
        mw = next((lbl.removeprefix(key) for lbl in labels[name] if lbl.startswith(key)), "")
        assert "admin-auth@docker" in mw.split(","), f"router {router} ({name}) is reachable without basic-auth"
    # Behind the basic-auth, the UIs keep their own sign-in.
    grafana = svc["grafana"]["environment"]
    assert grafana.get("GF_AUTH_ANONYMOUS_ENABLED", "false") == "false" and grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert svc["open-webui"]["environment"].get("WEBUI_AUTH", "True") != "False"
    # The services behind the admin routers publish nothing else: no second entry point.
    static = yaml.safe_load((DEPLOY / "traefik" / "traefik.yml").read_text())
    assert static["api"].get("insecure") is not True, "the Traefik dashboard must not be served on :8080 without auth"
    assert static["providers"]["docker"]["exposedByDefault"] is False
