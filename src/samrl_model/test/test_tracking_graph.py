"""The needle-threading graph (bridge, capture, segmentation, model_node tracking, oracle controller) run
through `samrl launch` for EPISODES episodes: model_node follows the world by itself and its published
error against the bridge's privileged state stays small at every tracking update after an episode's first.

The oracle's labels stand in for Mask R-CNN (segmentation:=oracle) to keep the two cores for the model,
and the control and camera rates are lowered so that the model tracks each control step's frame. The
bridge does not wait for the other nodes: episode 0 is often over before model_node has loaded (5-10 s
on two cores), so the graph runs one episode more than the EPISODES tracked from their first frame.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

from samrl_common.runtime import Node
from samrl_common.testing import isolated_environment

EPISODES = 3                        # tracked from their first frame: episodes 1 .. EPISODES
IMAGE_SIZE = (320, 240)             # the thread's tracking window (256x192 px) must fit the frame
CONTROL_RATE_HZ = 1.0               # the bridge's lowest (it takes whole Hz): 8-11 s per episode
CAMERA_RATE_HZ = 2.0                # two frames per control step
RUN_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 15.0
MAX_POSITION_ERROR_MM = 5.0         # issue 13: the thread's base within 5 mm at every step after the first
MAX_THREAD_LINK_ERROR_MM = 20.0     # loose: the coarse shape's links are ~6-7 mm off (README, track bench)
MIN_STEP_COVERAGE = 0.8             # share of an episode's control steps after its first frame with an error
MAX_FIRST_STEP = 2                  # an episode's first frame may come a step late (the model was busy)
UPDATE_LINE = re.compile(r'\[model_node\].*episode (\d+) step (\d+) update (\d+): (\w+)')
EPISODE_LINE = re.compile(r'\[sim_bridge\].*episode (\d+) \(seed \d+\): \w+ after (\d+) steps')


def _parameters_file(tmp_path) -> str:
    path = tmp_path / 'rates.yaml'
    path.write_text(f'sim_bridge:\n  ros__parameters:\n    control_rate_hz: {CONTROL_RATE_HZ}\n'
                    f'    camera_rate_hz: {CAMERA_RATE_HZ}\n')
    return str(path)


def _launch(tmp_path, node: Node, env: dict[str, str]) -> tuple[int, str, list]:
    """Run the graph to its end while `node` records /samrl/model/error; (exit code, output, errors)."""
    errors = []
    node.create_subscription('samrl_interfaces/msg/ModelError', '/samrl/model/error', errors.append)
    log = (tmp_path / 'launch.log').open('w+')
    process = subprocess.Popen([sys.executable, '-m', 'samrl_bringup.cli', 'launch', 'needle_threading',
                                f'episodes:={EPISODES + 1}', 'seed:=0', 'segmentation:=oracle',
                                f'image_width:={IMAGE_SIZE[0]}', f'image_height:={IMAGE_SIZE[1]}',
                                f'params_file:={_parameters_file(tmp_path)}', '--local'],
                               env=env, text=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        node.spin_until(lambda: process.poll() is not None, RUN_TIMEOUT_S)
        node.spin_until(lambda: False, 0.5)          # the last error message on its way
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(STOP_TIMEOUT_S)
    log.seek(0)
    return process.returncode, log.read(), errors


@pytest.mark.processes
@pytest.mark.timeout(RUN_TIMEOUT_S + 2 * STOP_TIMEOUT_S)
def test_the_model_tracks_the_thread_through_every_episode_of_the_graph(tmp_path):
    env = isolated_environment()
    node = Node('error_recorder', argv=[])
    try:
        code, output, errors = _launch(tmp_path, node, env)
    finally:
        node.destroy()
    assert code == 0 and 'graph stopped cleanly' in output, output[-4000:]
    steps = {int(e): int(n) for e, n in EPISODE_LINE.findall(output)}
    assert sorted(steps) == list(range(EPISODES + 1)), output[-4000:]
    updates = defaultdict(list)                      # episode -> [(step, update, action)] as model_node logged them
    for episode, step, update, action in UPDATE_LINE.findall(output):
        updates[int(episode)].append((int(step), int(update), action))
    published = defaultdict(dict)                   # episode -> {update: ModelError}
    for message in errors:
        published[message.episode][message.update] = message

    figures = []
    for episode in range(EPISODES + 1):
        logged = updates[episode]
        if episode == 0 and (not logged or logged[0][1] != 0):
            continue                                  # over, or under way, before model_node was up
        assert logged[0][1:] == (0, 'coarse'), (episode, logged)    # the first frame: a coarse model
        later = [u for u in logged if u[1] > 0]
        assert {u[1] for u in later} <= set(published[episode]), (episode, sorted(published[episode]))
        for update in later:
            error = published[episode][update[1]]
            assert error.step == update[0] and error.target == 'thread'
            assert error.position_mm < MAX_POSITION_ERROR_MM, (episode, update, error)
            assert error.thread_link_mm < MAX_THREAD_LINK_ERROR_MM, (episode, update, error)
            figures.append((error.position_mm, error.rotation_deg, error.thread_link_mm))
        if episode > 0:                               # tracked from its start to its end
            first_step = logged[0][0]
            seen = set(range(first_step + 1, steps[episode]))   # the last step's frame shows the next episode
            covered = {u[0] for u in later} & seen
            assert first_step <= MAX_FIRST_STEP and len(covered) >= MIN_STEP_COVERAGE * len(seen), (episode, logged)
    position, rotation, links = np.array(figures).T
    print(f'\n{len(figures)} tracking updates after an episode\'s first: position error mean {position.mean():.2f} / '
          f'max {position.max():.2f} mm, rotation {rotation.mean():.2f} / {rotation.max():.2f} deg, thread links '
          f'{links.mean():.2f} / {links.max():.2f} mm')
