"""The view probe's two measurements on the toy task: image reliance and view dependence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_toys import HORIZON, STEP_M, ToyEnv, ToyViews  # noqa: E402

from samrl_policy.view_probe import image_reliance, summarise_views, view_dependence  # noqa: E402

SEEDS = list(range(12))


class GoalInImageEnv(ToyEnv):
    """The toy task whose image also carries the goal's coordinates in its first pixels (channel 0)."""

    max_episode_steps = HORIZON

    def observe(self, camera_pose_world, requires_grad=False):
        observation = super().observe(camera_pose_world, requires_grad)
        observation.image[0, 0, :3] = torch.from_numpy(self.goal).float()
        return observation


class GoalReader(torch.nn.Module):
    """Moves the end effector (proprio) to the goal read from the image: it relies on its image only."""

    def forward(self, image, proprio):
        move = ((image[:, 0, 0, :3] - proprio[:, :3]) / STEP_M).clamp(-1.0, 1.0)
        return torch.cat([move, torch.zeros(len(image), 4)], dim=1)


class Blind(torch.nn.Module):
    """Moves the same way whatever it sees."""

    def forward(self, image, proprio):
        return torch.tensor([[0.3, -0.2, 0.1, 0, 0, 0, 0]]).expand(len(image), 7)


def test_an_actor_that_reads_its_image_fails_with_another_states_image():
    figures = image_reliance(GoalInImageEnv(), GoalInImageEnv(), GoalReader(), ToyViews(), SEEDS)
    assert figures['success_own_image'] == 1.0
    assert figures['success_other_state_image'] < 0.5


def test_a_blind_actor_does_as_well_with_another_states_image():
    figures = image_reliance(GoalInImageEnv(), GoalInImageEnv(), Blind(), ToyViews(), SEEDS)
    assert figures['success_own_image'] == figures['success_other_state_image']


def test_views_of_one_state_are_compared_by_q_only_across_outcomes():
    outcomes = np.array([[True, False, True], [True, True, True], [False, False, False], [False, True, False]])
    q_values = np.array([[2.0, 1.0, 0.5], [0.0, 9.0, 1.0], [1.0, 2.0, 3.0], [5.0, 4.0, 3.0]])
    figures = summarise_views(outcomes, q_values)
    # pairs: state 0 (view 0 > 1 right, view 2 > 1 wrong), state 3 (view 1 > 0 wrong, view 1 > 2 right)
    assert figures['q_pairs'] == 4 and figures['q_pair_accuracy'] == pytest.approx(0.5)
    assert figures['success_best_view'] == 0.75 and figures['success_from_every_view'] == 0.25
    assert figures['states_with_mixed_outcomes'] == 0.5 and figures['success_default_view'] == 0.5


def test_view_dependence_runs_every_view_of_every_state_from_the_same_start():
    starts = []

    def q_at(env, params):
        starts.append(env.ee.copy())
        return float(params[0])
    figures = view_dependence(GoalInImageEnv(), GoalReader(), q_at, ToyViews(), SEEDS[:3], 4)
    assert figures['states'] == 3 and figures['views_per_state'] == 4 and figures['success'] == 1.0
    assert len(starts) == 12 and all(np.array_equal(starts[i], starts[i - i % 4]) for i in range(12))


def test_smoothness_compares_outcomes_one_move_apart_with_random_pairs():
    from samrl_policy.view_probe import view_smoothness

    def same_view(params, rng):
        return params

    figures = view_smoothness(GoalInImageEnv(), GoalReader(), ToyViews(), same_view, SEEDS[:4], 3)
    assert figures['one_move_pairs'] == 12 and figures['one_move_agreement'] == 1.0     # M is deterministic
    assert 0.0 <= figures['random_view_agreement'] <= 1.0
