"""Camera arm: IK reaches reachable camera goals, rejects unreachable ones without moving."""
import numpy as np

from samrl_description.camera_arm_kinematics import ORIENTATION_TOLERANCE_RAD, POSITION_TOLERANCE_M
from samrl_description.geometry import look_at, quat_conjugate, quat_multiply, rotation_angle
from samrl_sim.commands import CameraPoseGoal


def _goal(pose):
    return CameraPoseGoal(tuple(pose.position), tuple(pose.quaternion))


def test_reachable_goal_is_reached(peg_world):
    peg_world.reset(seed=0)
    goal = look_at(eye=(0.75, -0.30, 0.35), target=(0.5, 0.0, 0.05))
    assert peg_world.move_camera(_goal(goal)).ok
    reached = peg_world.camera_pose()
    assert np.linalg.norm(reached.position - goal.position) < POSITION_TOLERANCE_M
    assert rotation_angle(quat_multiply(quat_conjugate(reached.quaternion), goal.quaternion)) \
        < ORIENTATION_TOLERANCE_RAD


def test_unreachable_goal_is_rejected_and_arm_stays(peg_world):
    peg_world.reset(seed=0)
    before = peg_world.camera_arm.joint_positions().copy()
    # Within the reach sphere, but looking back down at the arm's own base from its far side.
    goal = look_at(eye=(0.55 + 0.8 * np.cos(1.0), -0.65 + 0.8 * np.sin(1.0), 0.5), target=(0.55, -0.65, 0.3))
    result = peg_world.move_camera(_goal(goal))
    assert not result.ok and 'unreachable' in result.reason
    assert np.array_equal(peg_world.camera_arm.joint_positions(), before)


def test_joint_limits_hold(peg_world):
    arm = peg_world.camera_arm
    q = arm.joint_positions()
    assert np.all(q >= arm._chain.lower - 1e-9) and np.all(q <= arm._chain.upper + 1e-9)


def test_tf_tree_reaches_the_optical_frame(peg_world):
    edges = {edge.child: edge for edge in peg_world.transforms()}
    chain, frame = [], 'camera_color_optical_frame'
    while frame != 'world':
        chain.append(frame)
        frame = edges[frame].parent
    assert chain[-1] == 'rizon_base_link' and 'camera_link' in chain
    pose = edges[chain[-1]].pose
    for name in reversed(chain[:-1]):
        pose = pose.compose(edges[name].pose)
    assert np.allclose(pose.position, peg_world.camera_pose().position, atol=1e-6)
    assert 'panda_link0' in edges and edges['panda_link0'].parent == 'world'
