"""Compile one LangGraph StateGraph per DAG, all sharing the Postgres checkpointer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph

from .bindings import BINDINGS, Binding, bind_dag
from .dag import DAGS, dag_name
from .nodes import StepNode
from .state import JobState

if TYPE_CHECKING:
    from ..runtime import Runtime

# Checkpoints are written in the background while the next step runs (LangGraph's "async"; the
# run waits for them before it returns). "sync" made every step wait for the previous one's
# commit, and the first step for three writes (input, start, first superstep): 5-7 ms of the time
# from a job's dispatch to its first step, and more per step after it. Nothing depends on them
# being there sooner: every finished step has its marker, so a worker that takes the job over
# from an older checkpoint reuses the steps after it (reported as reused) instead of running them.
DURABILITY = "async"


def build_graph(
    rt: Runtime, dag: dict[str, tuple[str, ...]], checkpointer: Any, bindings: dict[str, Binding] | None = None
):
    """One node per step, fed its declared inputs by ``bindings`` (derived from ``dag`` if not given)."""
    bindings = bindings if bindings is not None else bind_dag(dag)
    return compile_dag(dag, lambda step: StepNode(rt, step, bindings[step]), checkpointer)


def compile_dag(dag: dict[str, tuple[str, ...]], node: Callable[[str], Any], checkpointer: Any):
    """The StateGraph of ``dag``: ``node(step)`` for each step, an edge for each dependency."""
    g = StateGraph(JobState)
    for step in dag:
        g.add_node(step, node(step))
    waited_on = {d for deps in dag.values() for d in deps}
    for step, deps in dag.items():
        if not deps:
            g.add_edge(START, step)
        elif len(deps) == 1:
            g.add_edge(deps[0], step)
        else:
            g.add_edge(list(deps), step)  # fan-in: runs once all of deps are done
        if step not in waited_on:
            g.add_edge(step, END)
    return g.compile(checkpointer=checkpointer)


class JobGraphs:
    """The compiled graphs and how to run (or resume) one attempt of a job."""

    def __init__(self, rt: Runtime, checkpointer: Any) -> None:
        self.checkpointer = checkpointer
        self.graphs = {name: build_graph(rt, dag, checkpointer, BINDINGS[name]) for name, dag in DAGS.items()}

    @staticmethod
    def thread_id(command: dict) -> str:
        return f"{command['jobId']}:{command['attempt']}"

    def forget(self, command: dict) -> None:
        """Retention: once an attempt's terminal marker exists its checkpoints are never read
        again (a redelivery only re-acks), so they are deleted instead of growing forever."""
        self.checkpointer.delete_thread(self.thread_id(command))

    def run(self, command: dict) -> dict[str, Any]:
        graph = self.graphs[dag_name(command)]
        config = {"configurable": {"thread_id": self.thread_id(command)}}
        snapshot = graph.get_state(config)
        if snapshot.next:
            # A worker died in the middle of this attempt: resume after the last checkpoint.
            # Steps whose output already exists are reused by their nodes (marker check).
            return graph.invoke(None, config, durability=DURABILITY)
        if snapshot.values and _ended(snapshot.values):
            # This attempt's graph already ended (the worker died before job_finished).
            return snapshot.values
        # New, or a history that ends nowhere (a worker taken over mid-write): from the start;
        # every step already done is reused from its marker.
        return graph.invoke({"command": command, "steps": {}, "error": None, "cancelled": False}, config, durability=DURABILITY)


def _ended(values: dict[str, Any]) -> bool:
    return bool(values.get("error") or values.get("cancelled") or "publish" in values.get("steps", {}))
