"""Real2Sim at the control rate (Alg. 1 lines 3 and 7): predict M from the executed command, then check or refit.

Every control step the tracker
1. predicts: the held object moves rigidly with the tool centre point; a target that may ride on
   it (the pancake on the spatula) gets two predictions, carried and left, and one near a turning
   blade's free edge is also predicted tipping over it (checked with a margin); the hand and
   fingers go where the robot's state puts them; everything else stays;
2. looks through a window of the camera's own pixels around the predicted target (window.py),
   with M's hand occluding the target as the real hand does;
3. checks the predictions by the IoU of M's ray-cast mask with the camera's; if none agrees, a
   third moves the target by the offset of the two masks' back-projected centroids (a push no
   small step could follow); the best is kept;
4. keeps a resting target that agrees (IoU >= agree_iou) as it is, carries a held one (see
   TrackConfig.refit_held), and otherwise refits the target's latents for a few iterations at
   tracking step sizes (Adam's first steps are about one learning rate whatever the gradient, so
   they are small unless the target is far off); a target lost altogether gets a new coarse model;
5. aligns a rigid target's surfaces that face the camera with the camera's depth at the frame's
   own pixels (point-to-plane ICP, align.py) after a refit, and a kept one unless that lowers the
   agreement: the depth fixes a tilt that a few dozen binned mask pixels leave loose.

An episode's first frame starts from the coarse initial model and refits it for longer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from samrl_description.geometry import Pose, axis_angle_to_quat, quat_to_axis_angle
from samrl_description.objects import SceneObjects
from samrl_description.tasks import HELD_OBJECTS, TARGETS, check_task, grasp_pose
from samrl_model.real2sim.align import align, camera_points
from samrl_model.real2sim.coarse import coarse_model
from samrl_model.real2sim.losses import depth_to_points
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.optimise import OptimiseConfig, OptimiseResult, optimise
from samrl_model.real2sim.surface import surface_samples
from samrl_model.real2sim.update import (
    SURFACE_SAMPLES,
    latents_of,
    raycast_evaluator,
    real_targets,
    unmodelled_occlusion,
    with_latents,
)
from samrl_model.real2sim.window import WINDOW_SIZE_PX, Window, binning_for, crop, project, window_around
from samrl_model.render import ObjectParams, Renderer
from samrl_model.robot import HAND_PART_NAMES, hand_objects
from samrl_model.rotations import pose_matrix_from_quat
from samrl_model.stopwatch import Stopwatch, timed

# Adam step sizes per control step, in each latent's unit. Adam's first steps are about one rate
# whatever the gradient, so a step's turn is capped near iterations x rotation rate: at 3e-3 rad x 4
# a lifted pancake (3-4 deg per step) lagged 2-5 deg; 2e-2 x 8 took its tilt on tuning seeds 100-103
# from 3.2 to 1.4 deg mean (with agree_iou 0.95 and the drawn prism, see meshes.pancake_mesh).
TRACK_LEARNING_RATES = {'translation': 5e-4, 'rotation': 2e-2, 'joint_angles': 1e-2, 'color': 1e-2}
# A held target's base is where the gripper holds it: only a small slip of the grasp is fitted.
HELD_LEARNING_RATES = {**TRACK_LEARNING_RATES, 'translation': 1e-4, 'rotation': 5e-4}
# Windows per target (binned px): the thread is long and 3 mm thin, so it gets more of the camera's own pixels.
TARGET_WINDOW_PX = {'thread': (256, 192)}
MIN_VISIBLE_PX = 20                # fewer target pixels in the window: nothing to fit, keep the prediction
RIDE_HEIGHT_M = 0.04               # an object this close above the held one's top rides on it
# A target riding on a turning blade tips over the blade's free edge: besides carried and left it is
# predicted turned on by these angles about that edge (the blade's own turning axis through it), for
# the check to choose. Tuning seeds 100-103: PyBullet's pancake turned 13, 40 and 42 deg in its last
# three steps while the blade turned 3-5 deg.
TIP_ANGLES_RAD = tuple(np.radians([10.0, 20.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0]))
TIP_MIN_TURN_RAD = np.radians(1.0)    # the blade must be turning
TIP_REACH_M = 0.12                    # a target whose centre is this close to the edge may tip over it
TIP_IOU_MARGIN = 0.05                 # a tip is kept only if it agrees this much better than carried and left
MAX_RENDERERS = 3                  # one per binning in use
# Render vs camera mask below LOST_IOU: the target moved further than predicted, step sizes x factor.
# Tuning seeds 100-107 (a falling pancake turns 13-40 deg per step): 0.5 and x4 left its tilt 1.19 deg
# mean (7.4 in each episode's last three steps); 0.9 and x2 0.99 (4.4); 0.85 or 0.95 and x2, or x3, less.
LOST_IOU = 0.9
LOST_RATE_FACTOR = 2.0
# fit_view keeps a resting target whose best model explains this much of the view. On tuning seeds
# 100-105 the hole block's coarse fits agreed at 0.986-0.999 and a refit moved them 0.1-0.8 mm further
# off; the pancake's agreed at 0.91-0.93 while M drew the hull for the world's cylinder (a refit took
# 3.3 mm to 2.0 mm), and agree at >= 0.95 now that both draw the same prism.
FIT_VIEW_KEEP_IOU = 0.95
REINITIALISE_IOU = 0.1             # ... below this (a flipped pancake has landed): a new coarse model
# Loss (m) per rad^2 of mean squared change of the thread's joints from the prediction: one view
# shows 80-150 px of thread, and unanchored joints found lower losses 20 mm away from the truth.
SHAPE_WEIGHT_M_PER_RAD2 = 0.5


@dataclass(frozen=True)
class TrackConfig:
    """Per-step budget and rules of the tracker; the defaults meet 0.3 s per step on 2 cores."""

    iterations: int = 8                      # refit iterations per control step
    first_iterations: int = 20               # after the coarse model on an episode's first frame
    time_budget_s: float = 0.3               # per refit (the first frame's: 10x)
    # render vs camera mask: a static target this close is kept. 0.9 kept a pancake the blade had
    # begun to lift (IoU 0.91, 4-5 mm, 7 deg off); resting fits agree at 0.95-0.99.
    agree_iou: float = 0.95
    spp: int = 2                             # samples per pixel of the renders
    cloud_points: int = 300                  # camera points in the EMD
    shape_weight: float = SHAPE_WEIGHT_M_PER_RAD2
    # Refit a held target (the thread) at all? Off: from the task view 80-150 px of thread are seen,
    # and 20 iterations from the coarse model lowered the loss while raising the link error
    # (seeds 100-102: 6.6 -> 7.3, 3.3 -> 4.3, 4.2 -> 4.6 mm even with the shape term), so the
    # coarse model's shape is carried with the grasp instead.
    refit_held: bool = False
    window_px: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(TARGET_WINDOW_PX))
    learning_rates: dict[str, float] = field(default_factory=lambda: dict(TRACK_LEARNING_RATES))
    held_learning_rates: dict[str, float] = field(default_factory=lambda: dict(HELD_LEARNING_RATES))
    # Point-to-plane ICP of a rigid target onto the camera's depth after each refit, and of a kept
    # target if that raises the agreement (align.py). Seeds 100-107: pancake tilt 0.95 -> 0.27 deg
    # mean, 3.6 -> 0.7 deg p95; hole block 0.23 -> 0.06 deg; 'after' the refit beat 'before' it.
    align: bool = True

    def window_for(self, target: str) -> tuple[int, int]:
        return self.window_px.get(target, WINDOW_SIZE_PX)

    def __post_init__(self):
        if self.iterations < 1 or self.first_iterations < 1 or self.time_budget_s <= 0:
            raise ValueError('iterations and first_iterations must be >= 1 and time_budget_s > 0')
        if not 0.0 < self.agree_iou <= 1.0:
            raise ValueError(f'agree_iou must be in (0, 1], got {self.agree_iou}')


@dataclass(frozen=True)
class RobotState:
    """What the robot reports at a frame: its tool centre point (world) and finger opening (m)."""

    tcp: Pose
    opening_m: float


@dataclass
class TrackStep:
    """One tracking update: the model after it and what it took."""

    objects: dict[str, ObjectParams]
    action: str        # 'coarse', 'refit', 'kept' (checked, agreed), 'carried' (held, not refitted), 'unseen'
    iterations: int
    iou: float                       # render vs camera mask in the window, before the refit
    visible_px: int                  # target pixels in the window
    wall_time_s: float
    final_loss: float | None
    stages: Stopwatch
    window: Window | None = None
    prediction: str = ''       # the prediction the check kept: 'left', 'carried', 'tip <deg>', 'recentred'


class Tracker:
    """Keeps M's objects of one task in step with a camera through an episode."""

    def __init__(self, task: str, config: TrackConfig = TrackConfig(),
                 should_stop: Callable[[], bool] | None = None):
        """`should_stop()` true cuts a refit short after its current iteration (the node is stopping)."""
        check_task(task)
        self.task, self.target, self.held = task, TARGETS[task], HELD_OBJECTS[task]
        self.grasp = grasp_pose(task)          # the held object's frame in the tool centre point's
        self.config, self.should_stop = config, should_stop
        self.objects: dict[str, ObjectParams] = {}
        self.robot: RobotState | None = None
        self._renderers: dict[tuple, Renderer] = {}
        self._previous_target: ObjectParams | None = None
        self._edge = blade_edge(self.held)
        self._tips: list[dict[str, ObjectParams]] = []     # this step's tip hypotheses (held to a margin)
        self._labels: dict[int, str] = {}                  # id of a hypothesis's target -> its name
        self._kept: ObjectParams | None = None             # the target of the hypothesis the check kept
        self._tip_sense: float | None = None               # the sense the blade last turned in about its edge

    # --- the two entry points -------------------------------------------------------------------

    def start(self, observation: Observation, objects: dict[str, ObjectParams], robot: RobotState,
              coarse_seconds: float = 0.0) -> TrackStep:
        """An episode's first frame: `objects` holds the coarse initial model of the target (and the
        other objects as known); it is refitted for `first_iterations`."""
        self.objects = {name: _detached(p) for name, p in objects.items() if name not in HAND_PART_NAMES}
        self.robot, self._tip_sense, self._tips = robot, None, []
        return self._correct(observation, self.config.first_iterations, 10.0 * self.config.time_budget_s,
                             always_refit=True, extra_seconds=coarse_seconds)

    def fit_view(self, observation: Observation, objects: dict[str, ObjectParams], robot: RobotState) -> TrackStep:
        """Real2Sim from one view with no history: the given model of the target and a coarse model
        fitted to the view (a held target anchored at the robot's grasp) are checked against the
        view; the better one is kept if it agrees with the view (a resting target) and otherwise
        refitted as an episode's first frame."""
        start = time.perf_counter()
        self.objects = {name: _detached(p) for name, p in objects.items() if name not in HAND_PART_NAMES}
        self.robot = robot
        if self.target == self.held:     # its base is where the gripper holds it
            self.objects[self.target] = _placed(self.objects[self.target], robot.tcp.compose(self.grasp))
        candidates = [self.objects]
        coarse = self._coarse(observation)
        if coarse is not None:
            candidates.append({**self.objects, self.target: coarse})
        self.objects, iou = self._best_agreement(observation, candidates)
        if iou >= FIT_VIEW_KEEP_IOU and self.target != self.held:     # a refit would only add its own noise
            hand = hand_objects(robot.tcp, robot.opening_m)
            return TrackStep({**self.objects, **hand}, 'kept', 0, iou, int(observation.mask.sum()),
                             time.perf_counter() - start, None, Stopwatch())
        return self.start(observation, self.objects, robot, coarse_seconds=time.perf_counter() - start)

    def _best_agreement(self, observation: Observation, candidates: list[dict[str, ObjectParams]]
                        ) -> tuple[dict[str, ObjectParams], float]:
        hand = hand_objects(self.robot.tcp, self.robot.opening_m)
        camera = pose_matrix_from_quat(observation.camera_pose.position, observation.camera_pose.quaternion)
        ious = []
        for candidate in candidates:
            self.objects = candidate
            window = self.window(observation)
            ious.append(self._agreement(crop(observation, window), {**candidate, **hand}, camera,
                                        self._renderer(window, observation)))
        best = int(np.argmax(ious))
        return candidates[best], ious[best]

    def step(self, observation: Observation, robot: RobotState) -> TrackStep:
        """A later frame, after the robot executed a command and reached `robot`."""
        if self.robot is None:
            raise RuntimeError('Tracker.step before Tracker.start')
        stopwatch = Stopwatch()
        with timed(stopwatch, 'predict'):
            hypotheses = self.predict(robot)
        self.robot = robot
        result = self._correct(observation, self.config.iterations, self.config.time_budget_s, hypotheses=hypotheses)
        result.prediction = self._labels.get(id(self._kept), '')
        result.stages.merge(stopwatch)
        result.wall_time_s += stopwatch.seconds['predict']
        return result

    # --- 1. prediction --------------------------------------------------------------------------

    def predict(self, robot: RobotState) -> list[dict[str, ObjectParams]]:
        """The objects after the tool moved from self.robot.tcp to robot.tcp (hand parts excluded):
        the likelier prediction first (the target carried if it rides on the held object, else left
        where it was), then for a target that is not held the other one, for the check to choose."""
        motion = robot.tcp.compose(self.robot.tcp.inverse())
        self._previous_target = self.objects[self.target]
        base = {name: moved(params, motion) if name == self.held else params for name, params in self.objects.items()}
        if self.target == self.held:
            self._labels = {id(base[self.target]): 'carried'}
            return [base]
        carried = {**base, self.target: moved(self.objects[self.target], motion)}
        self._tips = [{**base, self.target: moved(carried[self.target], tip)}
                      for tip in self._tips_over_edge(base[self.held], motion)]
        self._labels = {id(base[self.target]): 'left', id(carried[self.target]): 'carried',
                        **{id(tip[self.target]): f'tip {np.degrees(angle):.0f}'
                           for tip, angle in zip(self._tips, TIP_ANGLES_RAD)}}
        likely = [carried, base] if self.rides(self.target) else [base, carried]
        return [*likely, *self._tips]

    def _tips_over_edge(self, held: ObjectParams, motion: Pose) -> list[Pose]:
        """World motions turning a riding target on about the held blade's free edge, in the sense the
        blade turned (none for a held object without an edge, or a blade that did not turn)."""
        if self._edge is None:
            return []
        turn = np.asarray(quat_to_axis_angle(motion.quaternion), dtype=float)
        blade = pose_of(held)
        axis = blade.rotation @ self._edge[1]
        if abs(turn @ axis) >= TIP_MIN_TURN_RAD:     # a blade that stopped turning: the pancake falls on
            self._tip_sense = float(np.sign(turn @ axis))
        if self._tip_sense is None:
            return []
        pivot = blade.apply(self._edge[0])
        if np.linalg.norm(pose_of(self.objects[self.target]).position - pivot) > TIP_REACH_M:
            return []
        motions = []
        for angle in TIP_ANGLES_RAD:
            turned = Rotation.from_rotvec(self._tip_sense * angle * axis)
            motions.append(Pose(pivot - turned.apply(pivot), turned.as_quat()))
        return motions

    def rides(self, name: str) -> bool:
        """Whether `name` rests on the held object: its centre inside the held object's footprint
        (world x, y) and at most RIDE_HEIGHT_M above its top."""
        if name == self.held or self.held not in self.objects:
            return False
        vertices = self.objects[self.held].world_vertices().detach().numpy()
        centre = self.objects[name].translation.detach().numpy()
        lower, upper = vertices.min(axis=0), vertices.max(axis=0)
        return bool(np.all(centre[:2] >= lower[:2]) and np.all(centre[:2] <= upper[:2])
                    and upper[2] <= centre[2] <= upper[2] + RIDE_HEIGHT_M)

    # --- 2.-4. window, check, refit ------------------------------------------------------------

    def _correct(self, observation: Observation, iterations: int, budget_s: float, always_refit: bool = False,
                 extra_seconds: float = 0.0, hypotheses: list[dict[str, ObjectParams]] | None = None) -> TrackStep:
        start, stopwatch = time.perf_counter(), Stopwatch()
        hypotheses = hypotheses or [self.objects]
        hand = hand_objects(self.robot.tcp, self.robot.opening_m)
        with timed(stopwatch, 'window'):
            self.objects = hypotheses[0]
            window = self.window(observation)
            seen = crop(observation, window)
            renderer = self._renderer(window, observation)
            camera = pose_matrix_from_quat(observation.camera_pose.position, observation.camera_pose.quaternion)
        visible = int(seen.mask.sum())
        if visible < MIN_VISIBLE_PX:
            return self._result({**self.objects, **hand}, 'unseen', 0, 0.0, visible, start, None, stopwatch, window,
                                extra_seconds)
        with timed(stopwatch, 'check'):
            ious = []
            for hypothesis in hypotheses:        # in order of likelihood: the first that agrees ends the check
                ious.append(self._agreement(seen, {**hypothesis, **hand}, camera, renderer))
                if ious[-1] >= self.config.agree_iou:
                    break
            if max(ious) < self.config.agree_iou and self.target != self.held:
                recentred = self._recentred(seen, hypotheses[int(np.argmax(ious))], hand, camera, renderer)
                if recentred is not None:
                    self._labels[id(recentred[self.target])] = 'recentred'
                    hypotheses, ious = [*hypotheses, recentred], [*ious, self._agreement(
                        seen, {**recentred, **hand}, camera, renderer)]
        margins = [TIP_IOU_MARGIN if any(h is tip for tip in self._tips) else 0.0 for h in hypotheses[:len(ious)]]
        best = int(np.argmax(np.subtract(ious, margins)))
        self.objects, iou = hypotheses[best], ious[best]
        self._kept = self.objects[self.target]
        if iou < REINITIALISE_IOU and self.target != self.held and not always_refit:
            with timed(stopwatch, 'coarse model'):
                fit = self._coarse(observation)
            if fit is not None:
                self.objects = {**self.objects, self.target: fit}
                return self._correct(observation, iterations, budget_s, True,
                                     extra_seconds + time.perf_counter() - start)
        scene = {**self.objects, **hand}
        if self.target == self.held and not self.config.refit_held:
            return self._result(scene, 'coarse' if always_refit else 'carried', 0, iou, visible, start, None,
                                stopwatch, window, extra_seconds)
        resting = self.target != self.held and self.objects[self.target] is self._resting_target(hypotheses)
        if resting and iou >= self.config.agree_iou and not always_refit:
            aligned = self._aligned(observation, window, scene[self.target], stopwatch)
            # ICP may slide a resting block along its faces: its move is kept unless it agrees less
            if aligned is not None and self._agreement(seen, {**scene, self.target: aligned}, camera, renderer) >= iou:
                scene[self.target] = self.objects[self.target] = aligned
            return self._result(scene, 'kept', 0, iou, visible, start, None, stopwatch, window, extra_seconds)
        rates = dict(self.config.held_learning_rates if self.target == self.held else self.config.learning_rates)
        if iou < LOST_IOU:      # further off than predicted: larger steps to catch up
            rates = {name: LOST_RATE_FACTOR * rate for name, rate in rates.items()}
        config = OptimiseConfig(max_iterations=iterations, time_budget_s=budget_s, learning_rates=rates,
                                final_learning_rate_fraction=0.5)
        run = self._refit(seen, scene, camera, renderer, config, stopwatch)
        self.objects[self.target] = with_latents(scene[self.target], run.latents)
        aligned = self._aligned(observation, window, self.objects[self.target], stopwatch)
        self.objects[self.target] = aligned or self.objects[self.target]
        return self._result({**scene, self.target: self.objects[self.target]}, 'coarse' if always_refit else 'refit',
                            run.iterations, iou, visible, start, run.final_loss, stopwatch, window, extra_seconds)

    def _aligned(self, observation: Observation, window: Window, target: ObjectParams,
                 stopwatch: Stopwatch) -> ObjectParams | None:
        """A rigid `target` moved by point-to-plane ICP onto the camera's depth (align.py); None if
        it is articulated, alignment is off or the camera's points do not find it."""
        if target.joint_angles is not None or not self.config.align:
            return None
        with timed(stopwatch, 'align'):
            rng = np.random.default_rng(0)
            fit = align(camera_points(observation, window, rng), target, observation.camera_pose.position, rng)
        return None if fit is None else moved(target, fit.motion)

    def _coarse(self, observation: Observation) -> ObjectParams | None:
        """A coarse model of the target from the whole frame, or None if the view shows too little."""
        try:
            return _detached(coarse_model(observation, self.objects[self.target]).params)
        except ValueError:
            return None

    def _resting_target(self, hypotheses: list[dict[str, ObjectParams]]) -> ObjectParams | None:
        """The target's latents in the hypothesis that left it where it was (None if there is none)."""
        previous = [h[self.target] for h in hypotheses if h[self.target] is self._previous_target]
        return previous[0] if previous else None

    def window(self, observation: Observation) -> Window:
        """The part of the frame the target's model projects into, binned to the target's window size."""
        frame, size = observation.intrinsics, self.config.window_for(self.target)
        size = (min(size[0], frame.width), min(size[1], frame.height))     # a frame smaller than the window
        pixels = project(self.objects[self.target].world_vertices().detach().numpy(), observation.camera_pose, frame)
        if len(pixels) == 0:
            return window_around(frame, (frame.cx, frame.cy), binning_for(0.0, size), size)
        low, high = pixels.min(axis=0), pixels.max(axis=0)
        scale = binning_for(float(np.max(high - low)), size)
        while scale > 1 and (size[0] * scale > frame.width or size[1] * scale > frame.height):
            scale -= 2
        return window_around(frame, tuple(0.5 * (low + high)), scale, size)

    def _renderer(self, window: Window, observation: Observation) -> Renderer:
        intrinsics = window.renderer_intrinsics(observation.intrinsics)
        key = (intrinsics.fx, intrinsics.fy, intrinsics.width, intrinsics.height)
        if key not in self._renderers:
            if len(self._renderers) >= MAX_RENDERERS:
                self._renderers.pop(next(iter(self._renderers)))
            self._renderers[key] = Renderer(intrinsics, spp=self.config.spp)
        return self._renderers[key]

    def _agreement(self, seen: Observation, scene: dict[str, ObjectParams], camera: torch.Tensor,
                   renderer: Renderer) -> float:
        """IoU of M's mask of the target and the camera's, where M explains what the camera sees."""
        real_mask, model_mask, _ = self._masks(seen, scene, camera, renderer)
        union = (model_mask | real_mask).sum().item()
        return float((model_mask & real_mask).sum().item() / union) if union else 0.0

    def _masks(self, seen: Observation, scene: dict[str, ObjectParams], camera: torch.Tensor, renderer: Renderer
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The camera's target mask, M's (less what an unmodelled occluder hides) and M's depth, in the window."""
        k = seen.intrinsics
        with torch.no_grad():
            depth, hits = renderer.raycast(scene, camera, (k.cx, k.cy))
        real_mask = torch.as_tensor(seen.mask)
        occluded = unmodelled_occlusion(real_mask.float(), torch.as_tensor(seen.depth_m, dtype=torch.float64), depth)
        return real_mask, torch.as_tensor(hits == list(scene).index(self.target)) & ~occluded, depth

    def _recentred(self, seen: Observation, objects: dict[str, ObjectParams], hand: dict[str, ObjectParams],
                   camera: torch.Tensor, renderer: Renderer) -> dict[str, ObjectParams] | None:
        """`objects` with the target moved by the offset between the centroids of the camera's target
        points and M's (both back-projected in the window): a jump no small refit step could make."""
        real_mask, model_mask, depth = self._masks(seen, {**objects, **hand}, camera, renderer)
        k = seen.intrinsics
        real = depth_to_points(torch.as_tensor(seen.depth_m, dtype=torch.float64), real_mask.float(), k.fx, k.fy,
                               k.cx, k.cy)
        model = depth_to_points(depth.to(torch.float64), model_mask.float(), k.fx, k.fy, k.cx, k.cy)
        if len(real) < MIN_VISIBLE_PX or len(model) < MIN_VISIBLE_PX:
            return None
        offset = camera[:3, :3].to(torch.float64) @ (real.mean(dim=0) - model.mean(dim=0))     # world frame
        target = objects[self.target]
        return {**objects, self.target: replace(target, translation=target.translation + offset)}

    def _refit(self, seen: Observation, scene: dict[str, ObjectParams], camera: torch.Tensor, renderer: Renderer,
               config: OptimiseConfig, stopwatch: Stopwatch) -> OptimiseResult:
        """Real2Sim's point-cloud term (Eq. 3) plus a depth term on the pixels both masks share, through
        ray-cast depth only: no image passes, so one iteration costs a few tens of milliseconds."""
        k, target = seen.intrinsics, self.target
        generator = torch.Generator().manual_seed(0)
        with timed(stopwatch, 'camera cloud'):
            real = real_targets(seen, self.config.cloud_points, generator)
        # The thread keeps its predicted shape unless something bends it.
        anchor = None if scene[target].joint_angles is None else scene[target].joint_angles.detach().clone()
        evaluate = raycast_evaluator(scene, target, camera, renderer, real, self._samples(scene[target]), k,
                                     stopwatch, anchor, self.config.shape_weight)
        return optimise(latents_of(scene[target]), evaluate, config, stopwatch=stopwatch, should_stop=self.should_stop)

    def _samples(self, params: ObjectParams):
        key = id(params.mesh)
        if getattr(self, '_samples_key', None) != key:
            self._samples_key = key
            self._surface = surface_samples(params.mesh, SURFACE_SAMPLES, np.random.default_rng(0))
        return self._surface

    def _result(self, scene, action, iterations, iou, visible, start, loss, stopwatch, window, extra_seconds):
        return TrackStep(scene, action, iterations, iou, visible, time.perf_counter() - start + extra_seconds, loss,
                         stopwatch, window)


def blade_edge(held: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The free edge of a held blade in its object frame: the middle of the edge on the upper face,
    and the edge's direction (samrl_description.objects.SpatulaSpec's frame); None if not a blade."""
    if held != 'spatula':
        return None
    spec = SceneObjects().spatula
    return np.array([spec.blade_length_m, 0.0, 0.5 * spec.blade_thickness_m]), np.array([0.0, 1.0, 0.0])


def pose_of(params: ObjectParams) -> Pose:
    """The world pose of a rigid object's latents (translation, rotation vector)."""
    return Pose(params.translation.detach().numpy().astype(float),
                axis_angle_to_quat(params.rotation.detach().numpy().astype(float)))


def moved(params: ObjectParams, motion: Pose) -> ObjectParams:
    """`params` carried rigidly by a world-frame `motion` (left-composed)."""
    return _placed(params, motion.compose(pose_of(params)))


def _placed(params: ObjectParams, pose: Pose) -> ObjectParams:
    """`params` with its base frame at the world `pose`."""
    return replace(params, translation=torch.as_tensor(pose.position, dtype=torch.float64),
                   rotation=torch.as_tensor(np.asarray(quat_to_axis_angle(pose.quaternion), dtype=float),
                                            dtype=torch.float64))


def _detached(params: ObjectParams) -> ObjectParams:
    return replace(params, translation=params.translation.detach().clone(),
                   rotation=params.rotation.detach().clone(), color=params.color.detach().clone(),
                   joint_angles=None if params.joint_angles is None else params.joint_angles.detach().clone())
