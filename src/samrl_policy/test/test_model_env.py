"""Episodes in M: starts from the task's randomisation, steps like the gym env, renders what the
networks see, with gradients to the camera pose when asked (the view step needs them)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from samrl_description.default_views import default_camera_pose
from samrl_description.tasks import TASK_NAMES, nominal_scene
from samrl_model.physics.sync import model_state
from samrl_model.rotations import pose_matrix_from_quat
from samrl_policy.model_env import ACTION_DIM, PROPRIO_SIZE, EpisodeStart, ModelEnv, PolicyObservation, StepOutcome

IMAGE_SIZE = (48, 64)                # (height, width): not square, so the axes cannot be swapped unseen
SEED = 5
OBSERVE_BUDGET_S = 2.0               # generous: measured 0.06 s at 64x64 after the first call
STILL_STEPS = 10                      # 1 s
STILL_TOLERANCE_RAD = 1e-3            # measured: under 1e-4
TABLE_TOLERANCE_M = 2e-3            # world points of rendered pixels: none below the table top (z = 0)
CENTROID_SPREAD_M = 0.025           # the target's visible faces differ between views (measured 17 mm)
MOVE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])   # +x at the per-step limit


def _default_view(task: str) -> torch.Tensor:
    pose = default_camera_pose(task)
    return pose_matrix_from_quat(pose.position, pose.quaternion)


@pytest.fixture(scope='module')
def envs() -> dict[str, ModelEnv]:
    return {task: ModelEnv(task, image_size=IMAGE_SIZE, seed=SEED) for task in TASK_NAMES}


@pytest.mark.parametrize('task', TASK_NAMES)
def test_observe_returns_the_documented_image_and_proprioception(envs, task):
    env = envs[task]
    env.observe(_default_view(task))                 # Mitsuba compiles its kernels on the first call
    start = time.perf_counter()
    obs = env.observe(_default_view(task))
    elapsed = time.perf_counter() - start
    assert isinstance(obs, PolicyObservation)
    assert obs.image.shape == (5, *IMAGE_SIZE) and obs.image.dtype == torch.float32
    assert obs.proprio.shape == (PROPRIO_SIZE,) and obs.proprio.dtype == torch.float32
    rgb, depth, mask = obs.image[:3], obs.image[3], obs.image[4]
    assert 0.0 <= float(rgb.min()) and float(rgb.max()) <= 1.0
    assert float(depth.max()) > 0.0                  # the table at least
    assert float(mask.sum()) > 0.0                   # the target is seen from its task's default view
    assert torch.allclose(obs.proprio[:3].double(), env.state[:3], atol=1e-6)     # the TCP position
    camera = _default_view(task)                     # where the image was taken from, detached
    assert torch.allclose(obs.proprio[9:12].double(), camera[:3, 3].double(), atol=1e-6)
    assert torch.allclose(obs.proprio[12:18].double(), camera[:3, :2].T.reshape(-1).double(), atol=1e-6)
    assert obs.proprio[-1] == 0.0                    # no step taken yet
    assert elapsed < OBSERVE_BUDGET_S
    assert not obs.image.requires_grad


def test_gradients_reach_the_camera_pose_when_requested(envs):
    env = envs['peg_insertion']
    pose = _default_view('peg_insertion').clone().requires_grad_(True)
    obs = env.observe(pose, requires_grad=True)
    (obs.image[4].sum() + obs.image[3].sum()).backward()
    assert pose.grad is not None and torch.isfinite(pose.grad).all()
    assert float(pose.grad[:3, 3].abs().sum()) > 0.0          # moving the camera changes what it sees


def test_step_moves_the_tool_within_the_limits_and_counts_the_budget(envs):
    env = envs['peg_insertion']
    env.reset(SEED)
    before = env.state[:3].clone()
    outcome = env.step(MOVE)
    assert isinstance(outcome, StepOutcome)
    assert float(env.state[0] - before[0]) == pytest.approx(0.02, abs=1e-3)     # MAX_TRANSLATION_PER_STEP_M
    assert outcome.info['step'] == 1 and not outcome.done
    assert 0.0 <= outcome.reward <= 5.0
    with pytest.raises(ValueError):
        env.step(np.zeros(ACTION_DIM - 1))
    with pytest.raises(ValueError):
        env.step(np.full(ACTION_DIM, np.nan))
    for _ in range(env.max_episode_steps - 2):
        assert not env.step(np.zeros(ACTION_DIM)).done
    assert env.step(np.zeros(ACTION_DIM)).done


def test_snapshot_and_restore_bring_back_the_state_and_the_episode(envs):
    env = envs['spatula_flipping']
    env.reset(SEED)
    env.step(MOVE)
    snap = env.snapshot()
    state, memory = env.state.clone(), dict(env.memory)
    env.step(MOVE)
    env.reset(SEED + 1)                              # another episode, other statics
    env.restore(snap)
    assert torch.equal(env.state, state) and env.memory == memory and env.step_count == 1


def test_the_same_seed_starts_the_same_episode(envs):
    env = envs['needle_threading']
    env.reset(SEED)
    first = env.state.clone()
    env.reset(SEED + 1)
    assert not torch.equal(env.state, first)
    env.reset(SEED)
    assert torch.equal(env.state, first)


def test_the_thread_starts_at_rest_in_its_settled_shape(envs):
    """M's springs rest where the world's settled thread is in equilibrium: standing still keeps its shape
    (from the sim's motor targets it moved 0.18 rad in 1 s)."""
    env = envs['needle_threading']
    env.reset(SEED)
    thread = env.model.dof_slice('thread')
    start = env.state[thread].clone()
    for _ in range(STILL_STEPS):
        env.step(np.zeros(ACTION_DIM))
    assert float((env.state[thread] - start).abs().max()) < STILL_TOLERANCE_RAD


def test_episode_starts_can_come_without_a_simulator():
    """An injected start (here the task's nominal scene, as on a robot before Real2Sim) replaces PyBullet's."""
    def nominal(model, seed: int) -> EpisodeStart:
        scene = nominal_scene('peg_insertion')
        zero = (np.zeros(3), np.zeros(3))
        poses = {name: placement.pose for name, placement in scene.items()}
        state = model_state(model, poses, {name: zero for name in poses})
        return EpisodeStart(state, {'hole_block': poses['hole_block']})

    env = ModelEnv('peg_insertion', image_size=IMAGE_SIZE, seed=0, episode_starts=nominal)
    assert env.evaluate()['success'] is False
    assert float(env.observe(_default_view('peg_insertion')).image[4].sum()) > 0.0


def test_the_world_keypoints_geometry_puts_m_renders_where_the_objects_are(envs):
    """The back-projection of networks.WorldKeypointEncoder matches the renderer: from five views no
    rendered point lies below the table and the target's points agree in the world."""
    from samrl_policy.networks import DEPTH_FAR_M, camera_to_world, optical_points
    from samrl_viewpoint.views import ViewSpace
    env, views = envs['peg_insertion'], ViewSpace('peg_insertion')
    centroids = []
    for params in [views.default(), *views.sample(np.random.default_rng(0), 4)]:
        obs = env.observe(views.camera_pose(params))
        points = optical_points(obs.image[None, 3:4], DEPTH_FAR_M).flatten(2).transpose(1, 2)
        world = camera_to_world(points, obs.proprio[None, 9:18])[0]
        hit, target = obs.image[3].flatten() > 0, obs.image[4].flatten() > 0.5
        assert float(world[hit, 2].min()) > -TABLE_TOLERANCE_M
        centroids.append(world[target].mean(dim=0))
    spread = torch.stack(centroids) - torch.stack(centroids).mean(dim=0)
    assert float(spread.norm(dim=1).max()) < CENTROID_SPREAD_M


def test_a_zoomed_render_is_the_centred_crop_and_back_projects_to_the_same_place(envs):
    """zoom 2 (samrl train learn-at-sim --zoom): the target covers about four times the pixels from the default
    view, and the 3D keypoint encoders' back-projection at that zoom puts it where zoom 1 does."""
    from samrl_policy.networks import DEPTH_FAR_M, camera_to_world, optical_points
    from samrl_viewpoint.views import ViewSpace
    zoomed = ModelEnv('peg_insertion', image_size=IMAGE_SIZE, seed=SEED, zoom=2.0)
    views = ViewSpace('peg_insertion')
    centroids, areas = [], []
    for env, zoom in ((envs['peg_insertion'], 1.0), (zoomed, 2.0)):
        obs = env.observe(views.camera_pose(views.default()))
        points = optical_points(obs.image[None, 3:4], DEPTH_FAR_M, zoom).flatten(2).transpose(1, 2)
        target = obs.image[4].flatten() > 0.5
        centroids.append(camera_to_world(points, obs.proprio[None, 9:18])[0][target].mean(dim=0))
        areas.append(int(target.sum()))
    assert 3.0 < areas[1] / areas[0] < 5.0, areas
    assert float((centroids[0] - centroids[1]).norm()) < CENTROID_SPREAD_M
