"""`samrl`: launch node graphs, run benchmarks and evaluations.

    samrl graphs                               list graphs and their arguments
    samrl launch demo [images:=300] [--local]  start a graph, one process per node
    samrl bench transport [--json out.json]    image transport rate and latency
    samrl bench sim [--task T]                 PyBullet physics step and camera render rates
    samrl bench render | physics | real2sim    the differentiable model M and one Real2Sim update
    samrl eval needle_threading --episodes 50 --seed 0   success rate of a controller
    samrl perception data | train | train-refiner | calibrate
                                               segmentation data set (PyBullet), Mask R-CNN and refiner training
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from samrl_bringup.graph import LaunchArgumentError, environment_for, parse_launch_arguments, process_specs
from samrl_bringup.graphs import GRAPHS, get_graph
from samrl_description.tasks import TASK_NAMES


def _write_json(path: str | None, payload) -> None:
    text = json.dumps(payload, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + '\n')
        print(f'wrote {path}')


def cmd_graphs(_args) -> int:
    for graph in GRAPHS.values():
        print(f'{graph.name}: {graph.description}')
        for arg in graph.arguments:
            choices = f" ({'|'.join(arg.choices)})" if arg.choices else ''
            print(f'    {arg.name}:={arg.default}{choices}  {arg.description}')
    return 0


def cmd_launch(args) -> int:
    from samrl_common.launcher import Launcher
    try:
        graph = get_graph(args.graph)
        nodes = graph.nodes(parse_launch_arguments(args.arguments))
    except (KeyError, LaunchArgumentError) as exc:
        print(f'samrl launch: {exc.args[0] if isinstance(exc, KeyError) else exc}', file=sys.stderr)
        return 2
    specs = process_specs(nodes, environment_for(args.local))
    print(f'[launch] {graph.name}: starting {", ".join(s.name for s in specs)}', flush=True)
    return Launcher(specs, stop_timeout_s=args.stop_timeout).run()


def cmd_bench_transport(args) -> int:
    from samrl_common.bench_transport import run_benchmark
    results = run_benchmark(seconds=args.seconds)
    _write_json(args.json, {'benchmark': 'transport', 'results': results})
    return 0


def cmd_bench_sim(args) -> int:
    from samrl_sim.bench import run_benchmark
    results = []
    for task in (TASK_NAMES if args.task == 'all' else (args.task,)):
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
    for task in TASK_NAMES:
        result = bench_physics(task)
        print(f'{task:>17}: ' + ', '.join(f'{k} {v:.1f}' for k, v in result.items() if isinstance(v, float)))
        results.append(result)
    _write_json(args.json, {'benchmark': 'physics', 'results': results})
    return 0


def cmd_bench_real2sim(args) -> int:
    from samrl_model.real2sim.bench import BenchConfig, format_summary, run_benchmark
    width, height = (int(v) for v in args.size.split('x'))
    tasks = TASK_NAMES if args.tasks == 'all' else tuple(args.tasks.split(','))
    config = BenchConfig(width=width, height=height, iterations=args.iterations, time_budget_s=args.time_budget,
                         init=args.init)
    results = run_benchmark(tasks, range(args.seed, args.seed + args.seeds), config)
    for task, result in results.items():
        print(format_summary(task, result['summary'], config.init))
    _write_json(args.json, {'benchmark': 'real2sim', 'config': vars(config), 'results': results})
    return 0


def cmd_perception_data(args) -> int:
    from samrl_perception.segmentation.dataset import TEST_FIRST_SEED, sample_keys, write_dataset
    first_seed = args.seed if args.seed is not None else (TEST_FIRST_SEED if args.split == 'test' else 0)
    if args.split == 'train' and first_seed + args.count > TEST_FIRST_SEED:
        print(f'samrl perception data: training seeds must stay below {TEST_FIRST_SEED} (held-out seeds)',
              file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.size.split('x'))
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
    if args.resume and args.init_from:
        print('samrl perception train: --resume and --init-from exclude each other', file=sys.stderr)
        return 2
    record = train(Path(args.data), Path(args.checkpoint), config, command, model_config=model_config,
                   resume=Path(args.resume) if args.resume else None,
                   init_from=Path(args.init_from) if args.init_from else None)
    _print_calibration(record)
    print(f'wrote {args.checkpoint} ({Path(args.checkpoint).stat().st_size / 1e6:.1f} MB), '
          f'trained {record["train_time_s"] / 60:.1f} min')
    return 0


def cmd_perception_train_refiner(args) -> int:
    from samrl_perception.segmentation.refine import RefinerConfig
    from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT
    from samrl_perception.segmentation.train_refiner import RefinerTrainConfig, train_refiner
    config = RefinerTrainConfig(iterations=args.iterations, batch_size=args.batch_size, learning_rate=args.lr,
                                seed=args.seed, threads=args.threads)
    record = train_refiner(Path(args.data), Path(args.detector or DEFAULT_CHECKPOINT), Path(args.out), config,
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
    from samrl_sim.evaluate import evaluate
    result = evaluate(args.task, args.controller, episodes=args.episodes, seed=args.seed, progress=True)
    print(f'{args.task} ({args.controller}): success rate {result["success_rate"]:.2f} over {args.episodes} '
          f'episodes (seeds {args.seed}..{args.seed + args.episodes - 1}), mean steps {result["mean_steps"]:.1f}, '
          f'{result["wall_time_s"]:.1f} s')
    _write_json(args.json or f'out/eval_{args.task}_{args.controller}_seed{args.seed}.json', result)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='samrl', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('graphs', help='list the launchable graphs').set_defaults(run=cmd_graphs)

    launch = sub.add_parser('launch', help='start a graph, one OS process per node')
    launch.add_argument('graph', help=f'one of: {", ".join(sorted(GRAPHS))}')
    launch.add_argument('arguments', nargs='*', help='launch arguments, name:=value')
    launch.add_argument('--local', action='store_true', help='keep DDS traffic on loopback')
    launch.add_argument('--stop-timeout', type=float, default=5.0, help='seconds per stop signal (default 5)')
    launch.set_defaults(run=cmd_launch)

    bench = sub.add_parser('bench', help='benchmarks (print figures and write JSON)')
    bench_sub = bench.add_subparsers(dest='bench', required=True)
    transport = bench_sub.add_parser('transport', help='640x480 image transport between two processes')
    transport.add_argument('--seconds', type=float, default=10.0, help='measuring time per case (default 10)')
    transport.add_argument('--json', help='write the results here')
    transport.set_defaults(run=cmd_bench_transport)
    sim = bench_sub.add_parser('sim', help='PyBullet physics step rate and camera render rate')
    sim.add_argument('--task', choices=(*TASK_NAMES, 'all'), default='all')
    sim.add_argument('--json', help='write the results here')
    sim.set_defaults(run=cmd_bench_sim)
    render = bench_sub.add_parser('render', help='Mitsuba RGB-D render and gradient step vs PyBullet camera')
    render.add_argument('--size', type=int, default=84, help='square image size (px, default 84)')
    render.add_argument('--json', help='write the results here')
    render.set_defaults(run=cmd_bench_render)
    physics = bench_sub.add_parser('physics', help='nimblephysics control step forward and backward')
    physics.add_argument('--json', help='write the results here')
    physics.set_defaults(run=cmd_bench_physics)
    real2sim = bench_sub.add_parser('real2sim', help='Real2Sim pose/shape recovery from PyBullet views')
    real2sim.add_argument('--tasks', default='all', help='comma-separated tasks or "all"')
    real2sim.add_argument('--seeds', type=_positive_int, default=20, help='seeds per task (default 20)')
    real2sim.add_argument('--seed', type=int, default=0, help='first seed (default 0)')
    real2sim.add_argument('--iterations', type=_positive_int, default=40, help='update iterations (default 40)')
    real2sim.add_argument('--time-budget', type=float, default=60.0, help='seconds per update (default 60)')
    real2sim.add_argument('--size', default='128x96', help='image size WxH (default 128x96)')
    real2sim.add_argument('--init', choices=('perturbed', 'coarse'), default='perturbed',
                          help='start from the truth perturbed by 2 cm / 10 deg, or from the coarse fit to the view')
    real2sim.add_argument('--json', help='write the results here')
    real2sim.set_defaults(run=cmd_bench_real2sim)

    evaluation = sub.add_parser('eval', help='success rate of a controller over seeded episodes')
    evaluation.add_argument('task', choices=TASK_NAMES)
    evaluation.add_argument('--controller', default='oracle', choices=('oracle',), help='controller to evaluate')
    evaluation.add_argument('--episodes', type=_positive_int, default=50, help='episodes (default 50)')
    evaluation.add_argument('--seed', type=int, default=0, help='seed of episode 0; episode i uses seed + i')
    evaluation.add_argument('--json', help='results file (default out/eval_<task>_<controller>_seed<S>.json)')
    evaluation.set_defaults(run=cmd_eval)
    perception = sub.add_parser('perception', help='segmentation data set and training')
    perception_sub = perception.add_subparsers(dest='perception', required=True)
    data = perception_sub.add_parser('data', help='render a labelled, domain-randomised data set from PyBullet')
    data.add_argument('--split', choices=('train', 'test'), default='train')
    data.add_argument('--count', type=_positive_int, default=2400, help='images, the three tasks in turn')
    data.add_argument('--seed', type=int, help='first scene seed (default: 0 for train, 1000000 for test)')
    data.add_argument('--size', default='640x480', help='image size WxH (default 640x480)')
    data.add_argument('--workers', type=_positive_int, default=2, help='rendering processes (default 2)')
    data.add_argument('--out', help='directory (default out/segmentation/<split>)')
    data.set_defaults(run=cmd_perception_data)
    train = perception_sub.add_parser('train', help='train the Mask R-CNN from scratch on a generated data set')
    train.add_argument('--data', default='out/segmentation/train', help='data set directory')
    train.add_argument('--checkpoint', default='out/segmentation/maskrcnn_r18fpn.pt', help='checkpoint to write')
    train.add_argument('--iterations', type=_positive_int, default=3000)
    train.add_argument('--batch-size', type=_positive_int, default=4)
    train.add_argument('--lr', type=float, default=1e-3, help='peak AdamW learning rate')
    train.add_argument('--seed', type=int, default=0)
    train.add_argument('--threads', type=_positive_int, default=2, help='torch CPU threads')
    train.add_argument('--resume', help='go on training from this checkpoint (its runs are kept in the card)')
    train.add_argument('--init-from', help='start from this checkpoint\'s weights where they fit the network asked for')
    train.add_argument('--mask-stride2', action='store_true',
                       help='give the mask head a stride-2 FPN level (for thin objects)')
    train.set_defaults(run=cmd_perception_train)
    refiner = perception_sub.add_parser(
        'train-refiner', help='train the full-resolution mask refiner on a Mask R-CNN checkpoint\'s masks')
    refiner.add_argument('--data', default='out/segmentation/train', help='the data set the detector was trained on')
    refiner.add_argument('--detector', help='Mask R-CNN checkpoint whose masks it refines (default: the shipped one)')
    refiner.add_argument('--out', default='out/segmentation/mask_refiner.pt', help='refiner checkpoint to write')
    refiner.add_argument('--iterations', type=_positive_int, default=3000)
    refiner.add_argument('--batch-size', type=_positive_int, default=24, help='crops per step')
    refiner.add_argument('--lr', type=float, default=2e-3, help='peak AdamW learning rate')
    refiner.add_argument('--crop-px', type=_positive_int, default=112, help='side of the square crop the refiner sees')
    refiner.add_argument('--seed', type=int, default=0)
    refiner.add_argument('--threads', type=_positive_int, default=2, help='torch CPU threads')
    refiner.set_defaults(run=cmd_perception_train_refiner)
    calibrate = perception_sub.add_parser(
        'calibrate', help='choose a checkpoint\'s detection score thresholds (any object; scene objects) on its '
                          'validation images')
    calibrate.add_argument('--checkpoint', default='out/segmentation/maskrcnn_r18fpn.pt', help='checkpoint to update')
    calibrate.add_argument('--data', default='out/segmentation/train', help='the data set it was trained on')
    calibrate.add_argument('--refiner', help='calibrate for this mask refiner\'s masks instead, and store the '
                                             'thresholds in its card')
    calibrate.set_defaults(run=cmd_perception_calibrate)
    segmentation = bench_sub.add_parser('segmentation', help='Mask R-CNN IoU per class and time per frame (held-out)')
    segmentation.add_argument('--data', default='out/segmentation/test',
                              help='held-out images (rendered first if the directory is empty)')
    segmentation.add_argument('--count', type=_positive_int, default=240, help='held-out images (default 240)')
    segmentation.add_argument('--checkpoint', help='default: the shipped checkpoint')
    segmentation.add_argument('--refiner', default='', help='mask refiner checkpoint ("": the shipped one; none: '
                                                            'Mask R-CNN\'s own masks)')
    segmentation.add_argument('--figure', default='out/bench_segmentation_examples.png',
                              help='held-out examples with true and predicted masks ("" for none)')
    segmentation.add_argument('--json', help='write the results here')
    segmentation.add_argument('--any-object', action='store_true',
                              help='let every class in: by default each image is segmented knowing its task\'s '
                                   'objects (with the threshold calibrated that way), as segmentation_node is')
    segmentation.set_defaults(run=cmd_bench_segmentation)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    raise SystemExit(main())
