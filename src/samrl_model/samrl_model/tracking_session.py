"""The model M followed through episodes: model_node's tracking updates, ROS-free.

A TrackingSession keeps one task's Tracker (real2sim/track.py) on the SceneModel that model_node
serves: an episode's first frame replaces the target by a coarse model of the view and refits it,
every later frame predicts from the robot's motion and checks or refits. The SceneModel holds the
result, so the state, renders and single-view updates all see the tracked model.

Requests are checked before anything is rendered (SceneModel's checks plus the robot's state); a
request the tracker cannot use raises RequestError with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from samrl_description.geometry import Pose, quat_to_axis_angle
from samrl_description.robot import FINGER_MAX_OPENING_M
from samrl_description.tasks import HELD_OBJECTS, grasp_pose
from samrl_model.real2sim.coarse import coarse_model
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.track import RobotState, TrackConfig, Tracker, TrackStep
from samrl_model.render import ObjectParams
from samrl_model.robot import HAND_PART_NAMES
from samrl_model.scene_model import MIN_MASK_PIXELS, RequestError, SceneModel, check_observation, check_pose

NO_LOSS = float('nan')          # final_loss of an update that refitted nothing


@dataclass(frozen=True)
class TrackOutcome:
    """What one tracking update did (TrackModel's response fields)."""

    action: str                 # TrackStep.action: coarse, refit, kept, carried, unseen
    iterations: int
    final_loss: float           # NO_LOSS when nothing was refitted
    wall_time_s: float          # the coarse model included
    update: int                 # updates of this episode before this one (0: the episode's first frame)
    stages_s: dict[str, float]


def check_robot_state(tcp: Pose, opening_m: float) -> RobotState:
    """The robot's state if usable: a finite tool pose with a unit quaternion within the cell, and a
    finger opening within the Panda's range; RequestError naming the problem otherwise."""
    tcp = check_pose(tcp, 'tcp_pose')
    if not (np.isfinite(opening_m) and 0.0 <= opening_m <= FINGER_MAX_OPENING_M):
        raise RequestError(f'finger_opening_m must be in [0, {FINGER_MAX_OPENING_M}] m, got {opening_m}')
    return RobotState(tcp, float(opening_m))


def episode_prior(task: str, objects: dict[str, ObjectParams], tcp: Pose, target: str) -> dict[str, ObjectParams]:
    """What M knows at an episode's first frame before looking: the other objects as it has them, the
    held one at the grasp of the tool (a held thread straight), and the target, unless held, with
    nothing of its state (the coarse model's prior, as in `samrl bench real2sim --init coarse`)."""
    held = HELD_OBJECTS[task]
    prior = dict(objects)
    prior[held] = _placed(objects[held], tcp.compose(grasp_pose(task)))
    if prior[held].joint_angles is not None:
        prior[held] = replace(prior[held], joint_angles=torch.zeros_like(prior[held].joint_angles))
    if target != held:
        zero = torch.zeros(3, dtype=torch.float64)
        prior[target] = replace(objects[target], translation=zero, rotation=zero.clone())
    return prior


class TrackingSession:
    """One task's tracker on a SceneModel, episode after episode."""

    def __init__(self, model: SceneModel, config: TrackConfig = TrackConfig(),
                 should_stop: Callable[[], bool] | None = None):
        self.model = model
        self.tracker = Tracker(model.task, config, should_stop)
        self.target = self.tracker.target
        self.started = False    # an episode's first frame has been tracked
        self.updates = 0        # successful updates in the current episode
        self.robot: RobotState | None = None    # at the last successful update

    def update(self, observation: Observation, robot: RobotState, episode_start: bool) -> TrackOutcome:
        """One tracking update; an episode's first frame (or the first one at all) starts from a coarse
        model of the view. RequestError says why a frame cannot be used; the model is then unchanged (after a
        failed episode start the next update starts the episode again)."""
        start = episode_start or not self.started
        check_observation(observation.rgb, observation.depth_m, observation.mask, observation.intrinsics,
                          observation.camera_pose, observation.target, self.model.object_names(),
                          MIN_MASK_PIXELS if start else 0)
        if observation.target != self.target:
            raise RequestError(f'the tracker follows {self.target!r}, not {observation.target!r}')
        try:
            step = self._start(observation, robot) if start else self._step(observation, robot)
        except RequestError:
            raise
        except ValueError as exc:   # a view too poor for the coarse model, a frame smaller than the window
            raise RequestError(f'{"episode start" if start else "tracking"}: {exc}') from exc
        return self._keep(step, robot)

    def _start(self, observation: Observation, robot: RobotState) -> TrackStep:
        self.started = False    # a failed start leaves no half episode behind
        began = time.perf_counter()
        prior = episode_prior(self.model.task, self.model.objects, robot.tcp, self.target)
        coarse = coarse_model(observation, prior[self.target]).params
        step = self.tracker.start(observation, {**prior, self.target: coarse}, robot, time.perf_counter() - began)
        self.started, self.updates = True, 0
        return step

    def _step(self, observation: Observation, robot: RobotState) -> TrackStep:
        # Continue from the last successful update (a failed one may have left the tracker half way) and
        # from what the SceneModel holds (a single-view update in between is kept): the prediction then
        # carries the held object over the whole motion since that update.
        self.tracker.objects, self.tracker.robot = dict(self.model.objects), self.robot
        return self.tracker.step(observation, robot)

    def _keep(self, step: TrackStep, robot: RobotState) -> TrackOutcome:
        self.model.objects = {name: p for name, p in step.objects.items() if name not in HAND_PART_NAMES}
        self.model.hand = {name: p for name, p in step.objects.items() if name in HAND_PART_NAMES}
        outcome = TrackOutcome(step.action, step.iterations, NO_LOSS if step.final_loss is None else step.final_loss,
                               step.wall_time_s, self.updates, dict(step.stages.seconds))
        self.updates += 1
        self.robot = robot
        return outcome


def _placed(params: ObjectParams, pose: Pose) -> ObjectParams:
    return replace(params, translation=torch.as_tensor(pose.position, dtype=torch.float64),
                   rotation=torch.as_tensor(np.asarray(quat_to_axis_angle(pose.quaternion), dtype=float),
                                            dtype=torch.float64))
