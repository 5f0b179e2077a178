"""viewpoint_core: one view step on M's state with a run's actor and Q; every goal is a reachable view."""
import numpy as np
import pytest
import torch

from samrl_common import msgs
from samrl_common.conversions import pose_msg
from samrl_description.default_views import default_camera_pose
from samrl_description.geometry import Pose, look_at
from samrl_description.tasks import NOMINAL_TCP, nominal_scene, tool_pose
from samrl_policy.checkpoints import save_network
from samrl_policy.learn_at_sim import load_policies
from samrl_policy.model_env import PROPRIO_SIZE
from samrl_policy.networks import Actor, NetworkConfig, QNetwork
from samrl_policy.policy_core import InputError
from samrl_viewpoint.viewpoint_core import ViewpointCore, view_of_camera
from samrl_viewpoint.views import params_of_look_at

TASK = 'peg_insertion'
TINY = NetworkConfig(proprio_dim=PROPRIO_SIZE, encoder='pooled', channels=(4, 8), feature_dim=16, hidden=(32,))
IMAGE_SIZE = (64, 64)


@pytest.fixture(scope='module')
def policies(tmp_path_factory):
    """load_policies of a run directory with untrained tiny networks."""
    run_dir = tmp_path_factory.mktemp('run')
    torch.manual_seed(0)
    for name, network in (('actor.pt', Actor(TINY)), ('fixed_actor.pt', Actor(TINY)), ('q.pt', QNetwork(TINY))):
        save_network(run_dir / name, network, {'command': 'test'})
    return load_policies(run_dir)


def model_state(task=TASK):
    scene = nominal_scene(task)
    return msgs.samrl_interfaces.msg.ModelState(task=task, object_names=list(scene),
                                                object_poses=[pose_msg(p.pose) for p in scene.values()])


def test_the_view_step_on_a_model_state_gives_a_reachable_goal(policies):
    core = ViewpointCore(TASK, policies.actor, policies.q_network, IMAGE_SIZE, camera=default_camera_pose(TASK))
    result = core.step(model_state(), tool_pose(*NOMINAL_TCP[TASK]), 0.1)
    assert core.views.is_reachable(result.proposed) and core.views.is_reachable(core.camera.params)
    assert np.isfinite(result.q_before) and np.isfinite(result.q_after)
    assert torch.all(torch.isfinite(result.gradient)) and torch.any(result.gradient != 0)
    goal = core.goal()
    assert np.allclose(goal.as_matrix(), core.camera.pose().numpy(), atol=1e-9)
    assert {'gradient', 'evaluate', 'total'} <= set(result.timings_s)


def test_a_malformed_state_is_refused_and_leaves_the_view(policies):
    core = ViewpointCore(TASK, policies.actor, policies.q_network, IMAGE_SIZE)
    before = core.camera.params.clone()
    with pytest.raises(InputError, match='expected'):
        core.step(model_state('needle_threading'), tool_pose(*NOMINAL_TCP[TASK]), 0.0)
    with pytest.raises(InputError, match='tool pose'):
        core.step(model_state(), Pose(np.full(3, np.nan), np.array([0.0, 0.0, 0.0, 1.0])), 0.0)
    assert torch.equal(core.camera.params, before)


def test_a_camera_pose_becomes_its_view_or_the_nearest_reachable_one(view_spaces):
    views = view_spaces[TASK]
    default = views.default()
    assert torch.allclose(view_of_camera(views, default_camera_pose(TASK)), default, atol=1e-6)
    outside = look_at((1.5, 0.0, 1.5), (0.5, 0.0, 0.0))     # beyond the camera box: projected back in
    assert views.is_reachable(view_of_camera(views, outside))
    assert not views.is_reachable(params_of_look_at((1.5, 0.0, 1.5), (0.5, 0.0, 0.0)))
