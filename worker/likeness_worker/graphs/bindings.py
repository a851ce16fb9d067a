"""The binding table: which upstream step gives each step of a DAG each of its declared inputs.

Engines declare by name what their task kind takes and makes (``engines/ports.py``) and never
name a step; the DAG binds the names. For each step and each input its task kind takes, the
*candidates* are the steps before it (its ancestors in the DAG) whose task kind makes that port,
latest first. At run time the first candidate that made it, and was not skipped, provides it:
"the video so far" is whichever of motion, talking_head, lipsync, upscale… ran last and was not
skipped (a skipped upscale passes on the video it was given).

The table is derived from the DAG, so adding a step or a pipeline means editing ``dag.py`` (and
the step tables of the contracts), not the engines. Where the rule cannot decide (two candidates
on parallel branches) or should not (a pipeline wants an earlier video), ``EXPLICIT`` names the
candidates of that input by hand. A required input that no step before it makes is refused when
the table is built, i.e. when the worker starts, with a message that names the pipeline, the step
and the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..contracts import STEP_TASK
from ..engines.ports import PORTS, TASK_PORTS, Input, MissingInput
from .dag import DAGS

Binding = dict[str, tuple[str, ...]]  # input name -> candidate steps, latest first
Dag = Mapping[str, tuple[str, ...]]  # step -> the steps it waits for

# dag name -> step -> input -> candidate steps (latest first), where the derived rule is not wanted.
EXPLICIT: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {}


class PipelineError(ValueError):
    """A DAG whose steps cannot all be given their required inputs."""


def ancestors(dag: Dag) -> dict[str, frozenset[str]]:
    """step -> every step it waits for, directly or not."""
    out: dict[str, frozenset[str]] = {}

    def visit(step: str, path: tuple[str, ...]) -> frozenset[str]:
        if step in out:
            return out[step]
        if step in path:
            raise PipelineError(f"the DAG has a cycle: {' -> '.join(path + (step,))}")
        if step not in dag:
            raise PipelineError(f"step {path[-1]} waits for {step}, which is not in the DAG")
        found: set[str] = set()
        for dep in dag[step]:
            found |= {dep} | visit(dep, path + (step,))
        out[step] = frozenset(found)
        return out[step]

    for step in dag:
        visit(step, ())
    return out


def bind_dag(
    dag: Dag,
    *,
    name: str = "?",
    step_task: Mapping[str, str] | None = None,
    explicit: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
) -> dict[str, Binding]:
    """The binding table of one DAG: step -> input -> candidate steps, latest first
    (``step_task``: step -> task kind, the contracts' STEP_TASK unless given)."""
    before = ancestors(dag)
    step_task = step_task if step_task is not None else {str(s): str(k) for s, k in STEP_TASK.items()}

    def makes(step: str, port: str) -> bool:
        return port in TASK_PORTS[step_task[step]].outputs

    table: dict[str, Binding] = {}
    for step in dag:
        kind = step_task[step]
        if kind not in TASK_PORTS:
            raise PipelineError(f"pipeline {name}: step {step} has task kind {kind!r}, which declares no ports")
        ports = TASK_PORTS[kind]
        binding: Binding = {}
        for port in ports.takes:
            given = (explicit or {}).get(step, {}).get(port)
            if given is not None:
                wrong = [s for s in given if s not in before[step] or not makes(s, port)]
                if wrong:
                    raise PipelineError(
                        f"pipeline {name}: step {step}'s input {port!r} is bound to {', '.join(wrong)}, "
                        f"which {'is' if len(wrong) == 1 else 'are'} not a step before it that makes {port!r}"
                    )
                binding[port] = tuple(given)
                continue
            # Latest first: a step waits for every candidate that comes after it in this order.
            makers = sorted((s for s in before[step] if makes(s, port)), key=lambda s: (-len(before[s]), s))
            for later, earlier in zip(makers, makers[1:], strict=False):
                if earlier not in before[later]:
                    raise PipelineError(
                        f"pipeline {name}: step {step}'s input {port!r} could come from {later} or "
                        f"{earlier} (parallel branches); name its candidates in graphs/bindings.py EXPLICIT"
                    )
            if makers:
                binding[port] = tuple(makers)
            elif port in ports.inputs:
                raise PipelineError(
                    f"pipeline {name}: step {step} ({kind}) needs input {port!r} ({PORTS[port].doc}), "
                    "and no step before it makes one"
                )
        table[step] = binding
    return table


# dag name -> step -> input -> candidate steps, latest first. Built at import: a DAG that cannot
# feed one of its steps stops the worker at start-up.
BINDINGS: dict[str, dict[str, Binding]] = {
    name: bind_dag(dag, name=name, explicit=EXPLICIT.get(name)) for name, dag in DAGS.items()
}


def bind_inputs(
    step: str,
    task_kind: str,
    binding: Binding,
    steps: Mapping[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The inputs of ``step`` from the records of the steps done so far (``_done.json`` payloads,
    by step): input name -> ``Input.to_record()``. MissingInput, naming the input and the step,
    when a required one was not made by any of its candidates."""
    inputs: dict[str, dict[str, Any]] = {}
    why: dict[str, list[str]] = {}
    for port_name, candidates in binding.items():
        port = PORTS[port_name]
        for maker in candidates:
            record = steps.get(maker)
            if record is None:
                why.setdefault(port_name, []).append(f"{maker} did not run")
                continue
            found = port.find(record)
            if found is None:
                skipped = (record.get("outputs") or {}).get("skipped")
                why.setdefault(port_name, []).append(f"{maker} {'was skipped' if skipped else 'made none'}")
                continue
            key, ref = found
            inputs[port_name] = Input(port_name, key, ref, record.get("outputs") or {}, maker).to_record()
            break
    required = TASK_PORTS[task_kind].inputs
    missing = [p for p in required if p not in inputs]
    if missing:
        p = missing[0]
        reason = "; ".join(why.get(p, [])) or "no step before it in this pipeline makes one"
        raise MissingInput(f"step {step} ({task_kind}) has no input {p!r} ({PORTS[p].doc}): {reason}")
    return inputs
