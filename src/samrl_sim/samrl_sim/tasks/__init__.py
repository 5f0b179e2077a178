"""The three manipulation tasks of the paper (Sec. IV-A), one module each."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:       # the launch graphs read TASK_OBJECTS: importing it must not load PyBullet
    from samrl_sim.tasks.base import Task

from samrl_description.tasks import TASK_NAMES, TASK_OBJECTS, check_task  # noqa: F401 (re-exported)


def task_class(name: str) -> type[Task]:
    """Task class by name (imported on demand)."""
    if name == 'needle_threading':
        from samrl_sim.tasks.needle_threading import NeedleThreadingTask
        return NeedleThreadingTask
    if name == 'peg_insertion':
        from samrl_sim.tasks.peg_insertion import PegInsertionTask
        return PegInsertionTask
    check_task(name)
    from samrl_sim.tasks.spatula_flipping import SpatulaFlippingTask
    return SpatulaFlippingTask


def make_task(name: str) -> Task:
    return task_class(name)()
