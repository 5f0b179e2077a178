"""label_consistency: warm-started expert labels against memoryless ones, on the toy task."""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_toys import SMALL_NETWORK, ToyEnv, ToyExpert, ToyViews  # noqa: E402  (test helpers beside this file)

from samrl_policy.label_consistency import label_gaps, summarise_gaps  # noqa: E402
from samrl_policy.networks import Actor  # noqa: E402


class RememberingExpert(ToyExpert):
    """The toy expert plus a drift that grows with the calls since its last reset: history in its labels."""

    def reset(self) -> None:
        super().reset()
        self.calls = 0

    def act(self, env):
        self.calls += 1
        return np.clip(super().act(env) + 0.1 * self.calls * np.eye(7)[0], -1.0, 1.0)


def _gaps(expert_type):
    torch.manual_seed(0)
    actor = Actor(SMALL_NETWORK).eval()
    return summarise_gaps(label_gaps(ToyEnv(), actor, expert_type(), expert_type(), ToyViews(), [1, 2], 5))


def test_a_memoryless_expert_labels_alike_with_and_without_history():
    summary = _gaps(ToyExpert)
    assert summary['states'] == 10 and summary['mean_gap'] == 0.0


def test_an_expert_with_history_is_caught():
    summary = _gaps(RememberingExpert)
    assert summary['mean_gap'] > 0.05 and summary['mean_abs_gap_per_dimension'][0] > 0.05
