"""model_node as a process: a Real2Sim update over the service, and bad requests refused with reasons."""

import math

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.images import array_to_image
from samrl_common.runtime import Node
from samrl_common.testing import NodeProcess, isolated_environment
from samrl_model.sim_adapter import capture
from samrl_sim.world import World

pytestmark = pytest.mark.processes
START_TIMEOUT_S = 60.0
UPDATE_TIMEOUT_S = 120.0


@pytest.fixture(scope='module')
def observation():
    world = World('peg_insertion')
    world.reset(0)
    try:
        return capture(world, 'hole_block', 64, 48)
    finally:
        world.close()


def _request(observation, **changes):
    k = observation.intrinsics
    request = msgs.samrl_interfaces.srv.UpdateModel.Request(target='hole_block', max_iterations=3)
    request.rgb = array_to_image((observation.rgb * 255).astype(np.uint8), 'rgb8')
    request.depth = array_to_image(observation.depth_m.astype(np.float32), '32FC1')
    request.mask = array_to_image(observation.mask.astype(np.uint8) * 255, 'mono8')
    request.camera_info = msgs.sensor_msgs.msg.CameraInfo(
        width=k.width, height=k.height, k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0])
    p, q = observation.camera_pose.position, observation.camera_pose.quaternion
    pose = request.camera_pose
    pose.position.x, pose.position.y, pose.position.z = map(float, p)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = map(float, q)
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def test_update_service_fits_and_refuses_bad_requests(observation, tmp_path):
    env = isolated_environment()
    node_process = NodeProcess('samrl_model.model_node', ['--ros-args', '-p', 'task:=peg_insertion'], env, tmp_path)
    node = Node('model_client', argv=[])
    try:
        client = node.create_client('samrl_interfaces/srv/UpdateModel', '/samrl/model/update')
        assert client.wait_for_service(START_TIMEOUT_S), node_process.output()
        empty_mask = array_to_image(np.zeros((48, 64), np.uint8), 'mono8')
        nan_depth = array_to_image(np.full((48, 64), np.nan, np.float32), '32FC1')
        small_rgb = array_to_image(np.zeros((10, 10, 3), np.uint8), 'rgb8')
        bad = [(dict(mask=empty_mask), 'the mask has 0 pixels'), (dict(depth=nan_depth), 'NaN'),
               (dict(rgb=small_rgb), 'rgb is 10x10 but camera_info says 64x48'),
               (dict(target='teapot'), "unknown target 'teapot'")]
        for changes, reason in bad:
            answer = client.call(_request(observation, **changes), timeout_s=UPDATE_TIMEOUT_S)
            assert not answer.success and reason in answer.message, answer.message
        request = _request(observation)
        request.camera_pose.orientation.w = 2.0
        answer = client.call(request, timeout_s=UPDATE_TIMEOUT_S)
        assert not answer.success and 'not 1' in answer.message
        answer = client.call(_request(observation), timeout_s=UPDATE_TIMEOUT_S)  # still serving
        assert answer.success, answer.message
        assert answer.iterations == 3 and math.isfinite(answer.final_loss)
        assert 'hole_block' in answer.state.object_names
        assert node_process.alive()
    finally:
        node.destroy()
        node_process.stop()


def _render_request(observation, width: int, height: int, fx: float = 100.0, fy: float = 100.0):
    request = msgs.samrl_interfaces.srv.RenderModel.Request(target='hole_block')
    request.camera_info = msgs.sensor_msgs.msg.CameraInfo(
        width=width, height=height, k=[fx, 0.0, width / 2, 0.0, fy, height / 2, 0.0, 0.0, 1.0])
    request.camera_pose = _request(observation).camera_pose
    return request


def test_nonsense_is_refused_and_a_burst_is_answered(observation, tmp_path):
    """Non-finite intrinsics and quaternions, an oversized image, a corrupted iteration count:
    each refused with its reason; a burst of updates is answered in full (done or "busy")."""
    env = isolated_environment()
    node_process = NodeProcess('samrl_model.model_node', ['--ros-args', '-p', 'task:=peg_insertion'], env, tmp_path)
    node = Node('model_client', argv=[])
    try:
        update = node.create_client('samrl_interfaces/srv/UpdateModel', '/samrl/model/update')
        render = node.create_client('samrl_interfaces/srv/RenderModel', '/samrl/model/render')
        assert update.wait_for_service(START_TIMEOUT_S) and render.wait_for_service(START_TIMEOUT_S)
        refused = {'finite': [_render_request(observation, 64, 48, fx=math.nan),
                              _render_request(observation, 64, 48, fy=math.inf)],
                   'larger than': [_render_request(observation, 2560, 1920, fx=2400.0, fy=2400.0)],
                   'field of view': [_render_request(observation, 64, 48, fy=2.2250738585072014e-308)]}
        nan_pose = _render_request(observation, 64, 48)
        nan_pose.camera_pose.orientation.x = math.nan
        refused['not finite'] = [nan_pose]
        for reason, requests in refused.items():
            for request in requests:
                answer = render.call(request, timeout_s=UPDATE_TIMEOUT_S)
                assert not answer.success and reason in answer.message, answer.message
        far = _request(observation)
        far.camera_pose.position.x = 1e308
        answer = update.call(far, timeout_s=UPDATE_TIMEOUT_S)
        assert not answer.success and 'from the world origin' in answer.message, answer.message
        answer = update.call(_request(observation, max_iterations=2 ** 31), timeout_s=UPDATE_TIMEOUT_S)
        assert not answer.success and 'max_iterations' in answer.message
        futures = [update.call_async(_request(observation, max_iterations=2)) for _ in range(6)]
        answers = [future.result(timeout=UPDATE_TIMEOUT_S) for future in futures]
        assert any(a.success for a in answers) and any(a.message.startswith('busy') for a in answers)
        assert render.call(_render_request(observation, 64, 48), timeout_s=UPDATE_TIMEOUT_S).success
        assert node_process.alive()
    finally:
        node.destroy()
        node_process.stop()
