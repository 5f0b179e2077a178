"""`samrl train learn-at-sim|ship`, `samrl eval table1` and `samrl viewpoint heatmap`: Learn@Sim from the command
line.

Heavy imports (torch, nimble, Mitsuba) happen inside the commands, so `samrl --help` stays fast.
"""
from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from pathlib import Path

from samrl_description.tasks import TASK_NAMES

DEFAULT_RUN_DIR = 'out/learn_at_sim/{task}'   # where training writes
SHIPPED = 'shipped'                            # learn_at_sim.SHIPPED, without torch: the networks in the package
TABLE1_RECORDS = 'out/table1/{task}_shipped_{digest}_seed{seed}.jsonl'   # Table I's episode records of shipped networks
DEFAULT_TABLE1_EPISODES = 200
ENCODER_NAMES = ('keypoints', 'world_keypoints', 'tool_keypoints', 'pooled')  # networks.ENCODERS, without torch
LR_SCHEDULE_NAMES = ('constant', 'cosine')       # training.LEARNING_RATE_SCHEDULES, without torch
VIEW_STEP_CLIPS = ('direction', 'box')           # samrl_viewpoint.view_step.STEP_CLIPS, without torch
HEATMAP_SEED = 424242           # the state Fig. 4 is drawn for: an episode seed outside every training block


MAX_ZOOM = 8.0                  # --zoom above this sees a few centimetres of the work from the default view


def _zoom(text: str) -> float:
    """--zoom's value: a factor in [1, MAX_ZOOM] (below 1 would widen the D435's field of view)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'zoom must be a number, got {text!r}') from None
    if not 1.0 <= value <= MAX_ZOOM:
        raise argparse.ArgumentTypeError(f'zoom must be in [1, {MAX_ZOOM:g}], got {value:g}')
    return value


def _non_negative(kind):
    """An argparse type: a number of `kind` that is >= 0."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'must be a {kind.__name__} >= 0, got {text!r}') from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
        return value
    return parse


non_negative_int, non_negative_float = _non_negative(int), _non_negative(float)


def _unit_fraction(text: str) -> float:
    """A share in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be a number in (0, 1], got {text!r}') from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f'must be in (0, 1], got {value:g}')
    return value


def add_learn_at_sim(train_sub, command, positive_int, size) -> None:
    """`samrl train learn-at-sim <task>`: DAgger actors (multi-view, fixed-view) and Q, resumable."""
    learn = command(train_sub, 'learn-at-sim', 'Learn@Sim in M: the multi-view and Fixed-View DAgger actors and the '
                    'sensing-aware Q; rerunning the same command goes on after the last finished round or epoch',
                    cmd_learn_at_sim)
    learn.add_argument('task', choices=TASK_NAMES)
    learn.add_argument('--run-dir', help=f'run directory (default {DEFAULT_RUN_DIR})')
    learn.add_argument('--seed', type=int, default=0, help='run seed: episodes, views, network initialisation')
    learn.add_argument('--size', type=size, help='WxH of M\'s renders that the networks see (default: '
                                                 'LearnAtSimConfig, 64x64); more pixels cost render and fit time')
    learn.add_argument('--zoom', type=_zoom, default=1.0,
                       help='zoom of those renders about the image centre (default 1: the camera\'s whole field of '
                            'view; 2: the centred half, at twice the pixel density, so near views resolve more)')
    learn.add_argument('--rounds', type=positive_int, help='DAgger rounds (default: DAggerConfig)')
    learn.add_argument('--episodes-per-round', type=positive_int, help='DAgger episodes per round')
    learn.add_argument('--views', type=positive_int, help='renders of each visited state (K of Eq. 8)')
    learn.add_argument('--epochs', type=positive_int, help='epoch budget of each DAgger round\'s fit')
    learn.add_argument('--lr-schedule', choices=LR_SCHEDULE_NAMES,
                       help='learning rate over each DAgger round\'s fit: constant, or cosine decay to 0 over the '
                            '--epochs budget (default: DAggerConfig, constant)')
    learn.add_argument('--eval-episodes', type=positive_int, help='learner episodes scored after each round')
    learn.add_argument('--q-episodes', type=positive_int, help='actor rollouts for Q\'s returns')
    learn.add_argument('--q-views-per-state', type=positive_int,
                       help='Q rollouts from each start state, each from its own random view (default 1), so '
                            'that Q sees how the view alone changes the return')
    learn.add_argument('--q-branch-steps', type=non_negative_int,
                       help='most actor steps (default view) before a state\'s --q-views-per-state rollouts branch, '
                            'drawn per state, so Q also compares views mid-episode (default 0: at the start state)')
    learn.add_argument('--q-ranking-weight', type=non_negative_float,
                       help='weight of the view-ranking term beside Eq. 9: a logistic loss on the pairs of views of '
                            'one state whose returns differ (default 0; needs --q-views-per-state >= 2)')
    learn.add_argument('--q-epochs', type=positive_int, help='epochs of Q\'s regression')
    learn.add_argument('--q-training-fraction', type=_unit_fraction, metavar='F',
                       help='fit Q on this share of its training states only, with the same validation and held-out '
                            'states (default 1; below 1: a point of a learning curve over the data)')
    learn.add_argument('--max-steps', type=positive_int, help='cap on an episode\'s control steps')
    learn.add_argument('--beta-rounds', type=positive_int,
                       help='DAgger round from which the learner acts alone (linear beta schedule; default: '
                            'DAggerConfig). Keep it below --rounds: the learner\'s recovery labels come from its '
                            'own states')
    learn.add_argument('--no-tool-position', dest='tool_position', action='store_false',
                       help='leave the tool\'s world position out of the networks\' heads, so that they read where '
                            'things are from the image only (NetworkConfig.tool_position; with tool_keypoints)')
    learn.add_argument('--pin-actions', dest='pin_actions', action='store_true',
                       help='output the action dimensions the expert kept constant in round 0 as that constant instead '
                            'of learning them (DAggerConfig.pin_constant_actions)')
    learn.add_argument('--encoder', choices=ENCODER_NAMES,
                       help='image encoder of the actors and Q (default: NetworkConfig; samrl_policy/networks.py)')
    learn.add_argument('--actors-from', metavar='RUN',
                       help=f'take the multi-view and Fixed-View actors from this finished run ({SHIPPED!r}: the '
                            'networks in the package) and train only Q with them; --size and --zoom must be the '
                            'actors\' own, and the DAgger flags are unused')


def add_ship(train_sub, command) -> None:
    """`samrl train ship <task> --run-dir D`: a finished run's networks into the package."""
    ship = command(train_sub, 'ship', 'copy a finished Learn@Sim run\'s actor.pt, fixed_actor.pt and q.pt with their '
                   'cards into samrl_policy/trained/<task>, the networks the nodes and evaluations use by default',
                   cmd_ship)
    ship.add_argument('task', choices=TASK_NAMES)
    ship.add_argument('--run-dir', required=True, help='the finished run directory ({task} is replaced)')


def add_table1_arguments(evaluation) -> None:
    evaluation.add_argument('--tasks', default='all', help='table1: comma-separated tasks or "all"')
    evaluation.add_argument('--runs', default=SHIPPED,
                            help=f'table1: run directory of each task\'s networks ({{task}} is replaced), or '
                                 f'{SHIPPED!r} for the networks in the package (default)')
    evaluation.add_argument('--png', default='out/table1.png', help='table1: bar chart to write')
    evaluation.add_argument('--view-step-clip', choices=VIEW_STEP_CLIPS, default=VIEW_STEP_CLIPS[0],
                            help='table1: how Ours\' view step is cut to one control step\'s move: along the gradient '
                                 '(direction, default) or parameter by parameter (box)')


def add_heatmap(sub, command) -> None:
    viewpoint = command(sub, 'viewpoint', 'the sensing-aware view selection')
    viewpoint_sub = viewpoint.add_subparsers(dest='viewpoint', required=True)
    heatmap = command(viewpoint_sub, 'heatmap', 'Fig. 4: Q(I(P), pi(I(P))) over camera azimuth and elevation for one '
                      'state, as a PNG heat map (and JSON)', cmd_heatmap)
    heatmap.add_argument('task', choices=TASK_NAMES)
    heatmap.add_argument('--run-dir', default=SHIPPED,
                         help=f'run directory with actor.pt and q.pt, or {SHIPPED!r} (default)')
    heatmap.add_argument('--seed', type=int, default=HEATMAP_SEED, help='episode seed of the state drawn')
    heatmap.add_argument('--steps', type=int, default=0, help='actor steps taken before the state is drawn')
    heatmap.add_argument('--grid', default='24x12', help='azimuths x elevations (default 24x12)')
    heatmap.add_argument('--png', help='image to write (default out/fig4_<task>.png)')


def _dagger_config(args):
    from samrl_policy.dagger import DAggerConfig
    given = {'rounds': args.rounds, 'episodes_per_round': args.episodes_per_round, 'views_per_state': args.views,
             'epochs_per_round': args.epochs, 'eval_episodes': args.eval_episodes, 'max_episode_steps': args.max_steps,
             'network': _network_config(args), 'pin_constant_actions': args.pin_actions,
             'learning_rate_schedule': args.lr_schedule}
    if args.beta_rounds is not None:
        given.update(beta='linear', beta_parameter=float(args.beta_rounds))
    return replace(DAggerConfig(), **{k: v for k, v in given.items() if v is not None})


def _network_config(args):
    """The networks' config if --encoder, --no-tool-position or --zoom changes it; None keeps NetworkConfig's
    defaults."""
    if args.encoder is None and args.tool_position and args.zoom == 1.0:
        return None
    from samrl_policy.model_env import PROPRIO_SIZE
    from samrl_policy.networks import NetworkConfig
    encoder = args.encoder or NetworkConfig.encoder
    return NetworkConfig(proprio_dim=PROPRIO_SIZE, encoder=encoder, tool_position=args.tool_position,
                         image_zoom=args.zoom)


def _q_config(args):
    from samrl_policy.q_learning import QConfig
    given = {'episodes': args.q_episodes, 'epochs': args.q_epochs, 'max_episode_steps': args.max_steps,
             'views_per_state': args.q_views_per_state, 'branch_steps': args.q_branch_steps,
             'ranking_weight': args.q_ranking_weight, 'training_fraction': args.q_training_fraction,
             'network': _network_config(args)}
    try:
        config = replace(QConfig(), **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:               # e.g. --q-ranking-weight without views to rank
        raise SystemExit(f'samrl train learn-at-sim: {exc}') from None
    return replace(config, episodes_per_shard=min(config.episodes_per_shard, config.episodes))


def _exit_on_sigterm() -> dict:
    """`kill` stops a run as Ctrl-C does: the episode under way is not recorded as one that killed the
    process (training.EpisodeLedger), so the resumed run collects it again instead of skipping it.
    Returns {'exit': code} once the signal came: Dr.Jit turns an exit raised inside a render into a
    RuntimeError, which the command then turns back into this exit code."""
    received: dict = {}

    def stop(signum, _frame):
        received['exit'] = 128 + signum
        sys.exit(received['exit'])

    signal.signal(signal.SIGTERM, stop)
    return received


def cmd_learn_at_sim(args) -> int:
    received = _exit_on_sigterm()
    try:
        return _learn_at_sim(args)
    except Exception as exc:
        if 'exit' in received:
            raise SystemExit(received['exit']) from exc
        raise


def _learn_at_sim(args) -> int:
    from samrl_policy.dagger import beta_schedule
    from samrl_policy.learn_at_sim import ActorsSourceError, LearnAtSimConfig, learn_at_sim, run_dir_of
    sized = {} if args.size is None else {'image_size': (args.size[1], args.size[0])}      # (height, width)
    config = LearnAtSimConfig(args.task, seed=args.seed, dagger=_dagger_config(args), q=_q_config(args),
                              image_zoom=args.zoom, **sized)
    last_beta = beta_schedule(config.dagger.beta, config.dagger.beta_parameter)(config.dagger.rounds - 1)
    if last_beta > 0.0 and args.actors_from is None:
        print(f'warning: beta is {last_beta:.2f} in the last DAgger round, so the learner never acts alone and '
              'its drift is never labelled; --beta-rounds below --rounds fixes that', file=sys.stderr)
    run_dir = Path(args.run_dir or DEFAULT_RUN_DIR.format(task=args.task))
    actors_from = None if args.actors_from is None else run_dir_of(args.actors_from, args.task)
    try:
        records = learn_at_sim(run_dir, config, 'samrl ' + ' '.join(sys.argv[1:]), actors_from=actors_from)
    except ActorsSourceError as exc:
        raise SystemExit(f'samrl train learn-at-sim --actors-from: {exc}') from None
    for stage, record in records.items():
        metrics = record.get('metrics', record)
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        print(f'{stage}: ' + ', '.join(f'{k} {v:.4g}' for k, v in shown.items()))
    print(f'networks in {run_dir}: actor.pt, fixed_actor.pt, q.pt (cards beside them)')
    return 0


def cmd_ship(args) -> int:
    from samrl_policy.learn_at_sim import ship
    for path in ship(Path(args.run_dir.format(task=args.task)), args.task):
        print(f'wrote {path} ({path.stat().st_size / 2 ** 10:.0f} KiB)')
    return 0


def table1_records(run_dir: Path, task: str, seed: int, clip: str = VIEW_STEP_CLIPS[0]) -> Path:
    """Where Table I keeps a run's episode records (a rerun goes on from them): beside the networks, except for
    the shipped ones, which stay out of the source tree; named by the networks' digest, so that new networks
    never resume from another set's records; a view-step clip other than the default is named too."""
    from samrl_policy.learn_at_sim import is_shipped, networks_digest
    digest = networks_digest(run_dir) + ('' if clip == VIEW_STEP_CLIPS[0] else f'_{clip}')
    if is_shipped(run_dir):
        path = Path(TABLE1_RECORDS.format(task=task, digest=digest, seed=seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    return run_dir / f'table1_{digest}_seed{seed}.jsonl'


def cmd_table1(args, tasks: tuple[str, ...], write_json) -> int:
    from samrl_policy.learn_at_sim import load_policies, run_dir_of
    from samrl_policy.table1 import evaluate_task_isolated, format_summary, plot_table1, summarise
    summaries = []
    for task in tasks:
        run_dir = run_dir_of(args.runs, task)
        load_policies(run_dir)                   # a missing network is named here, before any worker starts
        records = evaluate_task_isolated(task, run_dir, args.episodes, args.seed,
                                         table1_records(run_dir, task, args.seed, args.view_step_clip),
                                         clip=args.view_step_clip)
        summaries.append({**summarise(records, task), 'view_step_clip': args.view_step_clip})
        print(format_summary(summaries[-1]))
    plot_table1(summaries, Path(args.png))
    print(f'wrote {args.png}')
    write_json(args.json or 'out/table1.json', {'command': 'samrl ' + ' '.join(sys.argv[1:]), 'results': summaries})
    return 0


def cmd_heatmap(args) -> int:
    import torch

    from samrl_policy.learn_at_sim import load_policies, run_dir_of, run_image_size, run_image_zoom
    from samrl_policy.model_env import ModelEnv
    from samrl_viewpoint.active_view import sensing_q
    from samrl_viewpoint.heatmap import q_heatmap
    from samrl_viewpoint.views import ViewSpace
    run_dir = run_dir_of(args.run_dir, args.task)
    policies = load_policies(run_dir)
    env = ModelEnv(args.task, image_size=run_image_size(run_dir), seed=args.seed, zoom=run_image_zoom(run_dir))
    views = ViewSpace(args.task)
    default = views.default()
    for _ in range(args.steps):             # advance the state with the actor acting from the default view
        with torch.no_grad():
            observation = env.observe(views.camera_pose(default))
            action = policies.actor(observation.image[None], observation.proprio[None])[0]
        env.step(action.double().numpy())
    azimuths, elevations = (int(n) for n in args.grid.lower().split('x'))
    png = Path(args.png or f'out/fig4_{args.task}.png')
    q_of_view = sensing_q(env.observe, policies.actor, policies.q_network, views)
    with torch.no_grad():
        q_heatmap(q_of_view, views, default, png, grid=(azimuths, elevations), default_params=default)
    print(f'wrote {png}')
    return 0


def tasks_argument(text: str) -> tuple[str, ...]:
    tasks = TASK_NAMES if text == 'all' else tuple(text.split(','))
    unknown = [t for t in tasks if t not in TASK_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f'unknown task(s) {unknown}; expected {", ".join(TASK_NAMES)} or "all"')
    return tasks
