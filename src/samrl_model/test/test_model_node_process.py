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


TRACK_SIZE = (160, 120)     # the hole block's tracking window (128x96 px) must fit the frame


@pytest.fixture(scope='module')
def track_frames():
    """Two frames of the peg-insertion view with the robot's state at each, the tool moved between them."""
    from samrl_model.sim_adapter import snapshot
    from samrl_sim.commands import EeDeltaCommand
    world = World('peg_insertion')
    world.reset(0)
    try:
        frames = [(snapshot(world, 'hole_block', *TRACK_SIZE), world.tcp_pose(), world.panda.gripper_width())]
        world.step(EeDeltaCommand((0.01, 0.0, -0.005), (0.0, 0.0, 0.0), world.task.gripper_width_m))
        frames.append((snapshot(world, 'hole_block', *TRACK_SIZE), world.tcp_pose(), world.panda.gripper_width()))
        return frames
    finally:
        world.close()


def _track_request(frame, episode_start: bool, **changes):
    observation, tcp, opening = frame
    update = _request(observation)
    request = msgs.samrl_interfaces.srv.TrackModel.Request(
        rgb=update.rgb, depth=update.depth, mask=update.mask, camera_info=update.camera_info,
        camera_pose=update.camera_pose, target='hole_block', finger_opening_m=opening, episode_start=episode_start)
    pose = request.tcp_pose
    pose.position.x, pose.position.y, pose.position.z = map(float, tcp.position)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = map(float, tcp.quaternion)
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def test_track_service_keeps_the_state_between_calls_and_refuses_bad_requests(track_frames, tmp_path):
    env = isolated_environment()
    node_process = NodeProcess('samrl_model.model_node',
                               ['--ros-args', '-p', 'task:=peg_insertion', '-p', 'track:=false'], env, tmp_path)
    node = Node('track_client', argv=[])
    try:
        client = node.create_client('samrl_interfaces/srv/TrackModel', '/samrl/model/track')
        assert client.wait_for_service(START_TIMEOUT_S), node_process.output()
        zero_quaternion = _track_request(track_frames[0], True)
        zero_quaternion.tcp_pose.orientation = msgs.get_message('geometry_msgs/msg/Quaternion')()
        small = _track_request((_small_frame(track_frames[0][0]), *track_frames[0][1:]), True)
        bad = [(zero_quaternion, 'tcp_pose quaternion has norm 0'),
               (_track_request(track_frames[0], True, finger_opening_m=0.1), 'finger_opening_m'),
               (_track_request(track_frames[0], True, target='peg'), "follows 'hole_block'"),
               (_track_request(track_frames[0], True, mask=array_to_image(np.zeros((120, 160), np.uint8), 'mono8')),
                'the mask has 0 pixels')]
        for request, reason in bad:
            answer = client.call(request, timeout_s=UPDATE_TIMEOUT_S)
            assert not answer.success and reason in answer.message, answer.message
        answer = client.call(small, timeout_s=UPDATE_TIMEOUT_S)      # smaller than the window: the window shrinks
        assert answer.success, answer.message
        first = client.call(_track_request(track_frames[0], True, target=''), timeout_s=UPDATE_TIMEOUT_S)
        assert first.success and first.action == 'coarse' and first.iterations > 0, first.message
        assert first.wall_time_s > 0 and math.isfinite(first.final_loss)
        second = client.call(_track_request(track_frames[1], False), timeout_s=UPDATE_TIMEOUT_S)
        assert second.success and second.action in ('kept', 'refit'), second.message
        index = second.state.object_names.index('peg')      # carried with the tool between the calls
        moved = second.state.object_poses[index].position.x - first.state.object_poses[index].position.x
        assert abs(moved - 0.01) < 0.002
        futures = [client.call_async(_track_request(track_frames[1], False)) for _ in range(6)]
        answers = [future.result(timeout=UPDATE_TIMEOUT_S) for future in futures]
        assert any(a.success for a in answers) and any(a.message.startswith('busy') for a in answers)
        assert node_process.alive()
        node_process.stop()                                 # SIGINT, as `samrl launch` stops it
        assert 'stage times per tracking update over' in node_process.output(), node_process.output()[-3000:]
    finally:
        node.destroy()
        node_process.stop()


def _small_frame(observation):
    """The frame cut to 64x48 px (with its intrinsics): smaller than the tracking window."""
    from dataclasses import replace

    from samrl_description.camera import CameraIntrinsics
    k = observation.intrinsics
    return replace(observation, rgb=observation.rgb[:48, :64], depth_m=observation.depth_m[:48, :64],
                   mask=np.ones((48, 64), bool),
                   intrinsics=CameraIntrinsics(k.fx, k.fy, k.cx - 0, k.cy - 0, 64, 48))
