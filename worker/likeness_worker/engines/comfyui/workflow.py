"""ComfyUI workflows of the image engine: an API-format graph plus its named input bindings.

``<name>.json`` is the graph exactly as ComfyUI's "Export (API)" writes it; ``<name>.likeness.json``
says where each value Likeness sets goes (``deploy/comfyui/workflows/README.md``). Workflows are
looked up in COMFYUI_WORKFLOWS_DIR first (a user's), then in the built-in folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import REPO_ROOT
from .client import combo_options

SIDECAR = ".likeness.json"
# What a workflow of each kind must bind (the sidecar's "kind"; txt2img when it says none).
REQUIRED_BINDINGS = {
    "txt2img": ("prompt", "width", "height"),  # the image engine
    "img2vid": ("image", "width", "height", "frames"),  # the motion engine: the scene comes in as `image`
}
KNOWN_BINDINGS = ("prompt", "negative", "seed", "width", "height", "checkpoint", "lora_name", "lora_strength",
                  "image", "frames", "fps", "motion_bucket", "augmentation")


def builtin_dir() -> Path:
    """deploy/comfyui/workflows of the checkout, or where the worker image copied it."""
    return Path(os.environ.get("LIKENESS_COMFYUI_WORKFLOWS_DIR") or REPO_ROOT / "deploy" / "comfyui" / "workflows")


class WorkflowError(ValueError):
    """A workflow that cannot be used as it is (missing file, bad bindings, unknown node...)."""


@dataclass(frozen=True)
class Target:
    node: str
    input: str


@dataclass
class Workflow:
    name: str
    path: Path
    graph: dict[str, Any]
    kind: str
    bindings: dict[str, list[Target]]
    output: str
    description: str = ""
    pixels: int = 512 * 512
    multiple: int = 8
    defaults: dict[str, Any] = field(default_factory=dict)
    licence: str | None = None
    family: str | None = None  # the base model family (sd15, sdxl): a LoRA must be of the same

    def value(self, name: str) -> Any:
        """The graph's own value of a binding (its first target)."""
        targets = self.bindings.get(name)
        if not targets:
            return None
        return self.graph[targets[0].node]["inputs"].get(targets[0].input)

    def class_types(self, graph: dict[str, Any] | None = None) -> set[str]:
        return {str(n["class_type"]) for n in (graph or self.graph).values()}

    def generation_size(self, width: int, height: int) -> tuple[int, int]:
        """The output's aspect ratio at about ``pixels`` pixels, sides multiples of ``multiple``."""
        aspect = width / height
        m = self.multiple
        w = max(m, round(math.sqrt(self.pixels * aspect) / m) * m)
        h = max(m, round(math.sqrt(self.pixels / aspect) / m) * m)
        return w, h

    def fill(self, values: dict[str, Any]) -> dict[str, Any]:
        """A copy of the graph with ``values`` (binding name -> value) set; a ``lora_name`` of
        None bypasses the LoRA loader: whatever read its outputs reads its inputs instead."""
        graph = copy.deepcopy(self.graph)
        for name, value in values.items():
            if name == "lora_name" and value is None:
                continue
            for t in self.bindings.get(name, []):
                graph[t.node]["inputs"][t.input] = value
        if "lora_name" in values and values["lora_name"] is None:
            for t in self.bindings.get("lora_name", []):
                graph = _bypass(graph, t.node)
        return graph


def _bypass(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    """Remove a pass-through node (LoraLoader: MODEL, CLIP in → MODEL, CLIP out, in that order)."""
    node = graph.get(node_id)
    if node is None:
        return graph
    links = [v for v in node["inputs"].values() if isinstance(v, list) and len(v) == 2]
    del graph[node_id]
    for other in graph.values():
        for key, v in list(other["inputs"].items()):
            if isinstance(v, list) and len(v) == 2 and str(v[0]) == node_id:
                if v[1] >= len(links):
                    raise WorkflowError(f"cannot bypass node {node_id}: its output {v[1]} has no matching input")
                other["inputs"][key] = list(links[v[1]])
    return graph


def _targets(name: str, raw: Any, graph: dict[str, Any], where: Path) -> list[Target]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if not isinstance(item, dict) or "node" not in item or "input" not in item:
            raise WorkflowError(f"{where.name}: binding {name!r} must be {{node, input}} or a list of them")
        node, inp = str(item["node"]), str(item["input"])
        if node not in graph:
            raise WorkflowError(f"{where.name}: binding {name!r} names node {node}, which the workflow does not have")
        if inp not in graph[node].get("inputs", {}):
            raise WorkflowError(f"{where.name}: binding {name!r}: node {node} ({graph[node].get('class_type')}) "
                                f"has no input {inp!r}")
        out.append(Target(node, inp))
    return out


def load_workflow(name: str, user_dir: Path | None = None) -> Workflow:
    """The workflow ``name`` from ``user_dir`` (COMFYUI_WORKFLOWS_DIR), else the built-in folder."""
    folders = [d for d in (user_dir, builtin_dir()) if d is not None]
    path = next((d / f"{name}.json" for d in folders if (d / f"{name}.json").is_file()), None)
    if path is None:
        known = sorted({p.name.removesuffix(".json") for d in folders if d.is_dir() for p in d.glob("*.json")
                        if not p.name.endswith(SIDECAR)})
        raise WorkflowError(f"no ComfyUI workflow {name!r} in {', '.join(str(d) for d in folders)} "
                            f"(there: {', '.join(known) or 'none'})")
    sidecar = path.with_name(f"{name}{SIDECAR}")
    if not sidecar.is_file():
        raise WorkflowError(f"workflow {path} has no bindings file {sidecar.name} (see deploy/comfyui/workflows/README.md)")
    try:
        graph = json.loads(path.read_text())
        meta = json.loads(sidecar.read_text())
    except ValueError as exc:
        raise WorkflowError(f"workflow {name}: not JSON: {exc}") from None
    if not isinstance(graph, dict) or not graph or not all(
            isinstance(n, dict) and "class_type" in n and isinstance(n.get("inputs"), dict) for n in graph.values()):
        raise WorkflowError(f"{path.name} is not an API-format workflow (node id -> {{class_type, inputs}}); "
                            "export it with ComfyUI's Export (API)")
    kind = str(meta.get("kind") or "txt2img")
    if kind not in REQUIRED_BINDINGS:
        raise WorkflowError(f"{sidecar.name}: unknown kind {kind!r} (known: {', '.join(REQUIRED_BINDINGS)})")
    raw = meta.get("inputs") or {}
    unknown = sorted(set(raw) - set(KNOWN_BINDINGS))
    if unknown:
        raise WorkflowError(f"{sidecar.name}: unknown binding(s) {', '.join(unknown)} (known: {', '.join(KNOWN_BINDINGS)})")
    missing = [b for b in REQUIRED_BINDINGS[kind] if b not in raw]
    if missing:
        raise WorkflowError(f"{sidecar.name}: a {kind} workflow needs the binding(s) {', '.join(missing)}")
    bindings = {k: _targets(k, v, graph, sidecar) for k, v in raw.items()}
    output = str(meta.get("output", ""))
    if output not in graph:
        raise WorkflowError(f"{sidecar.name}: output {output!r} is not a node of the workflow")
    size = meta.get("size") or {}
    return Workflow(
        name=name, path=path, graph=graph, kind=kind, bindings=bindings, output=output,
        description=str(meta.get("description", "")),
        pixels=int(size.get("pixels", 512 * 512)), multiple=int(size.get("multiple", 8)),
        defaults=dict(meta.get("defaults") or {}), licence=meta.get("licence"), family=meta.get("family"),
    )


def check_against(graph: dict[str, Any], infos: dict[str, Any],
                  uploaded: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """What keeps ComfyUI from running ``graph``, judged from its /object_info (class -> info):
    node classes it does not have, combo values (checkpoint, LoRA, sampler...) not in its lists,
    required inputs left out. Empty: it should validate. ``uploaded``: (node, input) pairs whose
    file is uploaded just before queueing (a LoadImage's image): not in the list yet."""
    problems = []
    for node_id, node in sorted(graph.items()):
        cls = node["class_type"]
        info = infos.get(cls)
        if not info:
            problems.append(f"node {node_id}: ComfyUI has no node class {cls} (a custom node not installed?)")
            continue
        spec = info.get("input") or {}
        required = spec.get("required") or {}
        optional = spec.get("optional") or {}
        for inp in required:
            if inp not in node["inputs"]:
                problems.append(f"node {node_id} ({cls}): required input {inp!r} is missing")
        for inp, value in node["inputs"].items():
            if isinstance(value, list):
                continue  # a link
            options = combo_options(required.get(inp) or optional.get(inp))
            if options is not None and str(value) not in options and (node_id, inp) not in uploaded:
                shown = ", ".join(options[:10]) + (f" … ({len(options)} in all)" if len(options) > 10 else "")
                problems.append(f"node {node_id} ({cls}): {inp} {value!r} is not on the server "
                                f"(it has: {shown or 'none'})")
    return problems
