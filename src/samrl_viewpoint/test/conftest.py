"""Shared fixtures: each task's view space (the camera arm's chain is parsed once per session)."""
import pytest
import torch

from samrl_description.tasks import TASK_NAMES
from samrl_viewpoint.views import ViewSpace

torch.set_num_threads(1)     # the test machines have 2 cores shared with other jobs


@pytest.fixture(scope='session')
def view_spaces() -> dict[str, ViewSpace]:
    return {task: ViewSpace(task) for task in TASK_NAMES}
