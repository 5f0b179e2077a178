"""`samrl bench real2sim`: how well one Real2Sim update recovers the model from a PyBullet view.

Per task and seed: the PyBullet world (TinyRenderer, a different renderer from the model's
Mitsuba) gives a segmented RGB-D close view of the task's object; one update runs; errors are
measured against the true state. The update starts from (`init`):

- 'perturbed': the true state with the object's pose perturbed by PERTURB_TRANSLATION_M in a
  random direction and PERTURB_ROTATION_RAD about a random axis, the thread's joints by a
  random bend;
- 'coarse': the coarse model fitted to the same view (coarse.py), whose prior knows nothing of
  the object's state: a hole block or pancake at the origin with zero yaw, a straight thread
  held at the Panda's tool centre point (the robot's pose is known; the view hides the grasp).
  The coarse fit's own error is reported as the initial error.

Rotation errors are also given up to the object's symmetry (`rotation_sym_deg`): the hole block
looks the same every quarter turn about its z axis and the pancake under any turn about it, so
for them only that error is observable.

Run standalone with `python -m samrl_model.real2sim.bench --help`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from samrl_description.tasks import TARGETS
from samrl_model.real2sim.coarse import YAW_PERIOD_RAD, coarse_model
from samrl_model.real2sim.errors import M_TO_MM, errors, symmetric_rotation_error_deg  # noqa: F401 (re-exported)
from samrl_model.real2sim.optimise import OptimiseConfig
from samrl_model.real2sim.update import Real2SimConfig, update_model
from samrl_model.render import ObjectParams, Renderer
from samrl_model.rotations import axis_angle_matrix, pose_matrix_from_quat, rotvec_of
from samrl_model.sim_adapter import capture, objects_from_world, snapshot
from samrl_sim.world import World

PERTURB_TRANSLATION_M = 0.02
PERTURB_ROTATION_RAD = np.radians(10.0)
THREAD_BEND_RAD = 0.15          # each joint of the thread bent by up to this much
MIN_VISIBLE_PIXELS = 50         # fewer target pixels than this: the view shows too little to fit
INITS = ('perturbed', 'coarse')
# 'view': Tracker.fit_view (the start and a coarse fit checked against the view, the better refitted
# through windows of the frame with the hand in M); 'gradient': update_model from the start alone.
UPDATES = ('view', 'gradient')
LOSSES = ('raycast', 'images')      # update='gradient': Real2SimConfig.loss
VIEWS = ('close', 'task')           # a close view of the target, or the task's own camera view
TRACK_ACTIONS = ('coarse', 'refit', 'kept', 'carried', 'unseen')     # TrackStep.action
END_STEPS = 3                   # an episode's last steps, reported apart (`by_phase`)


@dataclass(frozen=True)
class BenchConfig:
    width: int = 128
    height: int = 96
    iterations: int = 40
    time_budget_s: float = 60.0
    init: str = 'perturbed'         # INITS: where the update starts
    update: str = 'view'            # UPDATES: which update runs
    loss: str = 'raycast'           # LOSSES: the gradient update's loss
    view: str = 'close'             # VIEWS: where the camera looks from

    def __post_init__(self):
        for name, value, allowed in (('init', self.init, INITS), ('update', self.update, UPDATES),
                                     ('loss', self.loss, LOSSES),
                                     ('view', self.view, VIEWS)):
            if value not in allowed:
                raise ValueError(f'{name} must be one of {", ".join(allowed)}, got {value!r}')


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def perturb(params: ObjectParams, rng: np.random.Generator) -> ObjectParams:
    """The true latents moved 2 cm and turned 10 deg (composed on the left, about a random axis)."""
    translation = params.translation + torch.as_tensor(PERTURB_TRANSLATION_M * _unit(rng))
    turn = axis_angle_matrix(torch.as_tensor(PERTURB_ROTATION_RAD * _unit(rng)))
    rotation = rotvec_of(turn @ axis_angle_matrix(params.rotation))
    angles = params.joint_angles
    if angles is not None:
        angles = angles + torch.as_tensor(rng.uniform(-THREAD_BEND_RAD, THREAD_BEND_RAD, len(angles)))
    return replace(params, translation=translation.detach(), rotation=rotation.detach(),
                   joint_angles=None if angles is None else angles.detach())


def uninformed_prior(world, truth: ObjectParams) -> ObjectParams:
    """What the coarse fit may know beforehand: the object's shape and, for the thread, the grasp
    (the Panda's tool centre point, where the grasped segment sits); nothing of its state."""
    zero = torch.zeros(3, dtype=torch.float64)
    if truth.joint_angles is None:
        return replace(truth, translation=zero, rotation=zero)
    tcp = world.tcp_pose()
    tcp_matrix = pose_matrix_from_quat(tcp.position, tcp.quaternion)
    return replace(truth, translation=tcp_matrix[:3, 3], rotation=rotvec_of(tcp_matrix[:3, :3]),
                   joint_angles=torch.zeros_like(truth.joint_angles))


def _start(world, observation, truth: ObjectParams, seed: int, init: str) -> tuple[ObjectParams, dict]:
    """The update's starting latents of the target, and what producing them cost."""
    if init == 'perturbed':
        return perturb(truth, np.random.default_rng(seed)), {}
    start = time.perf_counter()
    fit = coarse_model(observation, uninformed_prior(world, truth))
    return fit.params, {'coarse': {'points': fit.points, 'residual_mm': fit.residual_m * M_TO_MM,
                                   'see_through': fit.see_through, 'wall_time_s': time.perf_counter() - start}}


def run_case(world, task: str, seed: int, config: BenchConfig, trackers: dict | None = None) -> dict:
    """One seed; a seed whose object cannot be seen from the close view is reported as skipped."""
    world.reset(seed)
    target = TARGETS[task]
    try:
        observation = (capture(world, target, config.width, config.height) if config.view == 'close'
                       else snapshot(world, target, config.width, config.height))
    except RuntimeError as error:       # the camera arm cannot reach this seed's close view
        return {'task': task, 'seed': seed, 'skipped': str(error)}
    if observation.mask.sum() < MIN_VISIBLE_PIXELS:
        return {'task': task, 'seed': seed, 'skipped': f'{target} shows {int(observation.mask.sum())} pixels'}
    objects, camera = objects_from_world(world)
    truth = objects[target]
    start_params, extra = _start(world, observation, truth, seed, config.init)
    start = time.perf_counter()
    if config.update == 'view':
        updated, iterations, final_loss = _fit_view(world, task, observation, {**objects, target: start_params},
                                                    config, {} if trackers is None else trackers)
    else:
        r2s = Real2SimConfig(optimise=OptimiseConfig(max_iterations=config.iterations,
                                                     time_budget_s=config.time_budget_s), seed=seed,
                             loss=config.loss)
        updated, result = update_model(observation, {**objects, target: start_params}, camera,
                                       Renderer(observation.intrinsics), r2s)
        iterations, final_loss = result.iterations, result.final_loss
    wall = time.perf_counter() - start
    period = YAW_PERIOD_RAD.get(target)
    return {'task': task, 'seed': seed, 'init': config.init, 'initial': errors(start_params, truth, period),
            'final': errors(updated[target], truth, period), 'iterations': iterations,
            'wall_time_s': wall, 'final_loss': final_loss, **extra}


def _fit_view(world, task: str, observation, objects: dict[str, ObjectParams], config: BenchConfig, trackers: dict):
    """Tracker.fit_view with the bench's iteration and time budget; the objects, iterations, loss. One
    tracker per task serves every seed, as one model node serves every update (its renderers are built once)."""
    from samrl_model.real2sim.track import RobotState, TrackConfig, Tracker
    if task not in trackers:
        trackers[task] = Tracker(task, TrackConfig(first_iterations=config.iterations,
                                                   time_budget_s=config.time_budget_s / 10))
    step = trackers[task].fit_view(observation, objects, RobotState(world.tcp_pose(), world.panda.gripper_width()))
    return step.objects, step.iterations, step.final_loss


def summarise(all_cases: list[dict]) -> dict:
    cases = [c for c in all_cases if 'skipped' not in c]
    if not cases:
        return {'seeds': 0, 'skipped': len(all_cases)}
    keys = cases[0]['final'].keys()
    summary = {f'{k}_{stat}': float(fn([c['final'][k] for c in cases]))
               for k in keys for stat, fn in (('mean', np.mean), ('median', np.median), ('max', np.max))}
    summary.update({f'initial_{k}_mean': float(np.mean([c['initial'][k] for c in cases])) for k in keys})
    summary['iterations_mean'] = float(np.mean([c['iterations'] for c in cases]))
    summary['wall_time_s_mean'] = float(np.mean([c['wall_time_s'] for c in cases]))
    if 'coarse' in cases[0]:
        summary['coarse_wall_time_s_mean'] = float(np.mean([c['coarse']['wall_time_s'] for c in cases]))
    summary['seeds'] = len(cases)
    summary['skipped'] = len(all_cases) - len(cases)
    return summary


def run_benchmark(tasks: tuple[str, ...], seeds: range, config: BenchConfig = BenchConfig(),
                  progress: bool = True) -> dict:
    torch.set_num_threads(2)
    results, trackers = {}, {}
    for task in tasks:
        cases = _per_seed(task, seeds, 'real2sim', 'seed', progress,
                          lambda world, seed: run_case(world, task, seed, config, trackers))
        results[task] = {'summary': summarise(cases), 'cases': cases}
    return results


def _per_seed(task: str, seeds: range, name: str, unit: str, progress: bool, run) -> list[dict]:
    """run(world, seed) for every seed in one world of `task`, with a progress bar."""
    world = World(task)
    iterator = seeds
    if progress:
        from tqdm import tqdm
        iterator = tqdm(seeds, desc=f'{name} {task}', unit=unit)
    try:
        return [run(world, seed) for seed in iterator]
    finally:
        world.close()


def format_summary(task: str, summary: dict, init: str = 'perturbed') -> str:
    """One line per task: error after the update (mean), from the start's error, and the costs."""
    if not summary['seeds']:
        return f'{task:>17}: every seed skipped (object not visible)'

    def pose(prefix: str) -> str:
        text = f'{summary[prefix + "translation_mm_mean"]:.2f} mm / {summary[prefix + "rotation_deg_mean"]:.2f} deg'
        if prefix + 'rotation_sym_deg_mean' in summary:
            text += f' ({summary[prefix + "rotation_sym_deg_mean"]:.2f} deg up to symmetry)'
        if prefix + 'thread_mm_mean' in summary:
            text += f', thread {summary[prefix + "thread_mm_mean"]:.2f} mm'
        return text

    coarse = f', coarse fit {summary["coarse_wall_time_s_mean"]:.2f} s' if 'coarse_wall_time_s_mean' in summary else ''
    return (f'{task:>17}: {pose("")} (mean; from {init} {pose("initial_")}), {summary["iterations_mean"]:.0f} '
            f'iterations, {summary["wall_time_s_mean"]:.1f} s per update{coarse}, {summary["seeds"]} seeds '
            f'({summary["skipped"]} skipped: object hidden)')


# --- tracking through oracle episodes (`--mode track`) -------------------------------------------

@dataclass(frozen=True)
class TrackBenchConfig:
    """Camera frames at the task's own view, at the camera's resolution; masks from the simulator
    ('sim') or from the shipped Mask R-CNN ('maskrcnn')."""

    width: int = 640
    height: int = 480
    masks: str = 'sim'


def run_track_episode(world, task: str, seed: int, config: TrackBenchConfig, tracker_config,
                      segment=None) -> dict:
    """One seeded oracle episode; the model is tracked at every control step and compared with the truth."""
    from samrl_model.real2sim.track import RobotState, Tracker
    from samrl_sim.oracles import make_oracle

    target, period = TARGETS[task], YAW_PERIOD_RAD.get(TARGETS[task])
    state = world.reset(seed)
    oracle = make_oracle(task)
    oracle.reset(world)

    def frame():
        observation = snapshot(world, target, config.width, config.height)
        return observation if segment is None else replace(observation, mask=segment(observation))

    def robot():
        return RobotState(world.tcp_pose(), world.panda.gripper_width())

    observation, truth = frame(), objects_from_world(world)[0]
    start = time.perf_counter()
    coarse = coarse_model(observation, uninformed_prior(world, truth[target]))
    tracker = Tracker(task, tracker_config)
    steps = [_track_record(tracker.start(observation, {**truth, target: coarse.params}, robot(),
                                         time.perf_counter() - start), target, truth[target], period, 0)]
    rejected = 0
    while not state.success and not state.truncated and rejected <= world.task.max_episode_steps:
        result = world.step(oracle.act(world))
        rejected += not result.accepted
        state = result.state if result.accepted else world.hold()
        observation, truth = frame(), objects_from_world(world)[0]
        steps.append(_track_record(tracker.step(observation, robot()), target, truth[target], period, state.step))
    return {'task': task, 'seed': seed, 'success': bool(state.success), 'steps': steps}


def _track_record(step, target: str, truth: ObjectParams, period, index: int) -> dict:
    return {'step': index, 'action': step.action, 'prediction': step.prediction, 'iterations': step.iterations,
            'iou': step.iou,
            'visible_px': step.visible_px, 'wall_time_s': step.wall_time_s,
            'scale': step.window.scale if step.window else None,
            'stages_s': dict(step.stages.seconds), 'error': errors(step.objects[target], truth, period)}


def summarise_track(episodes: list[dict]) -> dict:
    """Time per step (mean, p95), mean stage seconds per step, errors over every step (mean, p95, max)."""
    steps = [s for e in episodes for s in e['steps']]
    control = np.array([s['wall_time_s'] for s in steps if s['step'] > 0])     # the control-rate updates
    first = np.array([s['wall_time_s'] for s in steps if s['step'] == 0])      # coarse model + its refit
    summary = {'episodes': len(episodes), 'steps': len(steps),
               'success_rate': float(np.mean([e['success'] for e in episodes])),
               'time_s_mean': float(control.mean()), 'time_s_p95': float(np.percentile(control, 95)),
               'first_frame_time_s_mean': float(first.mean()),
               'time_s_mean_with_first_frames': float(np.mean([s['wall_time_s'] for s in steps])),
               'actions': {a: sum(s['action'] == a for s in steps) for a in TRACK_ACTIONS}}
    stages = {}
    for s in steps:
        for name, seconds in s['stages_s'].items():
            stages[name] = stages.get(name, 0.0) + seconds / len(steps)
    summary['stage_s_per_step'] = dict(sorted(stages.items(), key=lambda item: -item[1]))
    for key in steps[0]['error']:
        values = np.array([s['error'][key] for s in steps])
        summary[f'{key}_mean'], summary[f'{key}_p95'] = float(values.mean()), float(np.percentile(values, 95))
        summary[f'{key}_max'] = float(values.max())
    later = [s for s in steps if s['step'] > 0]
    if later:
        summary['translation_mm_max_after_first'] = float(max(s['error']['translation_mm'] for s in later))
    summary['by_phase'] = _errors_by_phase(episodes)
    return summary


def _errors_by_phase(episodes: list[dict]) -> dict:
    """Errors (mean, p95) over each episode's last END_STEPS steps and over the rest: a flipped
    pancake's last steps, where it falls off the blade, differ from everything before them."""
    phases = {'end': [], 'before_end': []}
    for episode in episodes:
        for index, step in enumerate(episode['steps']):
            phases['end' if index >= len(episode['steps']) - END_STEPS else 'before_end'].append(step['error'])
    result = {'end_steps': END_STEPS}
    for phase, errors_ in phases.items():
        result[phase] = {'steps': len(errors_)}
        for key in (errors_[0] if errors_ else {}):
            values = np.array([e[key] for e in errors_])
            result[phase][f'{key}_mean'] = float(values.mean())
            result[phase][f'{key}_p95'] = float(np.percentile(values, 95))
    return result


def run_track_benchmark(tasks: tuple[str, ...], seeds: range, config: TrackBenchConfig = TrackBenchConfig(),
                        tracker_config=None, progress: bool = True) -> dict:
    from samrl_model.real2sim.track import TrackConfig
    torch.set_num_threads(2)
    tracker_config = tracker_config or TrackConfig()
    segment = _maskrcnn_segmenter() if config.masks == 'maskrcnn' else None
    results = {}
    for task in tasks:
        masks = None if segment is None else segment(task)
        episodes = _per_seed(task, seeds, 'track', 'episode', progress,
                             lambda world, seed: run_track_episode(world, task, seed, config, tracker_config, masks))
        results[task] = {'summary': summarise_track(episodes), 'episodes': episodes}
    return results


def _maskrcnn_segmenter():
    """segment(task) -> (observation -> target mask) with the shipped Mask R-CNN and its refiner."""
    from samrl_description.tasks import TASK_OBJECTS
    from samrl_perception.segmentation.refine import DEFAULT_REFINER
    from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT, MaskRCNNSegmenter
    segmenter = MaskRCNNSegmenter(DEFAULT_CHECKPOINT, objects=sorted({o for t in TASK_OBJECTS.values() for o in t}),
                                  refiner=DEFAULT_REFINER)

    def for_task(task: str):
        def segment(observation):
            rgb = np.clip(observation.rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return segmenter(rgb, TASK_OBJECTS[task]).mask(TARGETS[task]).astype(bool)
        return segment
    return for_task


def format_track_summary(task: str, summary: dict) -> str:
    text = (f'{task:>17}: {summary["time_s_mean"]:.3f} s per step (p95 {summary["time_s_p95"]:.3f}; first frame '
            f'{summary["first_frame_time_s_mean"]:.2f}); error mean / '
            f'p95 / max {summary["translation_mm_mean"]:.2f} / {summary["translation_mm_p95"]:.2f} / '
            f'{summary["translation_mm_max"]:.2f} mm')
    rotation = 'rotation_sym_deg' if 'rotation_sym_deg_mean' in summary else 'rotation_deg'
    text += (f', {summary[rotation + "_mean"]:.2f} / {summary[rotation + "_p95"]:.2f} / '
             f'{summary[rotation + "_max"]:.2f} deg')
    if 'thread_mm_mean' in summary:
        text += (f', thread {summary["thread_mm_mean"]:.2f} / {summary["thread_mm_p95"]:.2f} / '
                 f'{summary["thread_mm_max"]:.2f} mm')
    text += f' ({summary["episodes"]} episodes, {summary["steps"]} steps, actions {summary["actions"]})'
    phases = summary['by_phase']
    for phase, name in (('before_end', f'before the last {phases["end_steps"]} steps'),
                        ('end', f'last {phases["end_steps"]} steps')):
        if phases[phase]['steps']:
            errors_ = phases[phase]
            text += (f'\n{"":>19}{name}: {errors_["translation_mm_mean"]:.2f} / '
                     f'{errors_["translation_mm_p95"]:.2f} mm, '
                     f'{errors_[rotation + "_mean"]:.2f} / {errors_[rotation + "_p95"]:.2f} deg')
    return text
