"""The three tasks judged inside the differentiable model M (paper Sec. III-D: learning happens in M).

Each task here reads M's state alone (plus the poses of the static bodies, which M's world holds
but its state vector does not) and offers what samrl_sim's task offers in PyBullet:

* `evaluate(state, memory) -> dict` with 'success' and the same diagnostics as the sim task's
  evaluate(), from the same thresholds (samrl_description.task_goals);
* `reward(info)`, the sim task's dense reward (the same function);
* `cost(states, memory)`, a differentiable cost of a rolled-out trajectory (torch), which the
  expert (expert.py) minimises over the actions through M's physics.

Body poses are computed in torch from the state (tool centre point from the gripper's six dofs,
the thread's links as the renderer chains them, the pancake's free joint), not through nimble's
getters, so that the cost has gradients; `evaluate` uses the same functions, so the cost and the
success test measure the same geometry. Episode memory (the pancake's highest lift so far, which
the sim task records after every physics step) is a small dict the episode carries: M records it
after every control step.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from samrl_description.geometry import Pose
from samrl_description.objects import SceneObjects
from samrl_description.scene import BLADE_YAW_RAD
from samrl_description.task_goals import (
    DENSE_REWARDS,
    EYE_AXIS,
    FLIP_ANGLE_RAD,
    HOLE_SYMMETRY_RAD,
    INSERTION_DEPTH_M,
    LIFT_HEIGHT_M,
    PRE_INSERT_HEIGHT_M,
    PRE_THREAD_DISTANCE_M,
    SCOOP_CLEARANCE_M,
    STEP_BUDGETS,
    THROUGH_DEPTH_M,
    blade_direction,
    plane_crossing,
    turn_angle_rad,
    wrap_symmetric,
)
from samrl_description.tasks import TARGETS, check_task
from samrl_model.meshes import thread_link_poses
from samrl_model.physics.model import GRIPPER_DOFS, PhysicsModel, pancake_box_part
from samrl_model.rotations import (
    axis_angle_matrix,
    euler_xyz_to_matrix,
    homogeneous,
    invert_pose,
    pose_matrix_from_quat,
)

# The cost's units: distances are compared with COST_LENGTH_M (one control step's largest move),
# through a pseudo-Huber penalty that is quadratic within COST_SMOOTHING_M and linear beyond.
COST_LENGTH_M = 0.02
COST_SMOOTHING_M = 0.002
PEG_GOAL_OVERSHOOT_M = 0.010       # the cost aims the peg tip this far below the success depth
PEG_CORNER_RADIUS_M = 0.014        # half diagonal of the peg: a yaw error e moves its corners ~ r e
PEG_WALL_WEIGHT = 20.0             # the peg's tip below the block's top off the hole (a blocked peg gives no gradient)
THREAD_GOAL_OVERSHOOT_M = 0.015    # the cost aims the thread tip this far beyond the success depth
THREAD_DIRECTION_LEVER_M = 0.02    # a tip pointing off the axis by angle e costs like an offset of lever * e
THREAD_JOINT_WEIGHT = 0.5          # the tip-side joint behind the tip is lined up too (the crossing)
THREAD_WALL_WEIGHT = 20.0          # the tip beside the eye past its front face (a blocked tip gives no gradient)
PANCAKE_TURN_WEIGHT = 2.0          # the flip is what the task is for
PANCAKE_REACH_WEIGHT = 0.1         # a small pull of the blade tip to where it slides in, until the lift
SPATULA_BELOW_TABLE_M = 0.0045     # M's blade slides in this far under the table's surface (its tip's
#                                    lower face), its top face under the box, which sinks ~0.7 mm (M's
#                                    held objects pass through the table; the box has no rim to ride up)
SPATULA_HANDLE_GAP_M = 0.005       # it slides in until the pancake's near edge is this far from the handle
LAST_STATE_WEIGHT = 2.0            # the plan's last state counts this much more than the others


def robust_distance(offset: torch.Tensor) -> torch.Tensor:
    """Pseudo-Huber length of `offset` (m) in units of COST_LENGTH_M: ~|x|^2 near 0, ~|x| far."""
    smooth = COST_SMOOTHING_M
    return smooth * (torch.sqrt(1.0 + (offset * offset).sum(-1) / smooth ** 2) - 1.0) / COST_LENGTH_M


# --- M's bodies in torch ---------------------------------------------------------------------------

def tcp_matrix(model: PhysicsModel, state: torch.Tensor) -> torch.Tensor:
    """(4, 4) pose of the tool centre point: position state[:3], rotation R_down Rx Ry Rz (model.py)."""
    reference = torch.as_tensor(model.gripper_reference, dtype=state.dtype)
    return homogeneous(reference @ euler_xyz_to_matrix(state[3:GRIPPER_DOFS]), state[:3])


def held_matrix(model: PhysicsModel, state: torch.Tensor) -> torch.Tensor:
    """(4, 4) pose of the grasped object: TCP composed with the grasp."""
    grasp = model.object_in_tcp
    return tcp_matrix(model, state) @ pose_matrix_from_quat(grasp.position, grasp.quaternion, state.dtype)


def free_body_matrix(positions: torch.Tensor) -> torch.Tensor:
    """(4, 4) pose of a nimble FreeJoint body from its coordinates (rotation vector, position)."""
    return homogeneous(axis_angle_matrix(positions[:3]), positions[3:6])


def to_pose(matrix: torch.Tensor) -> Pose:
    """A samrl Pose of a (4, 4) tensor (detached)."""
    return Pose.from_matrix(matrix.detach().numpy())


def static_matrix(pose: Pose, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return pose_matrix_from_quat(pose.position, pose.quaternion, dtype)


# --- the tasks --------------------------------------------------------------------------------------

class ModelTask(ABC):
    """One task judged in M. `statics` holds the world poses of the task's static bodies."""

    name = ''

    def __init__(self, model: PhysicsModel, statics: dict[str, Pose], objects: SceneObjects = SceneObjects()):
        if model.task != self.name:
            raise ValueError(f'{type(self).__name__} needs the model of {self.name}, got {model.task}')
        self.model, self.statics, self.objects = model, dict(statics), objects

    @property
    def max_episode_steps(self) -> int:
        return STEP_BUDGETS[self.name]

    @property
    def target(self) -> str:
        """The object whose mask the policy sees (samrl_description.tasks.TARGETS)."""
        return TARGETS[self.name]

    def initial_memory(self, state: torch.Tensor) -> dict:
        """What an episode must remember from its start (nothing, for most tasks)."""
        return {}

    def remember(self, memory: dict, state: torch.Tensor) -> dict:
        """The memory after a control step that reached `state` (a new dict)."""
        return dict(memory)

    @abstractmethod
    def evaluate(self, state: torch.Tensor, memory: dict | None = None) -> dict:
        """Diagnostics of `state` with the bool 'success', as the sim task's evaluate()."""

    def reward(self, info: dict) -> float:
        """The sim task's dense reward for evaluate()'s dict."""
        return DENSE_REWARDS[self.name](info)

    @abstractmethod
    def state_cost(self, state: torch.Tensor, memory: dict) -> torch.Tensor:
        """Differentiable cost (dimensionless, >= 0, small at success) of one state; `memory` is the
        episode's memory up to and including that state."""

    def cost(self, states: torch.Tensor, memory: dict | None = None) -> torch.Tensor:
        """Cost of a rolled-out trajectory (T, state_size) that starts from an episode whose memory is
        `memory`: the states' mean, the last one weighted LAST_STATE_WEIGHT more, so a plan is judged
        on where it ends and on how soon it gets there."""
        memory = self.initial_memory(states[0]) if memory is None else memory
        costs = []
        for state in states:
            memory = self.remember(memory, state)
            costs.append(self.state_cost(state, memory))
        costs = torch.stack(costs)
        weights = torch.ones(len(states), dtype=costs.dtype)
        weights[-1] += LAST_STATE_WEIGHT
        return (weights * costs).sum() / weights.sum()


class PegInsertion(ModelTask):
    """Peg-Insertion in M (samrl_sim.tasks.peg_insertion is the spec)."""

    name = 'peg_insertion'

    def hole_top(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """(4, 4) centre of the hole's opening, z up, x along one side."""
        top = Pose(np.array([0.0, 0.0, self.objects.hole_block.height_m]), np.array([0.0, 0.0, 0.0, 1.0]))
        return static_matrix(self.statics['hole_block'].compose(top), dtype)

    def tip_in_hole(self, state: torch.Tensor) -> torch.Tensor:
        """Peg tip (the end away from the gripper) in the hole-top frame (m)."""
        tip = held_matrix(self.model, state) @ torch.tensor([0.0, 0.0, 0.5 * self.objects.peg.length_m, 1.0],
                                                            dtype=state.dtype)
        return (invert_pose(self.hole_top(state.dtype)) @ tip)[:3]

    def yaw_error(self, state: torch.Tensor) -> torch.Tensor:
        """Peg yaw relative to the hole (rad, not wrapped: the square's symmetry is applied by users)."""
        peg, hole = held_matrix(self.model, state), self.hole_top(state.dtype)
        return torch.atan2(peg[1, 0], peg[0, 0]) - torch.atan2(hole[1, 0], hole[0, 0])

    def evaluate(self, state: torch.Tensor, memory: dict | None = None) -> dict:
        with torch.no_grad():
            tip = self.tip_in_hole(state).numpy()
            yaw = wrap_symmetric(float(self.yaw_error(state)), HOLE_SYMMETRY_RAD)
        half_hole = 0.5 * self.objects.hole_block.hole_side_m(self.objects.peg)
        inside = bool(np.all(np.abs(tip[:2]) < half_hole))
        depth = float(-tip[2])
        return {'success': inside and depth >= INSERTION_DEPTH_M,
                'insertion_depth_m': depth,
                'lateral_offset_m': float(np.linalg.norm(tip[:2])),
                'laterally_inside': inside,
                'yaw_error_rad': yaw,
                'distance_to_pre_insert_m': float(np.linalg.norm(tip - [0.0, 0.0, PRE_INSERT_HEIGHT_M]))}

    def state_cost(self, state: torch.Tensor, memory: dict) -> torch.Tensor:
        tip = self.tip_in_hole(state)
        goal_depth = INSERTION_DEPTH_M + PEG_GOAL_OVERSHOOT_M
        # (1 - cos 4e) / 8 ~ e^2 / ... is smooth and repeats with the square hole every quarter turn.
        yaw_offset = PEG_CORNER_RADIUS_M * torch.sqrt((1.0 - torch.cos(4.0 * self.yaw_error(state))) / 8.0 + 1e-12)
        cost = robust_distance(tip[:2]) + robust_distance((tip[2] + goal_depth).reshape(1)) \
            + robust_distance(yaw_offset.reshape(1))
        # M lets the peg pass through the block: going below its top away from the hole is penalised.
        clearance = self.objects.hole_block.clearance_m
        outside = torch.relu(tip[:2].abs() - clearance).pow(2).sum() / clearance ** 2
        return cost + PEG_WALL_WEIGHT * torch.relu(-tip[2] / COST_LENGTH_M) * outside


class NeedleThreading(ModelTask):
    """Needle-Threading in M (samrl_sim.tasks.needle_threading is the spec)."""

    name = 'needle_threading'

    def eye(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """(4, 4) centre of the eye's opening; x is the threading direction."""
        centre = Pose(np.array([0.0, 0.0, self.objects.needle.eye_centre_height_m]), np.array([0.0, 0.0, 0.0, 1.0]))
        return static_matrix(self.statics['needle'].compose(centre), dtype)

    def thread_links(self, state: torch.Tensor) -> torch.Tensor:
        """(1 + joints, 4, 4) world poses of the grasped segment and the thread's links."""
        angles = state[self.model.dof_slice('thread')]
        return thread_link_poses(angles, held_matrix(self.model, state), self.objects.thread)

    def tip_side_in_eye(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eye-frame polyline (grasped centre, tip-side joints, tip) and the tip segment's direction."""
        spec = self.objects.thread
        links = self.thread_links(state)
        last = links[spec.tip_links]                       # frame of the tip-most link
        tip = last @ torch.tensor([spec.segment_length_m, 0.0, 0.0, 1.0], dtype=state.dtype)
        to_eye = invert_pose(self.eye(state.dtype))
        points = torch.cat([links[:spec.tip_links + 1, :, 3], tip.reshape(1, 4)])
        return (points @ to_eye.T)[:, :3], to_eye[:3, :3] @ last[:3, 0]

    def evaluate(self, state: torch.Tensor, memory: dict | None = None) -> dict:
        with torch.no_grad():
            points, direction = (t.numpy() for t in self.tip_side_in_eye(state))
        tip = points[-1]
        crossing = plane_crossing(points)
        half_opening = 0.5 * self.objects.needle.eye_opening_m
        inside = crossing is not None and bool(np.all(np.abs(crossing) < half_opening))
        cos_angle = float(np.clip(np.dot(direction, EYE_AXIS), -1.0, 1.0))
        return {'success': inside and tip[0] >= THROUGH_DEPTH_M,
                'tip_depth_m': float(tip[0]),
                'tip_lateral_offset_m': float(np.linalg.norm(tip[1:])),
                'crossing_inside_eye': inside,
                'tip_angle_rad': float(np.arccos(cos_angle)),
                'distance_to_pre_thread_m': float(np.linalg.norm(tip - [-PRE_THREAD_DISTANCE_M, 0.0, 0.0]))}

    def state_cost(self, state: torch.Tensor, memory: dict) -> torch.Tensor:
        points, direction = self.tip_side_in_eye(state)
        tip, behind = points[-1], points[-2]
        axis = torch.as_tensor(EYE_AXIS, dtype=state.dtype)
        goal_depth = THROUGH_DEPTH_M + THREAD_GOAL_OVERSHOOT_M
        cost = robust_distance(tip[1:]) + THREAD_JOINT_WEIGHT * robust_distance(behind[1:]) \
            + robust_distance((tip[0] - goal_depth).reshape(1)) \
            + robust_distance(THREAD_DIRECTION_LEVER_M * (direction - axis))
        # M lets the thread pass through the needle: a tip past the eye's front face outside the
        # opening is penalised, so plans enter through the opening as they must in the world.
        needle = self.objects.needle
        free = 0.5 * needle.eye_opening_m - self.objects.thread.radius_m
        outside = torch.relu(tip[1:].abs() - free).pow(2).sum() / free ** 2
        past_front = torch.relu((tip[0] + 0.5 * needle.thickness_m) / COST_LENGTH_M)
        return cost + THREAD_WALL_WEIGHT * past_front * outside


class SpatulaFlipping(ModelTask):
    """Spatula-Flipping in M (samrl_sim.tasks.spatula_flipping is the spec). The pancake is a box
    in M (samrl_model.physics.model.pancake_box_part); its rest height is the sim's."""

    name = 'spatula_flipping'

    @property
    def rest_height_m(self) -> float:
        return 0.5 * self.objects.pancake.thickness_m

    def pancake(self, state: torch.Tensor) -> torch.Tensor:
        """(4, 4) pose of the pancake (its free joint's coordinates)."""
        return free_body_matrix(state[self.model.dof_slice('pancake')])

    def blade_tip(self, state: torch.Tensor) -> torch.Tensor:
        """(4, 4) middle of the blade's free edge on its lower face, axes of the spatula frame."""
        spec = self.objects.spatula
        offset = torch.eye(4, dtype=state.dtype)
        offset[:3, 3] = torch.tensor([spec.blade_length_m, 0.0, -0.5 * spec.blade_thickness_m], dtype=state.dtype)
        return held_matrix(self.model, state) @ offset

    def lift_m(self, state: torch.Tensor) -> torch.Tensor:
        return self.pancake(state)[2, 3] - self.rest_height_m

    def initial_memory(self, state: torch.Tensor) -> dict:
        return {'max_lift_m': 0.0}       # as the sim task: reset at the start of the episode

    def remember(self, memory: dict, state: torch.Tensor) -> dict:
        return {'max_lift_m': max(memory['max_lift_m'], float(self.lift_m(state).detach()))}

    def blade_yaw(self, pancake: torch.Tensor) -> torch.Tensor:
        """Yaw (rad) of the pancake's face direction nearest the nominal blade direction: M's pancake
        is a square box, and a blade square to a face slides under it straight."""
        quarter = 0.5 * np.pi
        face = torch.atan2(pancake[1, 0], pancake[0, 0])
        return face + quarter * torch.round((BLADE_YAW_RAD - face.detach()) / quarter)

    def slide_end(self, pancake: torch.Tensor) -> torch.Tensor:
        """Where the blade tip ends sliding in under the pancake along blade_yaw: the pancake's near edge
        SPATULA_HANDLE_GAP_M from the handle, the tip SPATULA_BELOW_TABLE_M under the table's surface."""
        yaw = self.blade_yaw(pancake)
        half_side = pancake_box_part(self.objects.pancake).half_extents[0]
        along = self.objects.spatula.blade_length_m - half_side - SPATULA_HANDLE_GAP_M
        return torch.stack([pancake[0, 3] + along * torch.cos(yaw), pancake[1, 3] + along * torch.sin(yaw),
                            pancake.new_tensor(-SPATULA_BELOW_TABLE_M)])

    def scoop_start(self, pancake: torch.Tensor) -> torch.Tensor:
        """Where the sim's reward wants the blade tip: on the table before the pancake's rim (-y)."""
        offset = (self.objects.pancake.radius_m + SCOOP_CLEARANCE_M) * torch.as_tensor(blade_direction(),
                                                                                        dtype=pancake.dtype)
        centre = torch.cat([pancake[:2, 3], pancake.new_zeros(1)])
        return centre - offset

    def evaluate(self, state: torch.Tensor, memory: dict | None = None) -> dict:
        memory = self.remember(memory or self.initial_memory(state), state)
        with torch.no_grad():
            pancake = self.pancake(state)
            turned = turn_angle_rad(pancake[:3, 2].numpy())
            reach = float(torch.linalg.norm(self.blade_tip(state)[:3, 3] - self.scoop_start(pancake)))
        lifted = memory['max_lift_m'] >= LIFT_HEIGHT_M
        return {'success': lifted and turned >= FLIP_ANGLE_RAD,
                'lifted': lifted,
                'max_lift_m': memory['max_lift_m'],
                'turn_angle_rad': turned,
                'tip_to_scoop_start_m': reach}

    def state_cost(self, state: torch.Tensor, memory: dict) -> torch.Tensor:
        pancake = self.pancake(state)
        turn = 0.5 * (1.0 + pancake[2, 2])                        # 0 upside down, 1 face up
        # The share of the lift still missing: 0 once the episode's highest lift was enough.
        highest = torch.maximum(self.lift_m(state), state.new_tensor(memory['max_lift_m']))
        missing = torch.relu(LIFT_HEIGHT_M - highest) / LIFT_HEIGHT_M
        # Until then the blade tip is pulled to where it slides in under the pancake.
        reach = robust_distance(self.blade_tip(state)[:3, 3] - self.slide_end(pancake))
        return PANCAKE_TURN_WEIGHT * turn + missing * (1.0 + PANCAKE_REACH_WEIGHT * reach)


MODEL_TASKS: dict[str, type[ModelTask]] = {'needle_threading': NeedleThreading, 'peg_insertion': PegInsertion,
                                           'spatula_flipping': SpatulaFlipping}


def make_model_task(model: PhysicsModel, statics: dict[str, Pose], objects: SceneObjects = SceneObjects()) -> ModelTask:
    """The task of `model` judged in M, with its static bodies at `statics` (world poses)."""
    return MODEL_TASKS[check_task(model.task)](model, statics, objects)
