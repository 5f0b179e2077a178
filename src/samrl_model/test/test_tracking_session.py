"""model_node's tracking, ROS-free: frames matched with masks, episodes detected, requests checked, the
session's updates on PyBullet frames, and the error against the bridge's privileged state."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from samrl_common.images import array_to_image
from samrl_common.tf import TransformBuffer
from samrl_description.geometry import Pose
from samrl_description.names import TCP_FRAME, WORLD_FRAME
from samrl_description.tasks import grasp_pose, nominal_scene, tool_pose
from samrl_model.real2sim.track import RobotState
from samrl_model.render import objects_from_placements
from samrl_model.scene_model import RequestError, SceneModel
from samrl_model.sim_adapter import objects_from_world, snapshot
from samrl_model.sim_truth import object_truth, sim_bodies, tracking_error
from samrl_model.tracking_inputs import (
    LEFT_FINGER_FRAME,
    RIGHT_FINGER_FRAME,
    EpisodeMark,
    EpisodeWatch,
    FrameMatcher,
    StampedHistory,
    robot_state_at,
    target_mask,
)
from samrl_model.tracking_session import TrackingSession, check_robot_state, episode_prior
from samrl_sim.world import World

SIZE = (320, 240)       # the thread's tracking window (256x192 px) must fit the frame
UNIT = np.array([0.0, 0.0, 0.0, 1.0])


# --- frames and masks -----------------------------------------------------------------------------

def test_frames_and_masks_pair_by_stamp_and_only_the_newest_pair_is_tracked():
    matcher = FrameMatcher(max_waiting=3)
    matcher.add_frame(1, 'f1')
    matcher.add_frame(2, 'f2')
    assert matcher.take() is None
    matcher.add_masks(1, 'm1')
    matcher.add_masks(2, 'm2')                  # a newer pair before the first was tracked
    assert matcher.take() == (2, 'f2', 'm2') and matcher.take() is None
    assert matcher.counts.superseded == 1
    matcher.add_masks(4, 'm4')                  # masks may come first
    matcher.add_frame(3, 'f3')
    matcher.add_frame(4, 'f4')
    assert matcher.take() == (4, 'f4', 'm4')
    assert matcher.counts.unmatched == 1        # f3 will never get its masks now
    matcher.add_masks(3, 'm3')                  # late: older than what was tracked
    assert matcher.take() is None


def test_waiting_frames_are_bounded():
    matcher = FrameMatcher(max_waiting=2)
    for stamp in range(5):
        matcher.add_frame(stamp, stamp)
    assert matcher.counts.unmatched == 3
    matcher.add_masks(4, 'm')
    assert matcher.take() == (4, 4, 'm')


def test_history_answers_the_sample_in_force_at_a_stamp():
    history = StampedHistory(size=3)
    for stamp in (10, 30, 20, 40):
        history.add(stamp, stamp)
    assert history.at(5) is None                # 10 was dropped: only the 3 newest are kept
    assert history.at(25) == 20 and history.at(30) == 30 and history.at(99) == 40


def test_target_mask_is_the_union_of_the_target_instances():
    one, two = np.zeros((4, 6), np.uint8), np.zeros((4, 6), np.uint8)
    one[0, 0], two[3, 5] = 255, 255
    images = [array_to_image(a, 'mono8') for a in (one, two, one)]
    mask = target_mask(['thread', 'thread', 'needle'], images, 'thread', (4, 6))
    assert mask.sum() == 2 and mask[0, 0] and mask[3, 5]
    assert not target_mask(['needle'], images[:1], 'thread', (4, 6)).any()
    with pytest.raises(ValueError, match='6x4'):
        target_mask(['thread'], images[:1], 'thread', (5, 6))


# --- episodes -------------------------------------------------------------------------------------

def test_an_episode_starts_at_the_first_frame_a_new_episode_or_a_reset():
    watch = EpisodeWatch()
    first = EpisodeMark(episode=0, seed=7, step=0)
    assert watch.is_start(first)
    watch.tracked(first)
    assert not watch.is_start(first)                        # another frame before the first control step
    watch.tracked(EpisodeMark(0, 7, 3))
    assert not watch.is_start(EpisodeMark(0, 7, 4))
    assert watch.is_start(EpisodeMark(1, 8, 0))             # the next episode
    assert watch.is_start(EpisodeMark(0, 7, 1))             # the step went back: reset without a new number
    assert not watch.is_start(None)                         # no task state at this frame: carry on


def test_a_failed_start_is_tried_again_and_a_world_without_task_state_is_one_episode():
    watch = EpisodeWatch()
    assert watch.is_start(None) and watch.is_start(None)    # nothing tracked yet
    watch.tracked(None)
    assert not watch.is_start(None)


# --- requests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('tcp, opening, reason', [
    (Pose(np.array([np.nan, 0.0, 0.3]), UNIT), 0.01, 'not finite'),
    (Pose(np.array([0.4, 0.0, 0.3]), np.zeros(4)), 0.01, 'norm 0, not 1'),
    (Pose(np.array([0.4, 0.0, 0.3]), 2.0 * UNIT), 0.01, 'not 1'),
    (Pose(np.array([1e6, 0.0, 0.3]), UNIT), 0.01, 'from the world origin'),
    (Pose(np.array([0.4, 0.0, 0.3]), UNIT), -0.001, 'finger_opening_m'),
    (Pose(np.array([0.4, 0.0, 0.3]), UNIT), 0.09, 'finger_opening_m'),
    (Pose(np.array([0.4, 0.0, 0.3]), UNIT), float('nan'), 'finger_opening_m'),
])
def test_bad_robot_states_are_refused_with_the_reason(tcp, opening, reason):
    with pytest.raises(RequestError, match=reason):
        check_robot_state(tcp, opening)


def test_a_good_robot_state_is_kept_with_its_quaternion_normalised():
    robot = check_robot_state(Pose(np.array([0.4, 0.0, 0.3]), np.array([0.0, 0.0, 0.0, 1.0005])), 0.08)
    assert np.linalg.norm(robot.tcp.quaternion) == pytest.approx(1.0) and robot.opening_m == 0.08


def test_the_robot_state_is_read_from_tf_at_the_frame_stamp():
    buffer, hand = TransformBuffer(), Pose(np.array([0.4, 0.1, 0.3]), UNIT)
    for stamp, x in ((1.0, 0.4), (2.0, 0.5)):
        buffer.set_transform(WORLD_FRAME, 'panda_hand', stamp, Pose(np.array([x, 0.1, 0.3]), UNIT))
    buffer.set_transform('panda_hand', TCP_FRAME, 0.0, Pose(np.array([0.0, 0.0, 0.105]), UNIT), static=True)
    for finger, y in ((LEFT_FINGER_FRAME, 0.01), (RIGHT_FINGER_FRAME, -0.01)):
        buffer.set_transform('panda_hand', finger, 0.0, Pose(np.array([0.0, y, 0.0584]), UNIT), static=True)
    robot = robot_state_at(buffer, WORLD_FRAME, 1.5)
    assert np.allclose(robot.tcp.position, hand.position + [0.05, 0.0, 0.105])
    assert robot.opening_m == pytest.approx(0.02)


def test_the_episode_prior_puts_the_held_object_in_the_grasp_and_knows_nothing_of_the_target():
    tcp = tool_pose((0.41, -0.05, 0.28), 0.2)
    objects = objects_from_placements(nominal_scene('peg_insertion'))
    prior = episode_prior('peg_insertion', objects, tcp, 'hole_block')
    peg = tcp.compose(grasp_pose('peg_insertion'))
    assert np.allclose(prior['peg'].translation.numpy(), peg.position)
    assert not prior['hole_block'].translation.any() and not prior['hole_block'].rotation.any()
    thread = episode_prior('needle_threading', objects_from_placements(nominal_scene('needle_threading')), tcp,
                           'thread')['thread']
    assert np.allclose(thread.translation.numpy(), tcp.position) and not thread.joint_angles.any()


# --- the session on PyBullet frames, and its error against the privileged state ---------------------------

@pytest.fixture(scope='module')
def needle_world():
    world = World('needle_threading')
    world.reset(seed=2)
    yield world
    world.close()


def _robot(world) -> RobotState:
    return RobotState(world.tcp_pose(), world.panda.gripper_width())


def test_a_session_starts_from_a_coarse_model_then_carries_the_held_thread(needle_world):
    from samrl_sim.commands import EeDeltaCommand
    model = SceneModel('needle_threading', spp=1)
    session = TrackingSession(model)
    frame = snapshot(needle_world, 'thread', *SIZE)
    with pytest.raises(RequestError, match='tracker follows'):
        session.update(replace(frame, target='needle'), _robot(needle_world), episode_start=True)
    with pytest.raises(RequestError, match='the mask has 0 pixels'):   # nothing to build a coarse model from
        session.update(replace(frame, mask=np.zeros_like(frame.mask)), _robot(needle_world), episode_start=True)
    first = session.update(frame, _robot(needle_world), episode_start=True)
    assert first.action == 'coarse' and first.update == 0 and first.wall_time_s > 0
    assert set(model.hand) == {'panda_hand', 'panda_leftfinger', 'panda_rightfinger'} and 'table' in model.objects
    width = needle_world.task.gripper_width_m
    needle_world.step(EeDeltaCommand((0.01, 0.005, 0.0), (0.0, 0.0, 0.05), width))
    small = session.update(snapshot(needle_world, 'thread', 160, 120), _robot(needle_world), episode_start=False)
    assert small.update == 1 and small.action == 'carried'     # a frame smaller than the window: the window shrinks
    needle_world.step(EeDeltaCommand((0.0, -0.01, 0.005), (0.0, 0.0, 0.0), width))
    frame = snapshot(needle_world, 'thread', *SIZE)
    step = session.update(frame, _robot(needle_world), episode_start=False)
    truth = objects_from_world(needle_world)[0]['thread']
    assert step.update == 2 and step.action == 'carried'       # carried over both motions
    assert tracking_error(model.objects['thread'], truth, 'thread').position_mm < 2.0
    hidden = session.update(replace(frame, mask=np.zeros_like(frame.mask)), _robot(needle_world), False)
    assert hidden.action == 'unseen' and hidden.update == 3     # a hidden target is predicted, not refused


def test_the_truth_read_from_a_sim_state_is_the_worlds(needle_world):
    from samrl_common.runtime import stamp_now
    from samrl_sim.conversions import sim_state_msg
    from samrl_sim.world import read_body_states
    message = sim_state_msg(read_body_states(needle_world.client), 'needle_threading', 0, 2, stamp_now())
    bodies = sim_bodies('needle_threading')
    truth = object_truth(message, bodies, 'thread')
    expected = objects_from_world(needle_world)[0]['thread']
    same = tracking_error(truth, expected, 'thread')
    assert same.position_mm < 1e-6 and same.thread_link_mm < 1e-6
    bent = replace(truth, joint_angles=truth.joint_angles + torch.full_like(truth.joint_angles, 0.05))
    assert tracking_error(bent, expected, 'thread').thread_link_mm > 1.0
    message.body_names = message.body_names[:-1]
    with pytest.raises(ValueError, match='bodies'):
        object_truth(message, bodies, 'thread')


# --- model_node's inputs ------------------------------------------------------------------------------

def test_model_node_listens_where_perception_publishes():
    from samrl_model.model_node import ModelParams
    from samrl_perception.capture_node import RGBD_TOPIC
    from samrl_perception.segmentation_node import MASKS_TOPIC
    params = ModelParams()
    assert (params.frame_topic, params.masks_topic, params.track) == (RGBD_TOPIC, MASKS_TOPIC, True)


def test_a_frame_and_its_masks_make_the_targets_observation():
    from samrl_common import msgs
    from samrl_common.conversions import camera_info_msg, pose_msg
    from samrl_description.camera import CameraIntrinsics
    from samrl_model.model_node import observation_from_frame
    rgb, depth = np.zeros((12, 16, 3), np.uint8), np.ones((12, 16), np.float32)
    thread = np.zeros((12, 16), np.uint8)
    thread[2:4, 5:9] = 255
    frame = msgs.samrl_interfaces.msg.RGBDFrame(
        rgb=array_to_image(rgb, 'rgb8'), depth=array_to_image(depth, '32FC1'), world_frame=WORLD_FRAME,
        camera_info=camera_info_msg(CameraIntrinsics.d435(16, 12), None, 'camera_color_optical_frame'),
        camera_pose=pose_msg(Pose(np.array([0.8, -0.2, 0.3]), UNIT)))
    masks = msgs.samrl_interfaces.msg.ObjectMasks(labels=['needle', 'thread'], scores=[0.9, 0.8],
                                                  masks=[array_to_image(255 - thread, 'mono8'),
                                                         array_to_image(thread, 'mono8')])
    observation = observation_from_frame(frame, masks, 'thread')
    assert observation.mask.sum() == 8 and observation.target == 'thread' and observation.intrinsics.width == 16
    frame.world_frame = 'panda_link0'
    with pytest.raises(RequestError, match="'panda_link0'; the model is in 'world'"):
        observation_from_frame(frame, masks, 'thread')
