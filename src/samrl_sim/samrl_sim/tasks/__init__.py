"""The three manipulation tasks of the paper (Sec. IV-A), one module each."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:       # the launch graphs read TASK_OBJECTS: importing it must not load PyBullet
    from samrl_sim.tasks.base import Task

TASK_NAMES = ('needle_threading', 'peg_insertion', 'spatula_flipping')
# The object classes in each task's scene (one instance each), in OBJECT_CLASSES order: perception
# only looks for these, without building a world to ask the task's object_bodies().
TASK_OBJECTS: dict[str, tuple[str, ...]] = {'needle_threading': ('thread', 'needle'),
                                            'peg_insertion': ('peg', 'hole_block'),
                                            'spatula_flipping': ('spatula', 'pancake')}


def task_class(name: str) -> type[Task]:
    """Task class by name (imported on demand)."""
    if name == 'needle_threading':
        from samrl_sim.tasks.needle_threading import NeedleThreadingTask
        return NeedleThreadingTask
    if name == 'peg_insertion':
        from samrl_sim.tasks.peg_insertion import PegInsertionTask
        return PegInsertionTask
    if name == 'spatula_flipping':
        from samrl_sim.tasks.spatula_flipping import SpatulaFlippingTask
        return SpatulaFlippingTask
    raise ValueError(f'unknown task {name!r}; expected one of {TASK_NAMES}')


def make_task(name: str) -> Task:
    return task_class(name)()
