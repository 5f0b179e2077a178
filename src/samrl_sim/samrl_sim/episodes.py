"""ROS-free episode bookkeeping of the sim bridge: seeds, returns, outcomes and when to stop.

Kept apart from bridge_node so that its rules can be tested without a World or middleware: each
episode uses the previous one's seed + 1 (episode i: seed + i, unless a reset request named a
seed), an episode ends on success or truncation, and the graph stops after `episodes` of them.
Times are passed in, never read here.

It also measures how long the graph takes to answer the world: a command carries the stamp of the
TaskState (tick) it answers, and its latency is its arrival minus that stamp. Both are read on the
bridge's wall clock (the bridge stamps TaskState with stamp_now(), time.time_ns), so the difference
holds even when the controller runs on a machine whose clock differs. In lock-step a command is also
stale when it answers an earlier control step than the current one (`step_began`): one command, one step.
"""

from __future__ import annotations

from samrl_common.stage_times import Durations

MAX_SEED = 2 ** 32 - 1      # seeds are 0..MAX_SEED (numpy's legacy range); the episode after MAX_SEED uses 0


def check_seed(seed: int) -> int:
    """`seed` if it is in 0..MAX_SEED; ValueError naming the range otherwise."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f'seed must be in 0..{MAX_SEED} (-1: the next one), got {seed}')
    return seed


def episode_over(success: bool, truncated: bool) -> bool:
    """An episode ends when the task is solved or runs out of steps."""
    return success or truncated


class EpisodeBook:
    """The current episode's seed, start time and return, and the tally of finished episodes.

    `limit` is the number of episodes after which the graph stops (0: never).
    """

    def __init__(self, first_seed: int, limit: int = 0):
        if limit < 0:
            raise ValueError(f'episodes must be >= 0, got {limit}')
        self.limit = limit
        self.seed, self.start_s, self.episode_return = first_seed, float('-inf'), 0.0
        self.step_start_s = float('-inf')     # lock-step: the first tick of the current control step
        self.finished, self.successes = 0, 0
        self.command_latency = Durations()    # of the commands accepted (s)
        self.stale_commands = 0

    def start(self, seed: int, now_s: float) -> None:
        """Begin an episode with `seed` at wall time `now_s` (seconds): its return starts at 0."""
        self.seed, self.start_s, self.episode_return = seed, now_s, 0.0

    def step_began(self, tick_stamp_s: float) -> None:
        """Lock-step: a control step began with the tick stamped `tick_stamp_s`; commands answering
        earlier ticks are stale from now on."""
        self.step_start_s = tick_stamp_s

    def next_seed(self) -> int:
        """The seed of the episode that follows the current one (wrapping after MAX_SEED, so every
        seed fits the messages' int64 fields however long the graph runs)."""
        return (self.seed + 1) % (MAX_SEED + 1)

    def reset_seed(self, requested: int) -> int:
        """The seed a ResetEpisode request asks for: its own, or the next one if it names none (-1);
        ValueError for any other negative seed or one above MAX_SEED."""
        if requested == -1:
            return self.next_seed()
        check_seed(requested)
        return requested

    def add_reward(self, reward: float) -> None:
        """Accumulate one control step's reward into the episode's return (published with every TaskState)."""
        self.episode_return += reward

    def is_stale(self, stamp_s: float) -> bool:
        """Whether a command stamped `stamp_s` was computed before this episode (or, in lock-step, this control
        step) began, and must not act on it."""
        return stamp_s < max(self.start_s, self.step_start_s)

    def accept_command(self, stamp_s: float, arrival_s: float) -> bool:
        """Whether a command answering the tick stamped `stamp_s` (wall time, s), arriving at `arrival_s`,
        may act on this episode; a stale one is counted, an accepted one's latency recorded."""
        if self.is_stale(stamp_s):
            self.stale_commands += 1
            return False
        # The wall clock may step back (NTP) between the two readings: such a latency counts as 0.
        self.command_latency.add(max(0.0, arrival_s - stamp_s))
        return True

    def finish(self, success: bool) -> bool:
        """Count the current episode's outcome; True when the graph should now stop."""
        self.finished += 1
        self.successes += int(success)
        return self.limit > 0 and self.finished >= self.limit

    def success_rate(self) -> float:
        """Successes per finished episode; 0 before the first has finished."""
        return self.successes / self.finished if self.finished else 0.0

    def summary(self) -> str:
        """The closing log line of the bridge (after `limit` episodes, or when the graph is stopped)."""
        return (f'{self.finished} episodes done: {self.successes} successes, success rate '
                f'{self.success_rate():.2f}; {self.latency_summary()}')

    def latency_summary(self) -> str:
        """'command latency over 412 commands: mean 48.2 ms, p95 95.1 ms, max 130.4 ms; 3 stale dropped'."""
        latency = self.command_latency.spread()
        text = (f'command latency over {latency.count} commands: {latency.text_ms()}' if latency.count
                else 'no command arrived')
        return f'{text}; {self.stale_commands} stale dropped'
