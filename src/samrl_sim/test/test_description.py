"""The simulator agrees with samrl_description: the Panda hand's parts, the nominal scene, the grasps."""
import numpy as np
import pybullet as pb
import pytest

from samrl_description.geometry import Pose, yaw_quat
from samrl_description.robot import PANDA_MESH_LICENCE, panda_hand_parts, read_obj
from samrl_description.tasks import HELD_OBJECTS, NOMINAL_TCP, TASK_NAMES, grasp_pose, nominal_scene
from samrl_sim.panda import PandaArm
from samrl_sim.tasks import needle_threading, peg_insertion, spatula_flipping
from samrl_sim.world import World

POSE_TOLERANCE_M = 1e-6
OPENINGS_M = (0.0, 0.02, 0.08)
TURN_ABOUT_Z = Pose(np.zeros(3), yaw_quat(np.pi))    # the right finger's mesh in its link frame


@pytest.mark.parametrize('opening', OPENINGS_M)
def test_hand_parts_sit_where_pybullet_puts_the_links(opening):
    client = pb.connect(pb.DIRECT)
    try:
        panda = PandaArm(client)
        panda.reset_joints(np.zeros(7), opening)
        links = {name: panda.link_pose(i) for i, name in enumerate(panda.link_names)}
        tcp_inverse = links['panda_grasptarget'].inverse()
        for part in panda_hand_parts(opening):
            link = tcp_inverse.compose(links[part.name])
            expected = link.compose(TURN_ABOUT_Z) if part.name == 'panda_rightfinger' else link
            assert expected.is_close(part.pose_in_tcp, atol=POSE_TOLERANCE_M), part.name
    finally:
        pb.disconnect(client)


def test_hand_meshes_load_and_carry_their_licence():
    for part in panda_hand_parts(0.04):
        vertices, faces = read_obj(part.mesh)
        assert faces.max() < len(vertices) and np.ptp(vertices, axis=0).max() < 0.25   # metres, hand-sized
    assert 'Apache License' in PANDA_MESH_LICENCE.read_text()
    with pytest.raises(ValueError, match='opening'):
        panda_hand_parts(0.1)


@pytest.mark.parametrize('module, ranges', [
    (needle_threading, ()), (peg_insertion, (('BLOCK_X_RANGE_M', 0), ('BLOCK_Y_RANGE_M', 1))),
    (spatula_flipping, (('PANCAKE_X_RANGE_M', 0), ('PANCAKE_Y_RANGE_M', 1)))])
def test_nominal_scene_lies_inside_the_tasks_randomisation(module, ranges):
    task = module.__name__.rsplit('.', 1)[-1]
    position, _ = NOMINAL_TCP[task]
    for name, axis in zip(('START_X_RANGE_M', 'START_Y_RANGE_M', 'START_Z_RANGE_M'), range(3)):
        low, high = getattr(module, name)
        assert low <= position[axis] <= high, name
    free = [p for n, p in nominal_scene(task).items() if n != HELD_OBJECTS[task]]
    for name, axis in ranges:
        low, high = getattr(module, name)
        assert low <= free[0].pose.position[axis] <= high, name


@pytest.mark.parametrize('task', TASK_NAMES)
def test_the_world_holds_each_object_by_the_described_grasp(task):
    world = World(task)
    try:
        world.reset(0)
        held = world.object_poses()[HELD_OBJECTS[task]]
        expected = world.tcp_pose().compose(grasp_pose(task))
        assert np.linalg.norm(held.position - expected.position) < 2e-3       # the weld is slightly compliant
    finally:
        world.close()
