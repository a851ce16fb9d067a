"""deploy/k8s checked offline: nothing here needs a cluster (and kubectl only for the last test).

What would otherwise only break in a user's cluster: a manifest the API server refuses (checked
with kubernetes-validate's bundled schemas, strict), a KEDA object its CRD refuses, a file a
kustomization names that is not there, a Service or selector that matches no pod, an env var from
a ConfigMap or Secret nobody generates, an env example listing a variable nobody reads, a KEDA
trigger on a stream or queue the workers do not use, and GPU pods that would share a queue name.
"""

from __future__ import annotations

import ast
import math
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import redis
import yaml
from test_deploy import REPO, api_env_names, services, worker_env_names

from likeness_worker import placement
from likeness_worker.config import load_settings
from likeness_worker.contracts import JOB_KINDS, RedisKeys

K8S = REPO / "deploy" / "k8s"
# The Kubernetes release the manifests are validated against (the pod-index label they use for
# GPU queue names is beta from 1.28, GA in 1.32).
KUBE_VERSION = "1.32"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
CRDS = {
    "ScaledObject": K8S / "schemas" / "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": K8S / "schemas" / "keda.sh_triggerauthentications.yaml",
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Set by the manifests on the pods themselves: listing them in config.env would do nothing.
PINNED = {"API_HOST", "API_PORT", "API_CONSUMER_NAME", "WORKER_QUEUES", "WORKER_METRICS_PORT"}

Doc = dict[str, Any]


# --- helpers -----------------------------------------------------------------------------------


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml" and "schemas" not in p.parts)


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def kustomization(folder: Path) -> Doc:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def generators(k: Doc) -> list[Doc]:
    return [*(k.get("configMapGenerator") or []), *(k.get("secretGenerator") or [])]


def resources_of(folder: Path) -> list[tuple[Path, Doc]]:
    """The manifests a kustomization folder brings in (its resources and components, recursively),
    before kustomize transforms them: what each overlay deploys, less the generated objects."""
    k = kustomization(folder)
    out: list[tuple[Path, Doc]] = []
    for ref in [*(k.get("resources") or []), *(k.get("components") or [])]:
        target = (folder / ref).resolve()
        if target.is_dir():
            out += resources_of(target)
        else:
            out += [(target, d) for d in load_docs(target)]
    return out


def of_kind(docs: list[tuple[Path, Doc]], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for _, d in docs if d["kind"] == kind}


def env_file(path: Path) -> dict[str, str]:
    """NAME=value lines, and `# NAME=value` lines (documented, left unset)."""
    names: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            assert m.group(1) not in names, f"{path.relative_to(REPO)} line {n}: {m.group(1)} is listed twice"
            names[m.group(1)] = m.group(2)
    return names


def set_values(path: Path) -> dict[str, str]:
    """Only the NAME=value lines: what kustomize puts in the ConfigMap or Secret."""
    return {k: v for k, v in env_file(path).items() if re.search(rf"^{k}=", path.read_text(), re.M)}


def generated(overlay: str) -> dict[str, Path]:
    """Generated ConfigMap/Secret name -> the example of the env file it is made from."""
    folder = K8S / "overlays" / overlay
    out = {}
    for g in generators(kustomization(folder)):
        (env,) = g["envs"]
        out[g["name"]] = folder / f"{env}.example"
    return out


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*(spec.get("initContainers") or []), *spec["containers"]]


def container_env(workload: Doc, name: str) -> Doc | None:
    return next((e for c in containers(workload) for e in c.get("env") or [] if e["name"] == name), None)


def expand(env: list[Doc], fields: dict[str, str]) -> dict[str, str]:
    """A container's env as Kubernetes sets it: fieldRefs from ``fields``, and $(NAME) replaced by
    a variable defined earlier in the list (dependent environment variables)."""
    out: dict[str, str] = {}
    for e in env:
        if "valueFrom" in e:
            out[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            out[e["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: out.get(m[1], m[0]), e["value"])
    return out


def strict_crd_schema(kind: str) -> Doc:
    """The CRD's openAPIV3Schema with every object closed (additionalProperties: false unless it
    says otherwise): the API server silently prunes unknown fields, so a misspelt one would do
    nothing; here it fails."""
    crd = yaml.safe_load(CRDS[kind].read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v.get("served") and v.get("storage")]

    def close(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: close(v) for k, v in node.items()}
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [close(v) for v in node]
        return node

    return close(version["schema"]["openAPIV3Schema"])


def validate(doc: Doc) -> None:
    """kubernetes-validate (strict) for Kubernetes kinds, the vendored CRD for KEDA's."""
    if doc["apiVersion"].startswith("keda.sh/"):
        jsonschema.Draft7Validator(strict_crd_schema(doc["kind"])).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


# Formulas use only names, integers, +, * and two-argument max/min: the same in KEDA's expr-lang
# and in Python, so evaluating them here says what KEDA will compute.
FORMULA_NODES = (ast.Expression, ast.BinOp, ast.Add, ast.Mult, ast.Call, ast.Name, ast.Load, ast.Constant)


def formula(so: Doc) -> ast.Expression:
    text = so["spec"]["advanced"]["scalingModifiers"]["formula"]
    tree = ast.parse(text.strip(), mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, FORMULA_NODES), f"{so['metadata']['name']}: {ast.dump(node)} in {text!r}"
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name) and node.func.id in {"max", "min"} and len(node.args) == 2
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int)
    return tree


def formula_names(tree: ast.Expression) -> set[str]:
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in calls}


def replicas(so: Doc, metrics: dict[str, int]) -> int:
    """What KEDA asks the HPA for, given each trigger's value (AverageValue: ceil(value / target)),
    within min and max."""
    sm = so["spec"]["advanced"]["scalingModifiers"]
    value = eval(compile(formula(so), "formula", "eval"), {"__builtins__": {}, "max": max, "min": min}, metrics)
    if value <= float(sm.get("activationTarget", "0")):
        return so["spec"]["minReplicaCount"]
    wanted = math.ceil(value / float(sm["target"]))
    return max(so["spec"]["minReplicaCount"], min(so["spec"]["maxReplicaCount"], wanted))


def overlay_docs(overlay: str) -> list[tuple[Path, Doc]]:
    return resources_of(K8S / "overlays" / overlay)


def scaled_objects(overlay: str) -> dict[str, Doc]:
    return of_kind(overlay_docs(overlay), "ScaledObject")


def config_of(overlay: str) -> dict[str, str]:
    files = generated(overlay)
    return {**set_values(files["likeness-config"]), **set_values(files["likeness-secret"])}


# --- schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_validates(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        try:
            validate(doc)
        except (jsonschema.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            pytest.fail(f"{path.relative_to(K8S)}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_the_crd_check_refuses_what_keda_would_not_read() -> None:
    (so,) = [d for d in load_docs(K8S / "components" / "keda" / "worker-cpu.scaledobject.yaml")]
    validate(so)
    for broken in (
        {**so, "spec": {**so["spec"], "minReplicas": 1}},  # misspelt: KEDA would prune it
        {**so, "spec": {**so["spec"], "maxReplicaCount": "8"}},  # wrong type
        {**so, "spec": {k: v for k, v in so["spec"].items() if k != "scaleTargetRef"}},  # required
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_kubernetes_validate_is_strict_here() -> None:
    (api, *_) = load_docs(K8S / "base" / "api.yaml")
    misspelt = {**api, "spec": {**api["spec"], "replica": 2}}
    with pytest.raises(jsonschema.ValidationError):
        validate(misspelt)


# --- kustomize structure -----------------------------------------------------------------------


def test_kustomizations_name_existing_files_and_every_manifest_is_used() -> None:
    used: set[Path] = set()
    for folder in kustomization_dirs():
        k = kustomization(folder)
        kind = k.get("kind", "Kustomization")
        assert kind in {"Kustomization", "Component"}, folder
        for ref in k.get("resources") or []:
            target = (folder / ref).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{folder}: resource {ref} missing"
            if target.is_file():
                used.add(target)
        for ref in k.get("components") or []:
            target = (folder / ref).resolve()
            assert kustomization(target).get("kind") == "Component", f"{folder}: {ref} is not a Component"
        for g in generators(k):
            for env in g.get("envs") or []:
                # The env files are the user's (git-ignored); the examples are what ships.
                example = folder / f"{env}.example"
                assert example.is_file(), f"{folder}: {g['name']} reads {env}: ship {example.name}"
                ignored = subprocess.run(["git", "check-ignore", "-q", str(folder / env)], cwd=REPO)
                assert ignored.returncode == 0, f"{folder / env} holds secrets and must be git-ignored"
    unused = sorted(str(p.relative_to(K8S)) for p in manifest_files() if p.resolve() not in used)
    assert not unused, f"manifests no kustomization names: {unused}"
    assert set(OVERLAYS) == {"in-cluster", "external"}, OVERLAYS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_services_and_probes_point_at_real_pods(overlay: str) -> None:
    docs = overlay_docs(overlay)
    workloads = {n: d for kind in WORKLOADS for n, d in of_kind(docs, kind).items()}
    svcs = of_kind(docs, "Service")
    for name, w in workloads.items():
        labels = w["spec"]["template"]["metadata"]["labels"]
        if w["kind"] != "Job":
            sel = w["spec"]["selector"]["matchLabels"]
            assert sel.items() <= labels.items(), f"{name}: selector {sel} does not match its pods {labels}"
        ports = {p.get("name") for c in containers(w) for p in c.get("ports") or []}
        for c in containers(w):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = (c.get(probe) or {}).get("httpGet", {}).get("port")
                assert port is None or port in ports, f"{name}: {probe} on undeclared port {port}"
        if w["kind"] == "StatefulSet":
            assert w["spec"]["serviceName"] in svcs, f"{name}: no Service {w['spec']['serviceName']}"
    for name, svc in svcs.items():
        sel = svc["spec"]["selector"]
        matched = [w for w in workloads.values() if sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, f"Service {name} selects {len(matched)} workloads"
        declared = {(p.get("name"), p["containerPort"]) for c in containers(matched[0]) for p in c.get("ports") or []}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in pair for pair in declared), f"Service {name}: targetPort {target} not in {declared}"
    for name, pdb in of_kind(docs, "PodDisruptionBudget").items():
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(sel.items() <= w["spec"]["template"]["metadata"]["labels"].items() for w in workloads.values()), name
    for ing in of_kind(docs, "Ingress").values():
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = svcs[backend["name"]]
                assert backend["port"]["name"] in {p["name"] for p in svc["spec"]["ports"]}, backend


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_read_config_only_from_the_generated_objects(overlay: str) -> None:
    made = generated(overlay)
    docs = overlay_docs(overlay)
    refs: list[tuple[str, str | None, str]] = []  # (object name, key or None for envFrom, where)
    for kind in WORKLOADS:
        for name, w in of_kind(docs, kind).items():
            for c in containers(w):
                for src in c.get("envFrom") or []:
                    ref = src.get("configMapRef") or src.get("secretRef")
                    refs.append((ref["name"], None, name))
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
                    if ref:
                        refs.append((ref["name"], ref["key"], name))
    for ta in of_kind(docs, "TriggerAuthentication").values():
        refs += [(r["name"], r["key"], ta["metadata"]["name"]) for r in ta["spec"]["secretTargetRef"]]
    assert refs
    for obj, key, where in refs:
        assert obj in made, f"{where} reads {obj}, which {overlay} does not generate ({sorted(made)})"
        if key is not None:
            assert key in set_values(made[obj]), f"{where} reads {obj}/{key}: not set in {made[obj].name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_examples_document_only_what_is_read(overlay: str) -> None:
    made = generated(overlay)
    app = api_env_names() | worker_env_names()
    config, secret = env_file(made["likeness-config"]), env_file(made["likeness-secret"])
    for path, names in ((made["likeness-config"], config), (made["likeness-secret"], secret)):
        unread = sorted(set(names) - app)
        assert not unread, f"{path.relative_to(REPO)}: read by neither the api nor the worker: {unread}"
        pinned = sorted(set(names) & PINNED)
        assert not pinned, f"{path.relative_to(REPO)}: set by the manifests on the pods, so ignored here: {pinned}"
    assert not set(config) & set(secret), "a variable in both config.env and secret.env"
    assert {"DATABASE_URL", "REDIS_URL", "S3_SECRET_ACCESS_KEY"} <= set(secret), "secrets belong in secret.env"
    # The state file holds exactly what the overlay's manifests read from it.
    read = set()
    for _, d in overlay_docs(overlay):
        if d["kind"] == "TriggerAuthentication":
            read |= {r["key"] for r in d["spec"]["secretTargetRef"] if r["name"] == "likeness-state"}
        elif d["kind"] in WORKLOADS:
            for c in containers(d):
                for e in c.get("env") or []:
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref and ref["name"] == "likeness-state":
                        read.add(ref["key"])
    assert set(env_file(made["likeness-state"])) == read, (overlay, sorted(read))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_examples_agree_and_the_worker_accepts_them(overlay: str) -> None:
    made = generated(overlay)
    env = config_of(overlay)
    state = set_values(made["likeness-state"])
    redis_url = re.match(r"^rediss?://(?:[^:@]*:([^@]*)@)?([^:/]+):(\d+)/\d+$", env["REDIS_URL"])
    assert redis_url, env["REDIS_URL"]
    # KEDA's operator runs in another namespace: an in-cluster Service is named in full there.
    host, port = redis_url.group(2), redis_url.group(3)
    if "." not in host:
        namespace = kustomization(K8S / "overlays" / overlay)["namespace"]
        host = f"{host}.{namespace}.svc.cluster.local"
    assert state["REDIS_ADDRESS"] == f"{host}:{port}", "KEDA must read the apps' Redis"
    assert state["REDIS_PASSWORD"] == (redis_url.group(1) or ""), "KEDA must use the apps' Redis password"
    assert env["STORAGE_DRIVER"] == "s3"
    if overlay == "in-cluster":
        db = re.match(r"^postgres(?:ql)?://likeness:([^@]+)@postgres:5432/likeness$", env["DATABASE_URL"])
        assert db and db.group(1) == state["POSTGRES_PASSWORD"], env["DATABASE_URL"]
        assert state["REDIS_ADDRESS"] == "redis.likeness.svc.cluster.local:6379" and env["S3_ENDPOINT"] == "http://minio:9000"
        assert len(state["MINIO_ROOT_PASSWORD"]) >= 8 and len(env["S3_SECRET_ACCESS_KEY"]) >= 8
    for kind in ("Deployment", "StatefulSet"):
        for name, w in of_kind(overlay_docs(overlay), kind).items():
            if name.startswith("worker"):
                pod = expand(containers(w)[0]["env"], {"metadata.labels['apps.kubernetes.io/pod-index']": "0"})
                settings = load_settings({**env, **pod})
                assert settings.storage_driver == "s3" and settings.s3_bucket == env["S3_BUCKET"]


# --- the application's shape -------------------------------------------------------------------


def base_docs() -> list[tuple[Path, Doc]]:
    return resources_of(K8S / "base")


def test_api_runs_two_replicas_routed_like_compose() -> None:
    docs = base_docs()
    api = of_kind(docs, "Deployment")["api"]
    assert api["spec"]["replicas"] == 2
    (c,) = containers(api)
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {p["containerPort"] for p in c["ports"]} == {8080}
    assert expand(c["env"], {"metadata.name": "api-x"})["API_PORT"] == "8080"
    # The paths compose's Traefik sends to the api, and the Ingress's.
    rule = next(label for label in services()["api"]["labels"] if label.startswith("traefik.http.routers.api.rule="))
    compose_paths = set(re.findall(r"Path(?:Prefix)?\(`([^`]+)`\)", rule.split("&&")[0]))
    (ing,) = of_kind(docs, "Ingress").values()
    paths = [p for rule in ing["spec"]["rules"] for p in rule["http"]["paths"]]
    to_api = {p["path"] for p in paths if p["backend"]["service"]["name"] == "api"}
    assert to_api == compose_paths == {"/v1", "/docs", "/healthz"}
    catch_all = [p for p in paths if p["path"] == "/" and p["pathType"] == "Prefix"]
    assert [p["backend"]["service"]["name"] for p in catch_all] == ["web"]
    for p in paths:  # /metrics never reaches the api
        if p["backend"]["service"]["name"] == "api":
            matches = p["path"] == "/metrics" or (p["pathType"] == "Prefix" and "/metrics".startswith(p["path"]))
            assert not matches, p
    # The web image's /v1 rewrite is built for the api Service's name and port.
    url = re.search(r"LIKENESS_API_URL=(\S+)", (REPO / "deploy" / "web.Dockerfile").read_text())
    assert url and url.group(1) == "http://api:8080"
    assert of_kind(docs, "Service")["api"]["spec"]["ports"][0]["port"] == 8080


def test_images_and_security_contexts() -> None:
    for overlay in OVERLAYS:
        for kind in WORKLOADS:
            for name, w in of_kind(overlay_docs(overlay), kind).items():
                pod = pod_spec(w).get("securityContext") or {}
                for c in containers(w):
                    sc = {**pod, **(c.get("securityContext") or {})}
                    assert sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, f"{name}/{c['name']}"
                    assert sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}"
                    assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}"
                    image = c["image"]
                    assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    images = {c["image"].split(":")[0] for kind in WORKLOADS for w in of_kind(base_docs(), kind).values()
              for c in containers(w)}
    assert images == {"likeness/api", "likeness/web", "likeness/worker"}
    # The same images as compose's state services.
    state = resources_of(K8S / "components" / "in-cluster-state")
    for kind in WORKLOADS:
        for name, w in of_kind(state, kind).items():
            assert containers(w)[0]["image"] == services()[name]["image"], name


def test_workers_mirror_compose() -> None:
    docs = base_docs()
    grace = float(set_values(K8S / "overlays" / "in-cluster" / "config.env.example")["WORKER_SHUTDOWN_GRACE_S"])
    cpu = of_kind(docs, "Deployment")["worker-cpu"]
    gpu = of_kind(docs, "StatefulSet")["worker-gpu"]
    for w in (cpu, gpu):
        assert "replicas" not in w["spec"], "KEDA owns the workers' replica count"
        assert pod_spec(w)["terminationGracePeriodSeconds"] > grace, "SIGKILL before the worker's grace ends"
        (c,) = containers(w)
        port = expand(c["env"], {"metadata.labels['apps.kubernetes.io/pod-index']": "0"})["WORKER_METRICS_PORT"]
        assert port == "9101" and {p["containerPort"] for p in c["ports"]} == {9101}
        assert w["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == port
    assert container_env(cpu, "WORKER_QUEUES") == {"name": "WORKER_QUEUES", "value": "cpu"}
    (c,) = containers(gpu)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in (containers(cpu)[0].get("resources") or {}).get("limits", {})
    assert any(t["key"] == "nvidia.com/gpu" for t in pod_spec(gpu)["tolerations"])
    assert container_env(gpu, "WORKER_GPUS") is None and container_env(gpu, "CUDA_VISIBLE_DEVICES") is None


def test_gpu_pods_consume_unique_queues_the_placement_uses() -> None:
    gpu = of_kind(base_docs(), "StatefulSet")["worker-gpu"]
    so = scaled_objects("in-cluster")["worker-gpu"]
    env = config_of("in-cluster")
    queues: list[str] = []
    for ordinal in range(so["spec"]["maxReplicaCount"]):
        pod = expand(containers(gpu)[0]["env"], {"metadata.labels['apps.kubernetes.io/pod-index']": str(ordinal)})
        settings = load_settings({**env, **pod})
        assert settings.gpu_queues == () and settings.own_queues == (f"gpu{ordinal}",), settings.own_queues
        queues += settings.own_queues
    assert len(set(queues)) == len(queues)
    assert all(placement.is_gpu_queue(q) for q in queues)
    # The first pod, which minReplicaCount keeps, consumes the queue a step goes to when no GPU
    # queue is live; and with several live the placement picks among exactly these names.
    assert so["spec"]["minReplicaCount"] >= 1 and queues[0] == placement.DEFAULT_GPU_QUEUE
    live = [placement.GpuQueue(q, waiting=1) for q in queues[1:]] + [placement.GpuQueue(queues[0], waiting=3)]
    assert placement.pick(live, "image/comfyui") == queues[1]


# --- KEDA --------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_objects_target_real_workloads_and_keys(overlay: str) -> None:
    docs = overlay_docs(overlay)
    sos = of_kind(docs, "ScaledObject")
    auths = of_kind(docs, "TriggerAuthentication")
    assert set(sos) == {"worker-cpu", "worker-gpu"}
    env = config_of(overlay)
    keys = RedisKeys(env["REDIS_KEY_PREFIX"])
    for so in sos.values():
        ref = so["spec"]["scaleTargetRef"]
        assert ref["name"] in of_kind(docs, ref.get("kind", "Deployment")), ref
        assert so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]  # the CRD's CEL rule
        names = [t["name"] for t in so["spec"]["triggers"]]
        assert len(set(names)) == len(names) and formula_names(formula(so)) == set(names), names
        for t in so["spec"]["triggers"]:
            assert t["authenticationRef"]["name"] in auths
    cpu = sos["worker-cpu"]
    assert cpu["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker-cpu"}
    assert cpu["spec"]["advanced"]["scalingModifiers"]["target"] == env["WORKER_MAX_JOBS"]
    seen = set()
    for t in cpu["spec"]["triggers"]:
        md = t["metadata"]
        assert t["type"] == "redis-streams" and md["consumerGroup"] == keys.worker_group
        # Which count KEDA reads: lagCount set -> the group's lag, else its pending entries.
        seen.add((md["stream"], "lag" if "lagCount" in md else "pending"))
    assert seen == {(keys.job_stream(k), c) for k in JOB_KINDS for c in ("lag", "pending")}
    gpu = sos["worker-gpu"]
    assert gpu["spec"]["scaleTargetRef"]["kind"] == "StatefulSet" and gpu["spec"]["scaleTargetRef"]["name"] == "worker-gpu"
    lists = [t["metadata"]["listName"] for t in gpu["spec"]["triggers"] if t["type"] == "redis"]
    expected = [placement.dramatiq_queue_key(keys, f"gpu{i}") + ".msgs" for i in range(gpu["spec"]["maxReplicaCount"])]
    assert lists == expected, "one trigger per GPU pod's queue, up to maxReplicaCount"


def test_the_scaling_formulas() -> None:
    sos = scaled_objects("in-cluster")
    cpu, gpu = sos["worker-cpu"], sos["worker-gpu"]
    idle = dict.fromkeys((t["name"] for t in cpu["spec"]["triggers"]), 0)
    assert replicas(cpu, idle) == cpu["spec"]["minReplicaCount"] == 1
    # 2 workers hold 8 jobs, none waiting: stay at 2; one more waiting: 3; a burst: the maximum.
    assert replicas(cpu, {**idle, "train_profile_running": 3, "generate_video_running": 5}) == 2
    assert replicas(cpu, {**idle, "train_profile_running": 3, "generate_video_running": 5,
                          "generate_video_waiting": 1}) == 3
    assert replicas(cpu, {**idle, "generate_video_waiting": 500}) == cpu["spec"]["maxReplicaCount"]
    none = dict.fromkeys((t["name"] for t in gpu["spec"]["triggers"]), 0)
    assert replicas(gpu, none) == 1
    assert replicas(gpu, {**none, "gpu0": 3}) == 3  # a backlog on the first card asks for more cards
    # A step left on the last card keeps every card up to it, whatever the total.
    assert replicas(gpu, {**none, "gpu3": 1}) == 4
    assert replicas(gpu, {**none, "gpu0": 1, "gpu2": 1}) == 3


@pytest.fixture
def redis_client(redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_the_redis_counts_keda_reads_behave_as_assumed(redis_client, redis_url, prefix) -> None:
    """The counts behind the triggers, on a real Redis: a worker's full job slots leave the rest of
    the stream as the group's lag (XINFO GROUPS, what lagCount reads), and a Dramatiq message stays
    in its queue's hash (what the GPU triggers read) until it is acknowledged."""
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    keys = RedisKeys(prefix)
    stream = keys.job_stream(JOB_KINDS[0])
    redis_client.xgroup_create(stream, keys.worker_group, id="0", mkstream=True)
    for i in range(5):
        redis_client.xadd(stream, {keys.field: f"job{i}"})
    redis_client.xreadgroup(keys.worker_group, "w1", {stream: ">"}, count=4)  # WORKER_MAX_JOBS free slots
    assert redis_client.xpending(stream, keys.worker_group)["pending"] == 4
    (group,) = redis_client.xinfo_groups(stream)
    assert group["lag"] == 1, group

    broker = RedisBroker(url=redis_url, namespace=keys.dramatiq_namespace)
    try:
        broker.declare_queue("gpu0")
        msgs = placement.dramatiq_queue_key(keys, "gpu0") + ".msgs"
        broker.enqueue(Message(queue_name="gpu0", actor_name="step", args=(), kwargs={}, options={},
                               message_id=str(uuid.uuid4())))
        assert redis_client.type(msgs) == b"hash" and redis_client.hlen(msgs) == 1
        consumer = broker.consume("gpu0", prefetch=1, timeout=1000)
        message = next(m for m in consumer if m is not None)
        assert redis_client.llen(placement.dramatiq_queue_key(keys, "gpu0")) == 0
        assert redis_client.hlen(msgs) == 1, "a running step still counts"
        consumer.ack(message)
        assert redis_client.hlen(msgs) == 0
        consumer.close()
    finally:
        broker.close()


# --- the rendered overlays (kubectl) -----------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_kustomize_renders_valid_objects(overlay: str, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the overlays were checked file by file above, not rendered")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    for example in tree.rglob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    out = subprocess.run([kubectl, "kustomize", str(tree / "overlays" / overlay)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    for doc in docs:
        try:
            validate(doc)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"rendered {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "likeness", doc["metadata"]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    # Every reference to a generated object was rewritten to its hashed name.
    for d in docs:
        if d["kind"] in WORKLOADS:
            for c in containers(d):
                for src in c.get("envFrom") or []:
                    kind, ref = ("ConfigMap", src["configMapRef"]) if "configMapRef" in src else ("Secret", src["secretRef"])
                    assert (kind, ref["name"]) in names, ref
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    if "secretKeyRef" in vf:
                        assert ("Secret", vf["secretKeyRef"]["name"]) in names, e
                    if "configMapKeyRef" in vf:
                        assert ("ConfigMap", vf["configMapKeyRef"]["name"]) in names, e
        if d["kind"] == "TriggerAuthentication":
            for r in d["spec"]["secretTargetRef"]:
                assert ("Secret", r["name"]) in names, r
