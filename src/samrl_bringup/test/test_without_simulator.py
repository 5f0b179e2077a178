"""On a robot PC there is no PyBullet: the nodes that perceive and model the world run without it.

Child interpreters get samrl_common's no_simulator sitecustomize, which makes pybullet and
samrl_sim unimportable. The test process itself may use the simulator: it records the frames.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image, image_to_array
from samrl_common.runtime import QOS_SENSOR_DATA, stamp_to_s
from samrl_common.testing import NodeProcess, isolated_environment, without_simulator
from samrl_common.tf_ros import StaticTransformBroadcaster, to_msg
from samrl_description.geometry import Pose
from samrl_description.names import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC, OPTICAL_FRAME, WORLD_FRAME

NODE_PACKAGES = ('samrl_description', 'samrl_common', 'samrl_model', 'samrl_perception', 'samrl_policy',
                 'samrl_viewpoint')
# Sim-side modules: benchmarks, data generation and the world adapter. No node imports them.
# samrl_policy.model_env_init draws Learn@Sim's episode starts in M from the PyBullet world's randomisation.
SIM_SIDE = {'samrl_model.sim_adapter', 'samrl_model.render_bench', 'samrl_model.physics.bench',
            'samrl_model.real2sim.bench', 'samrl_perception.segmentation.dataset',
            'samrl_perception.segmentation.bench', 'samrl_policy.model_env_init',
            'samrl_policy.world_eval'}
NODES = ('samrl_model.model_node', 'samrl_perception.capture_node', 'samrl_perception.segmentation_node')
TASK, TARGET, SEED = 'peg_insertion', 'hole_block', 3
SIZE = (320, 240)                       # width, height (px)
FRAMES = 3
START_TIMEOUT_S = 90.0
MASK_TIMEOUT_S = 60.0
UPDATE_TIMEOUT_S = 180.0
FRAME_PERIOD_S = 0.5
MIN_MASK_IOU = 0.7

IMPORT_SCRIPT = '''
import importlib, json, pkgutil, sys
packages, nodes = {packages!r}, {nodes!r}
failed = {{}}
for package in packages:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + '.'):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = f'{{type(exc).__name__}}: {{exc}}'
pybullet_blocked = False
try:
    import pybullet
except ModuleNotFoundError:
    pybullet_blocked = True
print(json.dumps({{'failed': failed, 'pybullet_blocked': pybullet_blocked}}))
'''

LOADED_SCRIPT = '''
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith(('samrl', 'pybullet')))))
'''


def _run(script: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, '-c', script, *args], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_every_node_module_imports_without_the_simulator():
    import json
    import os
    env = without_simulator(dict(os.environ))
    report = json.loads(_run(IMPORT_SCRIPT.format(packages=NODE_PACKAGES, nodes=NODES), env=env))
    assert report['pybullet_blocked'], 'the blocker did not block pybullet: this test would prove nothing'
    unexpected = {name: why for name, why in report['failed'].items() if name not in SIM_SIDE}
    assert not unexpected, unexpected
    # The sim-side list is honest: each of those modules does need the simulator.
    assert set(report['failed']) == SIM_SIDE, sorted(SIM_SIDE - set(report['failed']))
    for node in NODES:
        loaded = json.loads(_run(LOADED_SCRIPT, node, env=env))
        assert not [m for m in loaded if m in SIM_SIDE or m.startswith(('samrl_sim', 'pybullet'))], loaded


def test_description_imports_no_other_samrl_package_and_no_simulator():
    import json
    import os
    script = LOADED_SCRIPT.replace('importlib.import_module(sys.argv[1])',
                                   'import pkgutil, samrl_description\n'
                                   'for i in pkgutil.walk_packages(samrl_description.__path__, "samrl_description."):\n'
                                   '    importlib.import_module(i.name)')
    loaded = json.loads(_run(script, env=dict(os.environ)))
    assert loaded and all(m.startswith('samrl_description') for m in loaded), loaded


# --- the nodes as processes, fed recorded frames ----------------------------------------------------

@pytest.fixture(scope='module')
def recording(tmp_path_factory):
    """FRAMES colour/depth frames of the task's scene from its default camera, saved as a file and
    read back: what a rosbag of the RealSense would give. Also the true target pose and labels."""
    from samrl_sim.world import World
    world = World(TASK)
    try:
        world.reset(SEED)
        image = world.render(*SIZE)
        camera, truth = world.camera_pose(), world.object_poses()[TARGET]
        labels = image.seg == world.segmentation_ids()[TARGET]
    finally:
        world.close()
    path = tmp_path_factory.mktemp('recording') / 'frames.npz'
    np.savez_compressed(path, rgb=image.rgb, depth_m=image.depth_m, target_labels=labels,
                        camera=np.concatenate([camera.position, camera.quaternion]),
                        truth=np.concatenate([truth.position, truth.quaternion]))
    return dict(np.load(path))


def _play(node, recording, publishers) -> None:
    """Publish the recorded frame as the RealSense driver would, at a fresh stamp."""
    from samrl_description.camera import CameraIntrinsics
    from samrl_perception.capture_node import stamp_msg
    from samrl_sim.conversions import image_msgs
    stamp = stamp_msg(time.time_ns())
    color, depth = image_msgs(recording['rgb'], recording['depth_m'], stamp, OPTICAL_FRAME)
    publishers['info'].publish(camera_info_msg(CameraIntrinsics.d435(*SIZE), stamp, OPTICAL_FRAME))
    publishers['color'].publish(color)
    publishers['depth'].publish(depth)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.processes
def test_perception_and_model_nodes_run_without_the_simulator(recording, tmp_path):
    from samrl_common.runtime import Node
    env = without_simulator(isolated_environment())
    processes = [NodeProcess('samrl_perception.capture_node', ['--ros-args'], env, tmp_path),
                 NodeProcess('samrl_perception.segmentation_node',
                             ['--ros-args', '-p', f'target_object:={TARGET}', '-p', 'scene_objects:=peg,hole_block'],
                             env, tmp_path),
                 NodeProcess('samrl_model.model_node', ['--ros-args', '-p', f'task:={TASK}'], env, tmp_path)]
    node = Node('robot_side_test', argv=[])
    frames, masks = {}, {}
    try:
        node.create_subscription('samrl_interfaces/msg/RGBDFrame', '/samrl/perception/rgbd',
                                 lambda m: frames.__setitem__(stamp_to_s(m.header.stamp), m), QOS_SENSOR_DATA)
        node.create_subscription('samrl_interfaces/msg/ObjectMasks', '/samrl/perception/masks',
                                 lambda m: masks.__setitem__(stamp_to_s(m.header.stamp), m), QOS_SENSOR_DATA)
        camera = Pose.checked(recording['camera'][:3], recording['camera'][3:])
        StaticTransformBroadcaster(node).send([to_msg(WORLD_FRAME, OPTICAL_FRAME, camera, stamp_msg_now())])
        publishers = {'color': node.create_publisher('sensor_msgs/msg/Image', COLOR_TOPIC, QOS_SENSOR_DATA),
                      'depth': node.create_publisher('sensor_msgs/msg/Image', DEPTH_TOPIC, QOS_SENSOR_DATA),
                      'info': node.create_publisher('sensor_msgs/msg/CameraInfo', COLOR_INFO_TOPIC, QOS_SENSOR_DATA)}
        client = node.create_client('samrl_interfaces/srv/UpdateModel', '/samrl/model/update')
        assert client.wait_for_service(START_TIMEOUT_S), processes[2].output()
        ready = node.spin_until(lambda: all(p.get_subscription_count() for p in publishers.values()), START_TIMEOUT_S)
        assert ready, processes[0].output()

        deadline = time.monotonic() + MASK_TIMEOUT_S
        while len([s for s in masks if s in frames]) < FRAMES and time.monotonic() < deadline:
            _play(node, recording, publishers)
            node.spin_until(lambda: False, FRAME_PERIOD_S)
        both = sorted(s for s in masks if s in frames)
        assert both, [p.output()[-2000:] for p in processes[:2]]

        message, frame = masks[both[-1]], frames[both[-1]]
        mask = _target_mask(message)
        assert _iou(mask, recording['target_labels']) > MIN_MASK_IOU
        answer = client.call(_update_request(frame, mask), timeout_s=UPDATE_TIMEOUT_S)
        assert answer.success, answer.message
        truth = recording['truth'][:3]
        index = answer.state.object_names.index(TARGET)
        p = answer.state.object_poses[index].position
        nominal_error = np.linalg.norm(_nominal_position() - truth)
        assert np.linalg.norm(np.array([p.x, p.y, p.z]) - truth) < nominal_error
        assert all(process.alive() for process in processes), [p.output()[-2000:] for p in processes]
    finally:
        node.destroy()
        for process in processes:
            process.stop()


def stamp_msg_now():
    from samrl_perception.capture_node import stamp_msg
    return stamp_msg(time.time_ns())


def _target_mask(message) -> np.ndarray:
    assert TARGET in message.labels, message.labels
    return image_to_array(message.masks[list(message.labels).index(TARGET)]) > 0


def _nominal_position() -> np.ndarray:
    from samrl_description.tasks import nominal_scene
    return nominal_scene(TASK)[TARGET].pose.position


def _update_request(frame, mask: np.ndarray):
    request = msgs.samrl_interfaces.srv.UpdateModel.Request(target=TARGET, max_iterations=10)
    request.rgb, request.depth, request.camera_info = frame.rgb, frame.depth, frame.camera_info
    request.camera_pose = frame.camera_pose
    request.mask = array_to_image(mask.astype(np.uint8) * 255, 'mono8')
    return request

