"""The sim bridge's episode bookkeeping, without a World: seeds, returns, when an episode ends, when to stop."""

from __future__ import annotations

import pytest

from samrl_sim.episodes import MAX_SEED, EpisodeBook, check_seed, episode_over

FIRST_SEED = 7
T0_S = 1_700_000_000.0      # a wall time (s)


def _run_episodes(book: EpisodeBook, outcomes: list[bool]) -> list[int]:
    """Finish one episode per outcome as the bridge does; the seeds they ran with."""
    seeds = []
    for i, success in enumerate(outcomes):
        seeds.append(book.seed)
        if book.finish(success):
            break
        book.start(book.next_seed(), T0_S + i + 1)
    return seeds


def test_episode_i_uses_seed_plus_i():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    assert _run_episodes(book, [False] * 4) == [FIRST_SEED + i for i in range(4)]


def test_the_return_accumulates_and_starts_at_zero_in_each_episode():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    for reward in (0.5, -0.25, 1.0):
        book.add_reward(reward)
    assert book.episode_return == pytest.approx(1.25)
    book.finish(True)
    assert book.episode_return == pytest.approx(1.25)      # still there for the episode's log line
    book.start(book.next_seed(), T0_S + 1)
    assert book.episode_return == 0.0


@pytest.mark.parametrize('success, truncated, over', [(False, False, False), (True, False, True),
                                                      (False, True, True), (True, True, True)])
def test_an_episode_ends_on_success_or_truncation(success, truncated, over):
    assert episode_over(success, truncated) is over


def test_the_graph_stops_after_the_episode_limit_with_its_tally():
    book = EpisodeBook(FIRST_SEED, limit=3)
    book.start(FIRST_SEED, T0_S)
    assert _run_episodes(book, [True, False, True, True]) == [7, 8, 9]
    assert (book.finished, book.successes) == (3, 2)
    assert book.summary() == '3 episodes done: 2 successes, success rate 0.67; no command arrived; 0 stale dropped'


def test_without_a_limit_the_graph_never_stops():
    book = EpisodeBook(FIRST_SEED)
    assert not any(book.finish(True) for _ in range(100))
    assert book.success_rate() == 1.0


def test_success_rate_before_any_episode_is_zero():
    assert EpisodeBook(FIRST_SEED).success_rate() == 0.0


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError, match='episodes must be >= 0'):
        EpisodeBook(FIRST_SEED, limit=-1)


def test_a_reset_takes_the_requested_seed_or_the_next_one():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    assert book.reset_seed(-1) == FIRST_SEED + 1           # ResetEpisode: -1 for the next seed
    assert book.reset_seed(42) == 42
    assert book.reset_seed(0) == 0
    book.start(book.reset_seed(42), T0_S + 1)
    assert book.next_seed() == 43                          # the sequence continues from the requested seed


def test_a_reset_keeps_the_tally_and_restarts_the_return():
    book = EpisodeBook(FIRST_SEED, limit=2)
    book.start(FIRST_SEED, T0_S)
    book.add_reward(1.0)
    book.start(book.reset_seed(-1), T0_S + 1)              # reset mid-episode: it is not counted
    assert (book.seed, book.episode_return, book.finished) == (FIRST_SEED + 1, 0.0, 0)
    assert not book.finish(False)


def test_commands_stamped_before_the_episode_began_are_stale():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    assert book.is_stale(T0_S - 0.01)
    assert not book.is_stale(T0_S) and not book.is_stale(T0_S + 5.0)
    book.start(book.next_seed(), T0_S + 10.0)
    assert book.is_stale(T0_S + 5.0)                       # computed during the previous episode


def test_in_lockstep_a_command_for_an_earlier_control_step_is_stale():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    book.step_began(T0_S + 0.01)
    assert book.accept_command(T0_S + 0.01, T0_S + 0.9)
    book.step_began(T0_S + 1.0)                            # the world stepped: its tick's answer is used up
    assert not book.accept_command(T0_S + 0.01, T0_S + 1.1)  # a second answer to the first tick
    assert book.accept_command(T0_S + 1.0, T0_S + 1.9)
    assert book.stale_commands == 1


def test_an_accepted_commands_latency_is_its_arrival_after_the_tick_it_answers():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    for i, latency_ms in enumerate((40, 60, 200)):
        tick_s = T0_S + 0.1 * i                            # the TaskState stamp the command carries
        assert book.accept_command(tick_s, tick_s + latency_ms * 1e-3)
    spread = book.command_latency.spread()
    assert spread.count == 3
    assert spread.mean_s == pytest.approx(0.1) and spread.max_s == pytest.approx(0.2)
    assert spread.p95_s == pytest.approx(0.186)           # between 60 and 200 ms, 90 % of the way


def test_a_stale_command_is_dropped_counted_and_not_timed():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    book.start(book.next_seed(), T0_S + 10.0)
    assert not book.accept_command(T0_S + 9.9, T0_S + 10.05)   # answers the previous episode's last tick
    assert (book.stale_commands, len(book.command_latency)) == (1, 0)


def test_a_wall_clock_stepping_back_counts_as_no_latency():
    book = EpisodeBook(FIRST_SEED)
    book.start(FIRST_SEED, T0_S)
    assert book.accept_command(T0_S + 1.0, T0_S + 0.5)
    assert book.command_latency.spread().max_s == 0.0


def test_the_closing_summary_gives_the_success_rate_and_the_command_latency():
    book = EpisodeBook(FIRST_SEED, limit=2)
    book.start(FIRST_SEED, T0_S)
    for latency_ms in (40, 60):
        book.accept_command(T0_S, T0_S + latency_ms * 1e-3)
    book.accept_command(T0_S - 1.0, T0_S)                  # stale
    book.finish(True)
    book.start(book.next_seed(), T0_S + 1.0)
    book.finish(False)
    assert book.summary() == ('2 episodes done: 1 successes, success rate 0.50; command latency over 2 commands: '
                              'mean 50.0 ms, p95 59.0 ms, max 60.0 ms; 1 stale dropped')


def test_seeds_stay_in_range_and_out_of_range_resets_are_refused():
    book = EpisodeBook(MAX_SEED)
    assert book.next_seed() == 0                            # wraps: every seed fits the messages
    for bad in (-2, MAX_SEED + 1, 2 ** 63 - 1):
        with pytest.raises(ValueError, match='seed must be in'):
            book.reset_seed(bad)
    assert check_seed(7) == 7
