"""The simulated 'real' view: reachable by the camera arm, the target visible, depth metric."""

import numpy as np
import pytest

from samrl_description.tasks import TARGETS
from samrl_model.sim_adapter import capture
from samrl_sim.world import World


@pytest.mark.parametrize('task', sorted(TARGETS))
def test_close_view_sees_the_target(task):
    world = World(task)
    try:
        for seed in (0, 1):
            world.reset(seed)
            observation = capture(world, TARGETS[task], 160, 120)
            assert observation.mask.sum() > 50
            depth = observation.depth_m[observation.mask]
            assert np.all(depth > 0.1) and np.all(depth < 0.6)
            assert observation.rgb.dtype == np.float32 and observation.rgb.max() <= 1.0
    finally:
        world.close()
