"""The paper's Table I in M: success of Ours, Ours without pose optimisation, and Fixed View.

Protocol (paper Sec. IV-B, Table I; issue 14):
- Ours: the multi-view actor; each episode starts from a view drawn from the view distribution and
  the camera takes one view step (Eq. 10, samrl_viewpoint.active_view) before every action.
- Ours without pose optimisation: the same actor and start views; the camera never moves.
- Fixed View: the actor trained from the task's default view only, acting from it.
The three conditions run on the same seeded episodes (seeds from training.episode_seed('table1'),
a block never used in training), so McNemar's test compares them pair by pair. Each cell has its
Wilson 95 % interval. Episode records are appended to a JSON-lines file as they finish, so an
interrupted evaluation goes on where it stopped.

The episodes run in a worker process (`python -m samrl_policy.table1`): nimble's LCP solver can
abort the whole process on a degenerate contact (ODE's assertion "alphanew != 0" in
_dLDLTAddTL, first met on a peg-insertion episode). Such an episode is recorded as a failure
marked `aborted`, and a new worker goes on with the next one.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest

from samrl_policy.dagger import learner_action
from samrl_policy.networks import Actor, QNetwork
from samrl_policy.training import episode_seed
from samrl_viewpoint.active_view import ActiveCamera, sensing_q
from samrl_viewpoint.view_step import STEP_CLIPS, ViewStepBounds
from samrl_viewpoint.views import PARAM_NAMES, ViewSpace

CONDITIONS = ('ours', 'no_pose_optimisation', 'fixed_view')
CONDITION_LABELS = {'ours': 'Ours', 'no_pose_optimisation': 'Ours w/o pose opt.', 'fixed_view': 'Fixed View'}
# Paper Table I (success rate): Ours / without pose optimisation / Fixed View.
PAPER_TABLE1 = {'peg_insertion': (0.82, 0.64, 0.71), 'spatula_flipping': (0.65, 0.57, 0.55),
                'needle_threading': (0.70, 0.46, 0.66)}
WILSON_Z = 1.959964          # 95 % two-sided
SIGNIFICANCE = 0.05
STAGES = ('view step', 'render', 'actor', 'physics')     # seconds per episode are kept for each
START_VIEW_STREAM = 7        # rng stream of the start views (the same for both multi-view conditions)
# A worker killed by one of these crashed inside a native library; the episode it ran is a failure.
CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGFPE, signal.SIGBUS)


@dataclass(frozen=True)
class Policies:
    """What the three conditions act with."""

    actor: Actor              # multi-view actor (Ours, Ours without pose optimisation)
    q_network: QNetwork       # sensing-aware Q of the view step
    fixed_actor: Actor        # Fixed-View actor


def start_view(views: ViewSpace, seed: int) -> torch.Tensor:
    """The episode's random start view, a function of its seed only (equal across conditions)."""
    return views.sample(np.random.default_rng([START_VIEW_STREAM, seed]), 1)[0]


def run_episode(env, views: ViewSpace, policies: Policies, condition: str, seed: int,
                bounds: ViewStepBounds = ViewStepBounds()) -> dict:
    """One episode of one condition: success, steps, view steps accepted and seconds per stage; `bounds`
    are Ours' view-step bounds."""
    env.reset(seed)
    actor = policies.fixed_actor if condition == 'fixed_view' else policies.actor
    params = views.default() if condition == 'fixed_view' else start_view(views, seed)
    camera = ActiveCamera(views, params, bounds=bounds)
    q_of_view = sensing_q(env.observe, policies.actor, policies.q_network, views)
    seconds = dict.fromkeys(STAGES, 0.0)
    accepted = failed = steps = 0
    q_start, q_gains = float('nan'), []     # Q at the start view; what each view step gained at its state
    outcome = None
    for steps in range(1, env.max_episode_steps + 1):
        if condition == 'ours':       # Alg. 1 lines 5-13: move the camera up dQ/dP, then act from there
            result = camera.step(q_of_view)
            seconds['view step'] += result.timings_s['total']
            accepted += result.accepted
            failed += bool(result.failure)
            q_start = result.q_before if steps == 1 else q_start
            q_gains.append(result.q_after - result.q_before if result.accepted else 0.0)
        clock = time.perf_counter()
        observation = env.observe(camera.pose())
        seconds['render'] += time.perf_counter() - clock
        clock = time.perf_counter()
        with torch.no_grad():
            action = learner_action(actor, observation)
        seconds['actor'] += time.perf_counter() - clock
        clock = time.perf_counter()
        outcome = env.step(action)
        seconds['physics'] += time.perf_counter() - clock
        if outcome.done:
            break
    record = {'condition': condition, 'seed': seed, 'success': bool(outcome.success), 'steps': steps,
              'view_steps_accepted': accepted, 'view_steps_failed': failed, 'seconds': seconds}
    if condition == 'ours':           # where the view steps took the camera, and what Q made of it
        record.update(view_start=[float(v) for v in params], view_end=[float(v) for v in camera.params],
                      q_start=q_start, q_gains=q_gains)
    return record


def wilson_interval(successes: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def mcnemar_p(first: list[bool], second: list[bool]) -> float:
    """Exact McNemar test on paired outcomes: two-sided binomial test of the discordant pairs."""
    only_first = sum(a and not b for a, b in zip(first, second))
    only_second = sum(b and not a for a, b in zip(first, second))
    discordant = only_first + only_second
    return 1.0 if discordant == 0 else float(binomtest(only_first, discordant, 0.5).pvalue)


def read_records(path: Path) -> list[dict]:
    """Episode records written so far (a torn last line from a stop is ignored)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def evaluate_task(env, views: ViewSpace, policies: Policies, episodes: int, run_seed: int, records_path: Path,
                  progress: bool = True, bounds: ViewStepBounds = ViewStepBounds()) -> list[dict]:
    """Every condition on `episodes` paired episodes, going on after the records already written.
    Before each episode its (condition, seed) is written to running_path(records_path)."""
    jobs = pending_jobs(episodes, run_seed, records_path)
    if progress:
        from tqdm import tqdm
        jobs = tqdm(jobs, desc=f"Table I {env.task_name}", unit='episode')
    records_path.parent.mkdir(parents=True, exist_ok=True)
    for seed, condition in jobs:
        running_path(records_path).write_text(json.dumps([condition, seed]))
        _append(records_path, run_episode(env, views, policies, condition, seed, bounds))
    running_path(records_path).unlink(missing_ok=True)
    return task_records(episodes, run_seed, records_path)


def evaluate_task_isolated(task: str, run_dir: Path, episodes: int, run_seed: int, records_path: Path,
                           progress: bool = True, clip: str = STEP_CLIPS[0]) -> list[dict]:
    """evaluate_task in worker processes: a worker that crashes (CRASH_SIGNALS) leaves the episode
    it was running recorded as an aborted failure, and a new worker goes on after it."""
    while pending_jobs(episodes, run_seed, records_path):
        running_path(records_path).unlink(missing_ok=True)
        command = [sys.executable, '-m', 'samrl_policy.table1', task, str(run_dir), str(episodes), str(run_seed),
                   str(records_path), '--view-step-clip', clip, *([] if progress else ['--quiet'])]
        code = subprocess.call(command)
        if code == 0:
            continue
        if -code not in CRASH_SIGNALS or not running_path(records_path).exists():
            raise RuntimeError(f'the Table I worker for {task} exited with code {code}')
        condition, seed = json.loads(running_path(records_path).read_text())
        print(f'Table I {task}: {condition} seed {seed} crashed the worker ({signal.Signals(-code).name}); '
              'recorded as a failure', file=sys.stderr, flush=True)
        _append(records_path, aborted_record(condition, seed, signal.Signals(-code).name))
    return task_records(episodes, run_seed, records_path)


def pending_jobs(episodes: int, run_seed: int, records_path: Path) -> list[tuple[int, str]]:
    """(seed, condition) of every episode not recorded yet, in the order they run."""
    done = {(r['condition'], r['seed']) for r in read_records(records_path)}
    seeds = [episode_seed('table1', run_seed, index) for index in range(episodes)]
    return [(seed, condition) for seed in seeds for condition in CONDITIONS if (condition, seed) not in done]


def task_records(episodes: int, run_seed: int, records_path: Path) -> list[dict]:
    wanted = {episode_seed('table1', run_seed, index) for index in range(episodes)}
    return [r for r in read_records(records_path) if r['seed'] in wanted]


def running_path(records_path: Path) -> Path:
    """Where a worker names the episode it is running (what a crash leaves behind)."""
    return records_path.with_suffix('.running')


def aborted_record(condition: str, seed: int, reason: str) -> dict:
    """A failed episode that ended the process running it (no steps or times were kept)."""
    return {'condition': condition, 'seed': seed, 'success': False, 'steps': 0, 'view_steps_accepted': 0,
            'view_steps_failed': 0, 'aborted': reason,
            'seconds': dict.fromkeys(STAGES, 0.0)}


def _append(records_path: Path, record: dict) -> None:
    with records_path.open('a') as out:
        out.write(json.dumps(record) + '\n')


def summarise(records: list[dict], task: str) -> dict:
    """Success per condition with Wilson intervals, McNemar p of Ours against each other column,
    mean seconds per control step by stage; only seeds every condition finished are counted."""
    by_condition = {c: {r['seed']: r for r in records if r['condition'] == c} for c in CONDITIONS}
    seeds = sorted(set.intersection(*(set(rows) for rows in by_condition.values())))
    outcomes = {c: [by_condition[c][s]['success'] for s in seeds] for c in CONDITIONS}
    summary = {'task': task, 'episodes': len(seeds), 'paper': dict(zip(CONDITIONS, PAPER_TABLE1[task])),
               'conditions': {}}
    for condition in CONDITIONS:
        rows = [by_condition[condition][s] for s in seeds]
        successes = sum(outcomes[condition])
        steps = max(1, sum(r['steps'] for r in rows))
        stages = {stage: sum(r['seconds'][stage] for r in rows) / steps for stage in rows[0]['seconds']} if rows else {}
        summary['conditions'][condition] = {
            'success_rate': successes / len(seeds) if seeds else float('nan'),
            'wilson95': wilson_interval(successes, len(seeds)), 'successes': successes,
            'aborted': sum('aborted' in r for r in rows),
            'seconds_per_step': stages, 'mean_steps': steps / max(1, len(rows))}
    for other in CONDITIONS[1:]:
        summary['conditions'][other]['mcnemar_p_vs_ours'] = mcnemar_p(outcomes['ours'], outcomes[other])
    summary['view_steps'] = view_step_summary([by_condition['ours'][s] for s in seeds])
    ours_rows = [by_condition['ours'][s] for s in seeds]
    summary['view_steps']['start_q_auc'] = start_q_auc(ours_rows, outcomes['no_pose_optimisation'])
    summary['view_steps']['start_view_auc'] = start_view_aucs(ours_rows, outcomes['no_pose_optimisation'])
    return summary


def rank_auc(scores: list[float], successes: list[bool]) -> float:
    """The probability that a success scores higher than a failure (ROC AUC, ties count half; 0.5 is chance,
    nan without both outcomes)."""
    won = [score for score, success in zip(scores, successes) if success]
    lost = [score for score, success in zip(scores, successes) if not success]
    if not won or not lost:
        return float('nan')
    return float(np.mean([(w > v) + 0.5 * (w == v) for w in won for v in lost]))


def start_q_auc(ours: list[dict], stayed_successes: list[bool]) -> float:
    """Does Q rank the start views as the actor fares from them? rank_auc of Q at each start view against
    the camera-still actor's outcome from it. The two multi-view conditions share their start views by seed."""
    pairs = [(r['q_start'], success) for r, success in zip(ours, stayed_successes) if r.get('q_gains')]
    return rank_auc([q for q, _ in pairs], [success for _, success in pairs])


def start_view_aucs(ours: list[dict], stayed_successes: list[bool]) -> dict[str, float]:
    """Does any one view parameter decide how the camera-still actor fares? rank_auc of each start-view
    parameter against its outcome: near 0.5 for all, no direction of the view space is better in general
    (what a view step could learn most easily); far from 0.5 either way, that parameter matters."""
    pairs = [(r['view_start'], success) for r, success in zip(ours, stayed_successes) if 'view_start' in r]
    return {name: rank_auc([view[i] for view, _ in pairs], [success for _, success in pairs])
            for i, name in enumerate(PARAM_NAMES)}


def view_step_summary(rows: list[dict]) -> dict:
    """What Ours' view steps did over its episodes: the share accepted, the Q they gained (each step's
    Q(P') - Q(P) at its own state, in the return's units) per accepted step and summed over an episode,
    and how far the camera ended from its start view (mean |change| of azimuth and elevation in degrees,
    of distance and look-at point in metres; the distance's mean change with its sign too)."""
    rows = [r for r in rows if r.get('q_gains')]        # records from before these fields have none
    if not rows:
        return {'episodes': 0}
    start = np.array([r['view_start'] for r in rows])
    change = np.array([r['view_end'] for r in rows]) - start
    moved = np.abs(change)
    steps = sum(len(r['q_gains']) for r in rows)
    accepted = sum(r['view_steps_accepted'] for r in rows)
    return {'episodes': len(rows), 'accepted_share': accepted / steps,
            'mean_q_gain_per_accepted_step': sum(sum(r['q_gains']) for r in rows) / max(1, accepted),
            'mean_q_gain_per_episode': float(np.mean([sum(r['q_gains']) for r in rows])),
            'mean_abs_azimuth_change_deg': float(np.degrees(moved[:, 0].mean())),
            'mean_abs_elevation_change_deg': float(np.degrees(moved[:, 1].mean())),
            'mean_abs_distance_change_m': float(moved[:, 2].mean()),
            'mean_distance_change_m': float(change[:, 2].mean()),
            'mean_look_at_move_m': float(np.linalg.norm(moved[:, 3:], axis=1).mean())}


def format_summary(summary: dict) -> str:
    """One line per condition: rate, interval, the paper's figure and McNemar's p."""
    lines = [f'{summary["task"]} ({summary["episodes"]} paired episodes)']
    for condition, cell in summary['conditions'].items():
        low, high = cell['wilson95']
        p = f', McNemar p vs Ours {cell["mcnemar_p_vs_ours"]:.3g}' if 'mcnemar_p_vs_ours' in cell else ''
        lines.append(f'  {CONDITION_LABELS[condition]:>20}: {cell["success_rate"]:.2f} [{low:.2f}, {high:.2f}] '
                     f'(paper {summary["paper"][condition]:.2f}){p}')
    moves = summary.get('view_steps', {})
    if moves.get('episodes'):
        lines.append(f'  view steps: {moves["accepted_share"]:.0%} accepted, '
                     f'Q {moves["mean_q_gain_per_accepted_step"]:+.3f} per accepted step '
                     f'({moves["mean_q_gain_per_episode"]:+.2f} per episode); the camera moved '
                     f'{moves["mean_abs_azimuth_change_deg"]:.0f} deg in azimuth, '
                     f'{moves["mean_abs_elevation_change_deg"]:.0f} deg in elevation, '
                     f'{moves["mean_abs_distance_change_m"]:.2f} m in distance '
                     f'({moves["mean_distance_change_m"]:+.2f} m with its sign); Q ranks the start views by the '
                     f'camera-still outcome with AUC {moves["start_q_auc"]:.2f}')
        aucs = ', '.join(f'{name} {auc:.2f}' for name, auc in moves.get('start_view_auc', {}).items())
        lines.append(f'  the camera-still outcome by start-view parameter (AUC; 0.5: it does not matter): {aucs}')
    return '\n'.join(lines)


def plot_table1(summaries: list[dict], png_path: Path) -> None:
    """Grouped bars per task: ours against the paper's figures, with Wilson intervals."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7.0, 3.6), dpi=120)
    width = 0.8 / len(CONDITIONS)
    for index, condition in enumerate(CONDITIONS):
        x = np.arange(len(summaries)) + (index - 1) * width
        rates = [s['conditions'][condition]['success_rate'] for s in summaries]
        low = [r - s['conditions'][condition]['wilson95'][0] for r, s in zip(rates, summaries)]
        high = [s['conditions'][condition]['wilson95'][1] - r for r, s in zip(rates, summaries)]
        axis.bar(x, rates, width, yerr=[low, high], capsize=3, label=CONDITION_LABELS[condition])
        axis.scatter(x, [s['paper'][condition] for s in summaries], marker='_', s=200, color='black',
                     label='paper' if index == 0 else None, zorder=3)
    axis.set_xticks(np.arange(len(summaries)), [s['task'].replace('_', ' ') for s in summaries])
    axis.set_ylim(0.0, 1.05)
    axis.set_ylabel('success rate in M')
    # above the axes: inside them it hides low bars or the paper's marks, whichever corner it takes
    axis.legend(fontsize=7, loc='lower center', bbox_to_anchor=(0.5, 1.0), ncol=len(CONDITIONS) + 1, frameon=False)
    figure.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """The worker of evaluate_task_isolated: one task's pending episodes, in this process."""
    from samrl_policy.learn_at_sim import load_policies, run_image_size, run_image_zoom
    from samrl_policy.model_env import ModelEnv, reproducible_threads
    parser = argparse.ArgumentParser(prog='python -m samrl_policy.table1', description=main.__doc__)
    parser.add_argument('task')
    parser.add_argument('run_dir', type=Path)
    parser.add_argument('episodes', type=int)
    parser.add_argument('run_seed', type=int)
    parser.add_argument('records', type=Path)
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.add_argument('--view-step-clip', choices=STEP_CLIPS, default=STEP_CLIPS[0], help='view_step.STEP_CLIPS')
    args = parser.parse_args(argv)
    env = ModelEnv(args.task, image_size=run_image_size(args.run_dir), zoom=run_image_zoom(args.run_dir))
    with reproducible_threads():    # an episode's record is a function of its seed: resuming relies on it
        evaluate_task(env, ViewSpace(args.task), load_policies(args.run_dir), args.episodes, args.run_seed,
                      args.records, progress=not args.quiet, bounds=ViewStepBounds(clip=args.view_step_clip))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
