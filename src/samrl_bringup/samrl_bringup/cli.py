"""`samrl`: launch node graphs, run benchmarks and evaluations, make and train the perception.

    samrl graphs                                   list graphs and their launch arguments
    samrl launch demo [images:=300] [--local]      start a graph, one process per node
    samrl params [--write]                         every node parameter with its default (config/parameters.yaml)
    samrl bench transport [--json out.json]        image transport rate and latency
    samrl bench sim [--tasks all]                  PyBullet physics step and camera render rates
    samrl bench render [--size 84x84]              Mitsuba RGB-D render and gradient step vs PyBullet camera
    samrl bench physics [--tasks all]              nimblephysics control step forward and backward
    samrl bench real2sim [--tasks all] [--size 128x96] [--init perturbed|coarse]   one Real2Sim update
    samrl bench emd [--tasks all] [--seeds 10]     Eq. (3)'s exact EMD (POT) vs Sinkhorn (geomloss) on tracking clouds
    samrl bench segmentation [--checkpoint CKPT] [--refiner CKPT|none]   Mask R-CNN on held-out images
    samrl bench frames [--seconds 60] [--size 640x480] [--rate 5]   camera frames reaching segmentation
    samrl eval needle_threading --episodes 50 --seed 0   success rate of a controller
    samrl fuzz all [--count 1000] [--time-limit 900]   malformed and adversarial input to each node over DDS
    samrl fuzz motion [--count 10000]                   random and adversarial arm commands: none may overstep
    samrl perception data [--split train|test] [--size 640x480] [--out DIR]   segmentation data set (PyBullet)
    samrl perception train [--resume CKPT | --init-from CKPT] [--out CKPT]      train the Mask R-CNN
    samrl perception train-refiner [--checkpoint CKPT] [--out CKPT]             train the mask refiner
    samrl perception calibrate [--checkpoint CKPT] [--refiner CKPT]             choose the score thresholds
    samrl calibrate hand-eye --samples FILE --out FILE   the camera on the Rizon's flange (OpenCV), with its residual
    samrl train expert peg_insertion --episodes 20 [--png F]   the trajectory-optimisation expert in M (its curves)
    samrl train learn-at-sim needle_threading [--run-dir DIR]  DAgger actors and Q in M (resumable)
    samrl train ship needle_threading --run-dir DIR         a finished run's networks into the package
    samrl eval table1 [--tasks all] [--episodes 200]       the paper's Table I in M (JSON and a bar chart)
    samrl viewpoint heatmap needle_threading [--run-dir DIR]  Fig. 4: Q over camera azimuth and elevation

One vocabulary throughout: --tasks is a comma-separated list of tasks or "all"; --size is WxH in pixels;
--out is a path that is written (inputs are --data, --checkpoint, --refiner, --resume, --init-from);
--json is a results file to write. `samrl COMMAND --help` describes each command's options.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from samrl_bringup import learning_commands
from samrl_bringup.graph import (
    LaunchArgumentError,
    check_standalone,
    environment_for,
    parse_launch_arguments,
    process_specs,
)
from samrl_bringup.graphs import GRAPHS, get_graph
from samrl_common.reports import write_json
from samrl_description.tasks import TASK_NAMES, check_task

ALL_TASKS = 'all'
MOTION_FUZZ = 'motion'
MOTION_FUZZ_IMAGE_PX = (16, 16)           # env observations are rendered every step; small is fast
SIZE_PATTERN = re.compile(r'(\d+)x(\d+)')
RENDER_BENCH_SIZE_PX = '84x84'
REAL2SIM_BENCH_SIZE_PX = '128x96'
REAL2SIM_TRACK_SIZE_PX = '640x480'        # track mode: the camera's own frames; the tracker windows them
FRAMES_BENCH_SIZE_PX = '640x480'          # the D435's colour size, as the task graphs run it
FRAMES_BENCH_RATE_HZ = 5.0                # the bridge's default camera rate
FRAMES_BENCH_SECONDS_S = 60.0
DATA_SET_SIZE_PX = '640x480'
STOP_TIMEOUT_S = 5.0
TRANSPORT_SECONDS_PER_CASE_S = 10.0
REAL2SIM_TIME_BUDGET_S = 60.0
MASKRCNN_CHECKPOINT = 'out/segmentation/maskrcnn_r18fpn.pt'
EXPERT_TORCH_THREADS = 1                  # the expert's small tensors: one thread, the other core stays free
TRAIN_DATA = 'out/segmentation/train'


def _write_json(path: str | None, payload) -> None:
    write_json(path, payload, indent=2)


def cmd_graphs(_args) -> int:
    for graph in GRAPHS.values():
        # A graph's description may begin with its own name ("demo: ..."); print the name once.
        print(f'{graph.name}: {graph.description.removeprefix(f"{graph.name}: ")}')
        for arg in graph.arguments:
            choices = f" ({'|'.join(arg.choices)})" if arg.choices else ''
            print(f'    {arg.name}:={arg.default}{choices}  {arg.description}')
    return 0


def cmd_launch(args) -> int:
    from samrl_common.launcher import Launcher
    try:
        graph = get_graph(args.graph)
        nodes = check_standalone(graph, parse_launch_arguments(args.arguments))
    except (KeyError, LaunchArgumentError) as exc:
        print(f'samrl launch: {exc.args[0] if isinstance(exc, KeyError) else exc}', file=sys.stderr)
        return 2
    specs = process_specs(nodes, environment_for(args.local))
    print(f'[launch] {graph.name}: starting {", ".join(s.name for s in specs)}', flush=True)
    return Launcher(specs, stop_timeout_s=args.stop_timeout).run()


def cmd_params(args) -> int:
    from samrl_bringup import parameters_file
    text = parameters_file.generate()
    if not args.write:
        print(text, end='')
        return 0
    parameters_file.path().write_text(text)
    print(f'wrote {parameters_file.path()}')
    return 0


def cmd_bench_frames(args) -> int:
    from samrl_bringup.bench_frames import format_result, run
    result = run(args.seconds, *args.size, rate_hz=args.rate)
    print(format_result(result))
    _write_json(args.json, {'benchmark': 'frames', 'results': result})
    return 0


def cmd_bench_transport(args) -> int:
    from samrl_common.bench_transport import run_benchmark
    results = run_benchmark(seconds=args.seconds)
    _write_json(args.json, {'benchmark': 'transport', 'results': results})
    return 0


def cmd_bench_sim(args) -> int:
    from samrl_sim.bench import run_benchmark
    results = []
    for task in args.tasks:
        result = run_benchmark(task)
        renders = ', '.join(f'{k[len("render_hz_"):]} {v:.1f} Hz'
                            for k, v in result.items() if k.startswith('render_hz'))
        print(f'{task:>17}: physics {result["physics_steps_per_s"]:.0f} steps/s, control '
              f'{result["control_steps_per_s"]:.0f} steps/s, camera {renders}', flush=True)
        results.append(result)
    _write_json(args.json, {'benchmark': 'sim', 'results': results})
    return 0


def cmd_bench_render(args) -> int:
    from samrl_model.render_bench import bench_render
    result = bench_render(size=args.size)
    print(f'{args.size}x{args.size}: Mitsuba forward RGB-D {result["forward_ms"]:.1f} ms, forward + backward '
          f'{result["forward_backward_ms"]:.1f} ms; PyBullet camera {result["pybullet_render_ms"]:.1f} ms')
    _write_json(args.json, {'benchmark': 'render', 'results': result})
    return 0


def cmd_bench_physics(args) -> int:
    from samrl_model.physics.bench import bench_physics
    results = []
    for task in args.tasks:
        result = bench_physics(task)
        print(f'{task:>17}: ' + ', '.join(f'{k} {v:.1f}' for k, v in result.items() if isinstance(v, float)))
        results.append(result)
    _write_json(args.json, {'benchmark': 'physics', 'results': results})
    return 0


def cmd_bench_real2sim(args) -> int:
    if args.mode == 'track':
        return _bench_real2sim_track(args)
    from samrl_model.real2sim.bench import BenchConfig, format_summary, run_benchmark
    width, height = args.size
    config = BenchConfig(width=width, height=height, iterations=args.iterations, time_budget_s=args.time_budget,
                         init=args.init, update=args.update, loss=args.loss, view=args.view)
    results = run_benchmark(args.tasks, range(args.seed, args.seed + args.seeds), config)
    for task, result in results.items():
        print(format_summary(task, result['summary'], config.init))
    _write_json(args.json, {'benchmark': 'real2sim', 'config': vars(config), 'results': results})
    return 0


def cmd_bench_emd(args) -> int:
    import torch
    from samrl_model.real2sim.emd_compare import compare, cloud_pairs, verdict
    torch.set_num_threads(2)      # as the tracker runs: the machine's 2 cores
    pairs = [pair for task in args.tasks for pair in cloud_pairs(task, range(args.seed, args.seed + args.seeds))]
    results = compare(pairs)
    for name, r in results.items():
        print(f'{name:>24}: {1000 * r["seconds_per_call"]:.1f} ms per value + gradient, value off the exact by '
              f'{100 * r["value_error_mean"]:.2f} % (mean), gradient cosine {r["gradient_cosine_mean"]:.4f} mean, '
              f'{r["gradient_cosine_min"]:.4f} min ({r["pairs"]} pairs)')
    print(verdict(results))
    _write_json(args.json, {'benchmark': 'emd', 'tasks': list(args.tasks), 'results': results,
                            'verdict': verdict(results)})
    return 0


def _bench_real2sim_track(args) -> int:
    from samrl_model.real2sim.bench import TrackBenchConfig, format_track_summary, run_track_benchmark
    size = args.size if args.size != _size(REAL2SIM_BENCH_SIZE_PX) else _size(REAL2SIM_TRACK_SIZE_PX)
    width, height = size
    config = TrackBenchConfig(width=width, height=height, masks=args.masks)
    results = run_track_benchmark(args.tasks, range(args.seed, args.seed + args.seeds), config)
    for task, result in results.items():
        print(format_track_summary(task, result['summary']))
    _write_json(args.json, {'benchmark': 'real2sim_track', 'config': vars(config),
                            'results': {task: r['summary'] for task, r in results.items()},
                            'episodes': {task: r['episodes'] for task, r in results.items()}})
    return 0


def cmd_perception_data(args) -> int:
    from samrl_perception.segmentation.dataset import sample_keys, write_dataset
    from samrl_perception.segmentation.shards import TEST_FIRST_SEED
    first_seed = args.seed if args.seed is not None else (TEST_FIRST_SEED if args.split == 'test' else 0)
    if args.split == 'train' and first_seed + args.count > TEST_FIRST_SEED:
        print(f'samrl perception data: training seeds must stay below {TEST_FIRST_SEED} (held-out seeds)',
              file=sys.stderr)
        return 2
    width, height = args.size
    out = Path(args.out or f'out/segmentation/{args.split}')
    shards = write_dataset(out, sample_keys(TASK_NAMES, args.count, first_seed), width, height, workers=args.workers)
    print(f'wrote {args.count} {width}x{height} images (seeds {first_seed}..{first_seed + args.count - 1}) '
          f'in {len(shards)} shards under {out}')
    return 0


def cmd_perception_train(args) -> int:
    from samrl_perception.segmentation.train import TrainConfig, train
    config = TrainConfig(iterations=args.iterations, batch_size=args.batch_size, learning_rate=args.lr,
                         seed=args.seed, threads=args.threads)
    command = 'samrl ' + ' '.join(sys.argv[1:])
    model_config = None
    if args.mask_stride2:
        from samrl_perception.segmentation.model import MaskRCNNConfig
        model_config = MaskRCNNConfig(mask_stride2=True)
    record = train(Path(args.data), Path(args.out), config, command, model_config=model_config,
                   resume=Path(args.resume) if args.resume else None,
                   init_from=Path(args.init_from) if args.init_from else None)
    _print_calibration(record)
    print(f'wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB), '
          f'trained {record["train_time_s"] / 60:.1f} min')
    return 0


def cmd_perception_train_refiner(args) -> int:
    from samrl_perception.segmentation.refine import RefinerConfig
    from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT
    from samrl_perception.segmentation.train_refiner import RefinerTrainConfig, train_refiner
    config = RefinerTrainConfig(iterations=args.iterations, batch_size=args.batch_size, learning_rate=args.lr,
                                seed=args.seed, threads=args.threads)
    record = train_refiner(Path(args.data), Path(args.checkpoint or DEFAULT_CHECKPOINT), Path(args.out), config,
                           RefinerConfig(crop_px=args.crop_px), command='samrl ' + ' '.join(sys.argv[1:]))
    _print_calibration(record)
    scores = record['validation_crops']
    print(f'validation crop IoU: Mask R-CNN {scores["coarse"]:.3f} -> refined {scores["refined"]:.3f} '
          f'({record["val_crops"]} crops); ' + ', '.join(f'{name} {v["coarse"]:.2f} -> {v["refined"]:.2f}'
                                                       for name, v in scores['per_class'].items()))
    size_mb = Path(args.out).stat().st_size / 1e6
    print(f'wrote {args.out} ({size_mb:.2f} MB), trained {record["train_time_s"] / 60:.1f} min')
    return 0


def cmd_perception_calibrate(args) -> int:
    from samrl_perception.segmentation.train import calibrate_checkpoint
    refiner = Path(args.refiner) if args.refiner else None
    record = calibrate_checkpoint(Path(args.checkpoint), Path(args.data), refiner=refiner)
    _print_calibration(record)
    print(f'wrote the thresholds into {refiner or args.checkpoint} and its card')
    return 0


def _print_calibration(record: dict) -> None:
    """Both calibrated thresholds (any class; knowing the scene's objects) and the validation scores with each."""
    for suffix, title in (('', 'any object'), ('_scene_objects', 'scene objects')):
        table = ', '.join(f'{t:.2f}: {v:.3f}' for t, v in record[f'calibration{suffix}']['objective'].items())
        print(f'{title}: score threshold {record[f"score_threshold{suffix}"]:.2f} '
              f'(validation objective by threshold: {table})')
        _print_segmentation(f'validation, {title}', record[f'validation{suffix}'])


def _print_segmentation(title: str, result: dict) -> None:
    steal = result.get('cpu_steal_fraction')
    steal = f' while other guests took {100 * steal:.0f} % of the CPU' if steal is not None else ''
    print(f'{title}: {result["images"]} images, mean IoU {result["mean_iou"]:.3f}, inference '
          f'{result["inference_ms_mean"]:.0f} ms/frame (p95 {result["inference_ms_p95"]:.0f}){steal}')
    for name, c in result['per_class'].items():
        ceiling = f', resolution ceiling {c["resolution_ceiling_iou"]:.3f}' if 'resolution_ceiling_iou' in c else ''
        missed = f', missed {c["missed"]} (visible px {c["missed_visible_pixels"]})' if c.get('missed') else ''
        print(f'{name:>12}: IoU {c["mean_iou"]:.3f} (median {c["median_iou"]:.3f}) over {c["instances"]} '
              f'instances, {c["false_positives"]} false positives{ceiling}{missed}')


def cmd_bench_segmentation(args) -> int:
    from samrl_perception.segmentation.bench import plot_examples, run_benchmark
    from samrl_perception.segmentation.refine import DEFAULT_REFINER
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    scene_objects = not args.any_object
    refiner = None if args.refiner == 'none' else Path(args.refiner) if args.refiner else DEFAULT_REFINER
    result = run_benchmark(Path(args.data), checkpoint, args.count, scene_objects=scene_objects, refiner=refiner)
    _print_segmentation('held-out', result)
    _write_json(args.json, {'benchmark': 'segmentation', 'results': result})
    if args.figure:
        print(f'examples: {plot_examples(Path(args.data), checkpoint, Path(args.figure), scene_objects, refiner)}')
    return 0


def cmd_eval(args) -> int:
    if args.task == 'table1':
        args.episodes = args.episodes or learning_commands.DEFAULT_TABLE1_EPISODES
        return learning_commands.cmd_table1(args, learning_commands.tasks_argument(args.tasks), _write_json)
    args.episodes = args.episodes or 50
    result = _evaluate_controller(args)
    print(f'{args.task} ({args.controller}): success rate {result["success_rate"]:.2f} over {args.episodes} '
          f'episodes (seeds {args.seed}..{args.seed + args.episodes - 1}), mean steps {result["mean_steps"]:.1f}, '
          f'{result["wall_time_s"]:.1f} s')
    _write_json(args.json or f'out/eval_{args.task}_{args.controller}_seed{args.seed}.json', result)
    return 0


def _evaluate_controller(args) -> dict:
    """The oracle, or a Learn@Sim actor acting on the world's true state (samrl_policy.world_eval)."""
    if args.controller == 'oracle':
        from samrl_sim.evaluate import evaluate
        return evaluate(args.task, 'oracle', episodes=args.episodes, seed=args.seed, progress=True)
    from samrl_policy.learn_at_sim import run_dir_of
    from samrl_policy.world_eval import ActorOnTruth
    from samrl_sim.evaluate import evaluate_agent
    run_dir = run_dir_of(args.run_dir, args.task)
    agent = ActorOnTruth(args.task, run_dir, args.controller)
    return {**evaluate_agent(args.task, agent, args.controller, args.episodes, args.seed, progress=True),
            'run_dir': str(run_dir)}


def cmd_fuzz(args) -> int:
    if args.node == MOTION_FUZZ:
        return _fuzz_motion(args)
    from samrl_bringup.fuzz import format_table, resolve_nodes, run_fuzz
    summary = run_fuzz(resolve_nodes(args.node), count=args.count, time_limit_s=args.time_limit, seed=args.seed,
                       log_dir=Path(args.log_dir), progress=lambda line: print(f'[fuzz] {line}', flush=True))
    print(format_table(summary))
    _write_json(args.json, summary)
    return 0 if summary['passed'] else 1


def _fuzz_motion(args) -> int:
    """Random and adversarial end-effector commands through the World and the gymnasium env of every task."""
    from samrl_sim.motion_check import format_reports, run_all
    reports = run_all(list(TASK_NAMES), args.count, args.seed, MOTION_FUZZ_IMAGE_PX)
    print(format_reports(reports))
    _write_json(args.json, {'fuzz': 'motion', 'commands_per_case': args.count, 'seed': args.seed, 'results': reports})
    return 0 if all(r['violations'] == 0 and r['empty_reasons'] == 0 for r in reports.values()) else 1


def cmd_calibrate_hand_eye(args) -> int:
    from samrl_hardware.calibration import CalibrationError
    from samrl_hardware.handeye import load_samples, solve_hand_eye, write_result
    try:
        result = solve_hand_eye(load_samples(args.samples), args.method)
    except CalibrationError as exc:
        print(f'samrl calibrate hand-eye: {exc}', file=sys.stderr)
        return 2
    translation, quaternion = result.camera_in_flange.as_tuple()
    print(f'hand-eye ({result.method}, {result.samples} samples): camera_color_optical_frame in the flange at '
          f'{[round(v, 5) for v in translation]} m, quaternion_xyzw {[round(v, 6) for v in quaternion]}')
    print(result.residual.summary())
    write_result(args.out, result)
    print(f'wrote {args.out}: copy its hand_eye section into the calibration file')
    _write_json(args.json, {'calibration': 'hand_eye', 'results': result.to_yaml()})
    return 0


def cmd_train_expert(args) -> int:
    import torch

    from samrl_policy.expert import ExpertConfig, evaluate_expert, format_expert_result
    torch.set_num_threads(EXPERT_TORCH_THREADS)
    given = {'horizon': args.horizon, 'iterations': args.iterations, 'warm_iterations': args.warm_iterations,
             'learning_rate': args.lr, 'accept_progress': args.accept_progress}
    config = ExpertConfig(**{name: value for name, value in given.items() if value is not None})
    if args.always_refine:
        config = replace(config, accept_progress=None)
    result = evaluate_expert(args.task, args.episodes, args.seed, config, args.random_actions, progress=True)
    print(format_expert_result(result))
    if args.png:
        from samrl_policy.expert_plot import plot_expert
        print(f'wrote {plot_expert(result, args.png)}')
    _write_json(args.json, {'command': 'samrl ' + ' '.join(sys.argv[1:]), 'results': result})
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def _tasks(text: str) -> tuple[str, ...]:
    """--tasks: "all" or comma-separated task names, in the order given, each once."""
    if text == ALL_TASKS:
        return TASK_NAMES
    names = tuple(dict.fromkeys(name.strip() for name in text.split(',')))
    try:
        return tuple(check_task(name) for name in names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f'{exc}; or "{ALL_TASKS}"') from None


def _size(text: str) -> tuple[int, int]:
    """--size: WxH in pixels, both positive, e.g. 640x480."""
    match = SIZE_PATTERN.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f'expected WxH in pixels such as 640x480, got {text!r}')
    width, height = (int(v) for v in match.groups())
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f'width and height must be >= 1 px, got {text!r}')
    return width, height


def _square_size(text: str) -> int:
    """--size of a square-image bench: WxH with W == H; returns the side in pixels."""
    if text.strip().isdigit():
        raise argparse.ArgumentTypeError(f'expected WxH in pixels such as {text}x{text}, got {text!r}')
    width, height = _size(text)
    if width != height:
        raise argparse.ArgumentTypeError(f'this benchmark renders square images: give WxW such as 84x84, got {text!r}')
    return width


def _add_tasks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--tasks', type=_tasks, default=ALL_TASKS, metavar='T1,T2|all',
                        help=f'comma-separated tasks ({", ".join(TASK_NAMES)}) or "{ALL_TASKS}" (default)')


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--json', metavar='PATH', help='write the results to this JSON file')


def _command(sub, name: str, help_text: str, run=None) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    if run is not None:
        parser.set_defaults(run=run)
    return parser


def _add_launch(sub) -> None:
    _command(sub, 'graphs', 'list the launchable graphs and their launch arguments', cmd_graphs)
    launch = _command(sub, 'launch', 'start a graph, one OS process per node', cmd_launch)
    launch.add_argument('graph', help=f'one of: {", ".join(sorted(GRAPHS))}')
    launch.add_argument('arguments', nargs='*', help='launch arguments, name:=value')
    launch.add_argument('--local', action='store_true', help='keep DDS traffic on loopback')
    launch.add_argument('--stop-timeout', type=float, default=STOP_TIMEOUT_S,
                        help=f'seconds per stop signal (default {STOP_TIMEOUT_S:g})')
    params = _command(sub, 'params', 'print every node parameter with its default and description, as a ROS 2 '
                      'parameter file', cmd_params)
    params.add_argument('--write', action='store_true', help='rewrite config/parameters.yaml instead of printing')


def _add_bench(sub) -> None:
    bench = _command(sub, 'bench', 'benchmarks (print figures and write JSON)')
    bench_sub = bench.add_subparsers(dest='bench', required=True)
    transport = _command(bench_sub, 'transport', '640x480 image transport between two processes', cmd_bench_transport)
    transport.add_argument('--seconds', type=float, default=TRANSPORT_SECONDS_PER_CASE_S,
                           help=f'measuring time per case (default {TRANSPORT_SECONDS_PER_CASE_S:g})')
    _add_json(transport)
    sim = _command(bench_sub, 'sim', 'PyBullet physics step rate and camera render rate', cmd_bench_sim)
    _add_tasks(sim)
    _add_json(sim)
    render = _command(bench_sub, 'render', 'Mitsuba RGB-D render and gradient step vs PyBullet camera',
                      cmd_bench_render)
    render.add_argument('--size', type=_square_size, default=RENDER_BENCH_SIZE_PX, metavar='WxH',
                        help=f'square image size in px (default {RENDER_BENCH_SIZE_PX})')
    _add_json(render)
    physics = _command(bench_sub, 'physics', 'nimblephysics control step forward and backward', cmd_bench_physics)
    _add_tasks(physics)
    _add_json(physics)
    _add_bench_real2sim(bench_sub)
    _add_bench_emd(bench_sub)
    _add_bench_segmentation(bench_sub)
    _add_bench_frames(bench_sub)


def _add_bench_frames(bench_sub) -> None:
    frames = _command(bench_sub, 'frames', 'share of camera frames reaching the segmentation node, losses by reason',
                      cmd_bench_frames)
    frames.add_argument('--seconds', type=float, default=FRAMES_BENCH_SECONDS_S,
                        help=f'measuring time after every node is ready (default {FRAMES_BENCH_SECONDS_S:g})')
    frames.add_argument('--size', type=_size, default=FRAMES_BENCH_SIZE_PX, metavar='WxH',
                        help=f'camera image size (default {FRAMES_BENCH_SIZE_PX})')
    frames.add_argument('--rate', type=float, default=FRAMES_BENCH_RATE_HZ,
                        help=f'the bridge\'s camera rate in Hz (default {FRAMES_BENCH_RATE_HZ:g})')
    _add_json(frames)


def _add_bench_real2sim(bench_sub) -> None:
    real2sim = _command(bench_sub, 'real2sim', 'Real2Sim pose/shape recovery from PyBullet views', cmd_bench_real2sim)
    _add_tasks(real2sim)
    real2sim.add_argument('--seeds', type=_positive_int, default=20, help='seeds per task (default 20)')
    real2sim.add_argument('--seed', type=int, default=0, help='first seed (default 0)')
    real2sim.add_argument('--iterations', type=_positive_int, default=40, help='update iterations (default 40)')
    real2sim.add_argument('--time-budget', type=float, default=REAL2SIM_TIME_BUDGET_S,
                          help=f'seconds per update (default {REAL2SIM_TIME_BUDGET_S:g})')
    real2sim.add_argument('--size', type=_size, default=REAL2SIM_BENCH_SIZE_PX, metavar='WxH',
                          help=f'image size in px (default {REAL2SIM_BENCH_SIZE_PX})')
    real2sim.add_argument('--init', choices=('perturbed', 'coarse'), default='perturbed',
                          help='start from the truth perturbed by 2 cm / 10 deg, or from the coarse fit to the view')
    real2sim.add_argument('--update', choices=('view', 'gradient'), default='view',
                          help='single mode: the start and a coarse fit checked against the view and the better '
                               'refitted in windows of the frame with the hand in M (view), or gradient descent '
                               'from the start alone (gradient)')
    real2sim.add_argument('--view', choices=('close', 'task'), default='close',
                          help='single mode: a close view of the target through the camera arm, or the task\'s '
                               'own camera view')
    real2sim.add_argument('--loss', choices=('raycast', 'images'), default='raycast',
                          help='gradient update: ray-cast depth + EMD, or the paper\'s RGB + mask + EMD (Eqs. 2-4)')
    real2sim.add_argument('--mode', choices=('single', 'track'), default='single',
                          help='one update per seed (single), or tracking at every control step of seeded oracle '
                               'episodes at the task\'s view (track; --seeds episodes, frames 640x480 unless --size)')
    real2sim.add_argument('--masks', choices=('sim', 'maskrcnn'), default='sim',
                          help='track mode: target masks from the simulator or the shipped Mask R-CNN')
    _add_json(real2sim)


def _add_bench_emd(bench_sub) -> None:
    emd = _command(bench_sub, 'emd', "Eq. (3)'s EMD: POT's exact solver against geomloss's Sinkhorn on tracking clouds",
                   cmd_bench_emd)
    _add_tasks(emd)
    emd.add_argument('--seeds', type=_positive_int, default=10, help='cloud pairs per task (default 10)')
    emd.add_argument('--seed', type=int, default=0, help='first seed (default 0)')
    _add_json(emd)


def _add_bench_segmentation(bench_sub) -> None:
    segmentation = _command(bench_sub, 'segmentation', 'Mask R-CNN IoU per class and time per frame (held-out)',
                            cmd_bench_segmentation)
    segmentation.add_argument('--data', default='out/segmentation/test',
                              help='held-out images (rendered first if the directory is empty)')
    segmentation.add_argument('--count', type=_positive_int, default=240, help='held-out images (default 240)')
    segmentation.add_argument('--checkpoint', help='Mask R-CNN checkpoint to score (default: the shipped one)')
    segmentation.add_argument('--refiner', default='', help='mask refiner checkpoint ("": the shipped one; none: '
                                                            'Mask R-CNN\'s own masks)')
    segmentation.add_argument('--figure', default='out/bench_segmentation_examples.png',
                              help='write held-out examples with true and predicted masks here ("" for none)')
    _add_json(segmentation)
    segmentation.add_argument('--any-object', action='store_true',
                              help='let every class in: by default each image is segmented knowing its task\'s '
                                   'objects (with the threshold calibrated that way), as segmentation_node is')


def _add_eval(sub) -> None:
    evaluation = _command(sub, 'eval', 'success rate of a controller over seeded episodes, or the paper\'s Table I '
                          'in M (`samrl eval table1`)', cmd_eval)
    evaluation.add_argument('task', choices=(*TASK_NAMES, 'table1'))
    evaluation.add_argument('--controller', default='oracle', choices=('oracle', 'actor', 'fixed_actor'),
                            help='controller to evaluate: the task\'s oracle, or the multi-view or Fixed-View '
                                 'Learn@Sim actor of --run-dir acting on the world\'s true state from the task\'s '
                                 'camera (M\'s physics gap alone: no tracking error, no latency)')
    evaluation.add_argument('--run-dir', default=learning_commands.SHIPPED,
                            help='Learn@Sim run directory of the actors ({task} is replaced), or "shipped" for the '
                                 'networks in the package (default)')
    evaluation.add_argument('--episodes', type=_positive_int,
                            help=f'episodes (default 50; table1: {learning_commands.DEFAULT_TABLE1_EPISODES} per task '
                                 f'and condition)')
    evaluation.add_argument('--seed', type=int, default=0, help='seed of episode 0; episode i uses seed + i (table1: '
                                                                'the block of evaluation seeds)')
    evaluation.add_argument('--json', metavar='PATH',
                            help='results file to write (default out/eval_<task>_<controller>_seed<S>.json, '
                                 'out/table1.json)')
    learning_commands.add_table1_arguments(evaluation)


def _add_fuzz(subparsers) -> None:
    from samrl_bringup.fuzz import ALL_NODES, DEFAULT_COUNT, DEFAULT_TIME_LIMIT_S, NODE_NAMES
    fuzz = _command(subparsers, 'fuzz', 'malformed, adversarial and out-of-range input to a node over DDS: it must '
                    'survive, answer, stay bounded in memory and still do its job', cmd_fuzz)
    fuzz.add_argument('node', choices=(*NODE_NAMES, ALL_NODES, MOTION_FUZZ),
                      help=f'the node to fuzz, or all of them in turn; {MOTION_FUZZ}: --count random and adversarial '
                           'arm commands per task through the World and the gymnasium env (no DDS)')
    fuzz.add_argument('--count', type=_positive_int, default=DEFAULT_COUNT,
                      help=f'messages per input topic and requests per service (default {DEFAULT_COUNT})')
    fuzz.add_argument('--time-limit', type=float, default=DEFAULT_TIME_LIMIT_S, metavar='S',
                      help=f'seconds of sending per node; stops early and says so (default {DEFAULT_TIME_LIMIT_S:g})')
    fuzz.add_argument('--seed', type=int, default=0, help='seed of the generated input (default 0)')
    fuzz.add_argument('--log-dir', default='out/fuzz', help='where the nodes\' logs are written (default out/fuzz)')
    _add_json(fuzz)


def _add_perception(sub) -> None:
    perception = _command(sub, 'perception', 'segmentation data set, training and calibration')
    perception_sub = perception.add_subparsers(dest='perception', required=True)
    data = _command(perception_sub, 'data', 'render a labelled, domain-randomised data set from PyBullet',
                    cmd_perception_data)
    data.add_argument('--split', choices=('train', 'test'), default='train')
    data.add_argument('--count', type=_positive_int, default=2400, help='images, the three tasks in turn')
    data.add_argument('--seed', type=int, help='first scene seed (default: 0 for train, 1000000 for test)')
    data.add_argument('--size', type=_size, default=DATA_SET_SIZE_PX, metavar='WxH',
                      help=f'image size in px (default {DATA_SET_SIZE_PX})')
    data.add_argument('--workers', type=_positive_int, default=2, help='rendering processes (default 2)')
    data.add_argument('--out', help='directory to write (default out/segmentation/<split>)')
    _add_perception_train(perception_sub)
    _add_perception_train_refiner(perception_sub)
    calibrate = _command(perception_sub, 'calibrate', 'choose a checkpoint\'s detection score thresholds (any '
                         'object; scene objects) on its validation images', cmd_perception_calibrate)
    calibrate.add_argument('--checkpoint', default=MASKRCNN_CHECKPOINT, help='Mask R-CNN checkpoint to update')
    calibrate.add_argument('--data', default=TRAIN_DATA, help='the data set it was trained on')
    calibrate.add_argument('--refiner', help='calibrate for this mask refiner\'s masks instead, and store the '
                                             'thresholds in its card')


def _add_perception_train(perception_sub) -> None:
    train = _command(perception_sub, 'train', 'train the Mask R-CNN from scratch on a generated data set',
                     cmd_perception_train)
    train.add_argument('--data', default=TRAIN_DATA, help='data set directory')
    train.add_argument('--out', default=MASKRCNN_CHECKPOINT, help='checkpoint to write')
    train.add_argument('--iterations', type=_positive_int, default=3000)
    train.add_argument('--batch-size', type=_positive_int, default=4)
    train.add_argument('--lr', type=float, default=1e-3, help='peak AdamW learning rate')
    train.add_argument('--seed', type=int, default=0)
    train.add_argument('--threads', type=_positive_int, default=2, help='torch CPU threads')
    start = train.add_mutually_exclusive_group()
    start.add_argument('--resume', help='go on training from this checkpoint (its runs are kept in the card)')
    start.add_argument('--init-from', help='start from this checkpoint\'s weights where they fit the network asked for')
    train.add_argument('--mask-stride2', action='store_true',
                       help='give the mask head a stride-2 FPN level (for thin objects)')


def _add_perception_train_refiner(perception_sub) -> None:
    refiner = _command(perception_sub, 'train-refiner',
                       'train the full-resolution mask refiner on a Mask R-CNN checkpoint\'s masks',
                       cmd_perception_train_refiner)
    refiner.add_argument('--data', default=TRAIN_DATA, help='the data set the Mask R-CNN was trained on')
    refiner.add_argument('--checkpoint', help='Mask R-CNN checkpoint whose masks it refines (default: the shipped one)')
    refiner.add_argument('--out', default='out/segmentation/mask_refiner.pt', help='refiner checkpoint to write')
    refiner.add_argument('--iterations', type=_positive_int, default=3000)
    refiner.add_argument('--batch-size', type=_positive_int, default=24, help='crops per step')
    refiner.add_argument('--lr', type=float, default=2e-3, help='peak AdamW learning rate')
    refiner.add_argument('--crop-px', type=_positive_int, default=112, help='side of the square crop the refiner sees')
    refiner.add_argument('--seed', type=int, default=0)
    refiner.add_argument('--threads', type=_positive_int, default=2, help='torch CPU threads')


def _add_calibrate(sub) -> None:
    from samrl_hardware.handeye import DEFAULT_METHOD, METHODS
    calibrate = _command(sub, 'calibrate', 'calibration of the real cell')
    calibrate_sub = calibrate.add_subparsers(dest='calibrate', required=True)
    hand_eye = _command(calibrate_sub, 'hand-eye', 'the camera\'s pose on the Rizon\'s flange from recorded flange and '
                        'calibration-target poses (OpenCV calibrateHandEye, eye-in-hand), with its residual',
                        cmd_calibrate_hand_eye)
    hand_eye.add_argument('--samples', required=True, help='YAML or JSON samples file (samrl_hardware/handeye.py '
                                                           'describes it)')
    hand_eye.add_argument('--out', required=True, help='YAML file to write, with the hand_eye section')
    hand_eye.add_argument('--method', choices=METHODS, default=DEFAULT_METHOD,
                          help=f'OpenCV hand-eye method (default {DEFAULT_METHOD})')
    _add_json(hand_eye)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must be within [0, 1], got {value}')
    return value


def _add_train(sub) -> None:
    train = _command(sub, 'train', 'learning inside the model M (Learn@Sim)')
    train_sub = train.add_subparsers(dest='train', required=True)
    expert = _command(train_sub, 'expert', 'the trajectory-optimisation expert solving seeded episodes in M: success '
                      'rate, time per trajectory and per label', cmd_train_expert)
    expert.add_argument('task', choices=TASK_NAMES)
    expert.add_argument('--episodes', type=_positive_int, default=20, help='episodes (default 20)')
    expert.add_argument('--seed', type=int, default=0, help='seed of episode 0; episode i uses seed + i')
    # Unset options keep samrl_policy.expert.ExpertConfig's defaults (not imported here: torch, nimble).
    expert.add_argument('--horizon', type=_positive_int, help='planned control steps')
    expert.add_argument('--iterations', type=int, help='Adam iterations from the scripted guess')
    expert.add_argument('--warm-iterations', type=int, help='Adam iterations from the previous plan')
    expert.add_argument('--lr', type=float, help='Adam step, normalised action units per iteration')
    expert.add_argument('--accept-progress', type=float,
                        help='drop of the task cost over the horizon that lets the scripted guess go unrefined')
    expert.add_argument('--always-refine', action='store_true', help='refine every plan that does not succeed')
    expert.add_argument('--random-actions', type=_fraction, default=0.0, metavar='P',
                        help='share of steps that execute a uniformly random action instead (a poor learner under '
                             'DAgger; default 0)')
    expert.add_argument('--png', help="draw the expert's curves here: the task cost along each episode, each "
                        'refinement\'s cost per Adam iteration, the time per label')
    _add_json(expert)
    learning_commands.add_learn_at_sim(train_sub, _command, _positive_int, _size)
    learning_commands.add_ship(train_sub, _command)


def build_parser() -> argparse.ArgumentParser:
    summary, _, commands = __doc__.partition('\n')
    parser = argparse.ArgumentParser(prog='samrl', description=summary, epilog='commands:' + commands,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    _add_launch(sub)
    _add_bench(sub)
    _add_eval(sub)
    _add_fuzz(sub)
    _add_perception(sub)
    _add_calibrate(sub)
    _add_train(sub)
    learning_commands.add_heatmap(sub, _command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    raise SystemExit(main())
