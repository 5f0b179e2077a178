"""The node graphs samrl can launch, one module each."""

from __future__ import annotations

from samrl_bringup.graph import Graph
from samrl_bringup.graphs import demo, tasks
from samrl_description.tasks import TASK_NAMES

GRAPHS: dict[str, Graph] = {graph.name: graph for graph in (demo.GRAPH, *map(tasks.task_graph, TASK_NAMES))}


def get_graph(name: str) -> Graph:
    if name not in GRAPHS:
        raise KeyError(f'unknown graph {name!r}; available: {", ".join(sorted(GRAPHS))}')
    return GRAPHS[name]
