"""Tasks end to end: gymnasium API, seeded determinism, oracle success."""
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from samrl_description.objects import OBJECT_CLASSES
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.envs import ENV_IDS, SamrlEnv, register_envs
from samrl_sim.evaluate import evaluate
from samrl_sim.tasks import TASK_NAMES, TASK_OBJECTS
from samrl_sim.world import World

ORACLE_SEEDS = 3


@pytest.mark.parametrize('task', TASK_NAMES)
def test_check_env(task):
    env = SamrlEnv(task)
    check_env(env, skip_render_check=True)
    observation, _ = env.reset(seed=0)
    assert observation['image'].shape == (84, 84, 3) and observation['state'].dtype == np.float32
    env.close()


def test_register_envs_is_idempotent():
    assert register_envs() == register_envs() == list(ENV_IDS)


def _trajectory(world: World, seed: int) -> np.ndarray:
    world.reset(seed=seed)
    for _ in range(5):
        world.step(EeDeltaCommand((0.01, 0.005, -0.02), (0.0, 0.0, 0.05), world.task.gripper_width_m))
    poses = [world.tcp_pose(), *world.object_poses().values()]
    return np.concatenate([np.concatenate([p.position, p.quaternion]) for p in poses])


@pytest.mark.parametrize('task', TASK_NAMES)
def test_seeded_episodes_are_reproducible(task):
    world = World(task)
    first, again, other = _trajectory(world, 7), _trajectory(world, 7), _trajectory(world, 8)
    world.close()
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_an_episode_does_not_depend_on_the_episodes_before_it():
    """Objects settle at reset with the camera arm held where it is, not where the last episode left its motors."""
    world = World('needle_threading')
    world.reset(seed=5)
    world.move_camera(_close_goal(world))
    after_another = _trajectory(world, 7), world.camera_pose().position
    world.close()
    fresh_world = World('needle_threading')
    fresh = _trajectory(fresh_world, 7), fresh_world.camera_pose().position
    fresh_world.close()
    assert np.array_equal(after_another[0], fresh[0]) and np.array_equal(after_another[1], fresh[1])


def _close_goal(world: World):
    from samrl_sim.commands import CameraPoseGoal
    pose = world.camera_pose()
    return CameraPoseGoal(tuple(pose.position + np.array([0.05, 0.05, -0.05])), tuple(pose.quaternion))


@pytest.mark.parametrize('task', TASK_NAMES)
def test_oracle_solves_the_task(task):
    report = evaluate(task, episodes=ORACLE_SEEDS, seed=100)
    assert report['success_rate'] == 1.0, report['results']
    assert all(result['rejected_commands'] == 0 for result in report['results'])


@pytest.mark.parametrize('task', TASK_NAMES)
def test_task_objects_are_the_bodies_of_the_task(task):
    world = World(task)
    bodies = set(world.task.object_bodies())
    world.close()
    assert tuple(TASK_OBJECTS) == TASK_NAMES and set(TASK_OBJECTS[task]) == bodies
    assert list(TASK_OBJECTS[task]) == [name for name in OBJECT_CLASSES if name in bodies]     # OBJECT_CLASSES order
