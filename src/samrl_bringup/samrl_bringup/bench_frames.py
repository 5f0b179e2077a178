"""How many camera frames reach the segmentation node, and where the others went (benchmark).

Runs sim_bridge (camera at its rate and size), capture_node and segmentation_node as processes
on an isolated DDS domain for a while, stops them, and reads each node's closing summary: images
the bridge published, frames capture_node published and dropped (by reason), frames the
segmentation node received, segmented, and dropped or saw superseded (by reason). Every frame
is accounted for: published by capture = received by segmentation + lost in transport.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from samrl_common.testing import NodeProcess, isolated_environment

READY_TIMEOUT_S = 120.0          # torch and the network load before the next node starts
STOP_TIMEOUT_S = 20.0
BRIDGE_IMAGES = re.compile(r'published (\d+) camera images')
CAPTURE_SUMMARY = re.compile(r'published (\d+) frames; dropped: (.*)')
SEGMENTATION_SUMMARY = re.compile(r'received (\d+) frames, segmented (\d+); dropped: (.*), superseded before '
                                  r'delivery (\d+), undecodable (\d+)')


def _counts(text: str) -> dict[str, int]:
    """'a 1, b 2' (or 'none') -> {'a': 1, 'b': 2}."""
    return {} if text.strip() == 'none' else {k: int(v) for k, v in (p.rsplit(' ', 1) for p in text.split(', '))}


def _summary(process: NodeProcess, pattern: re.Pattern) -> tuple:
    found = pattern.findall(process.output())
    if not found:
        raise RuntimeError(f'{process.log_path.name}: no closing summary in its log:\n{process.output()[-2000:]}')
    return found[-1] if isinstance(found[-1], tuple) else (found[-1],)


def _ready(process: NodeProcess, text: str) -> NodeProcess:
    if not process.wait_for_output(text, READY_TIMEOUT_S):
        process.stop()
        raise RuntimeError(f'{process.log_path.name} did not start:\n{process.output()[-2000:]}')
    return process


def run(seconds: float, width: int = 640, height: int = 480, rate_hz: float = 5.0, task: str = 'needle_threading'
        ) -> dict:
    """Run the three nodes for `seconds` after start-up and account for every frame."""
    env = isolated_environment()
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        processes = []
        try:
            # Consumers first, each ready before its producer starts: no frame is lost to start-up.
            processes.append(_ready(NodeProcess('samrl_perception.segmentation_node', ['--ros-args'], env, log_dir),
                                    'segmenting'))
            processes.append(_ready(NodeProcess('samrl_perception.capture_node', ['--ros-args'], env, log_dir),
                                    'pairing'))
            processes.append(NodeProcess('samrl_sim.bridge_node', [
                '--ros-args', '-p', f'task:={task}', '-p', f'camera_rate_hz:={rate_hz}', '-p',
                f'image_width:={width}', '-p', f'image_height:={height}'], env, log_dir))
            time.sleep(seconds)
        finally:
            for process in reversed(processes):     # the producer first: what it sent has time to arrive
                process.stop(STOP_TIMEOUT_S)
        segmentation, capture, bridge = processes
        images = int(_summary(bridge, BRIDGE_IMAGES)[0])
        published, capture_drops = _summary(capture, CAPTURE_SUMMARY)
        received, segmented, seg_drops, superseded, undecodable = _summary(segmentation, SEGMENTATION_SUMMARY)
    published, received = int(published), int(received)
    return {'task': task, 'size_px': [width, height], 'camera_rate_hz': rate_hz, 'seconds': seconds,
            'bridge_images': images, 'capture_published': published, 'capture_dropped': _counts(capture_drops),
            'segmentation_received': received, 'segmentation_segmented': int(segmented),
            'segmentation_dropped': {**_counts(seg_drops), 'superseded_before_delivery': int(superseded),
                                     'undecodable': int(undecodable)},
            'lost_in_transport': published - received,
            'share_reaching_segmentation': received / published if published else 0.0,
            'share_segmented': int(segmented) / published if published else 0.0}


def format_result(result: dict) -> str:
    return (f'{result["size_px"][0]}x{result["size_px"][1]} at {result["camera_rate_hz"]:g} Hz for '
            f'{result["seconds"]:.0f} s: bridge {result["bridge_images"]} images; capture published '
            f'{result["capture_published"]} frames (dropped {result["capture_dropped"] or "none"}); segmentation '
            f'received {result["segmentation_received"]} ({100 * result["share_reaching_segmentation"]:.1f} %), '
            f'segmented {result["segmentation_segmented"]} ({100 * result["share_segmented"]:.1f} %), dropped '
            f'{result["segmentation_dropped"]}; lost in transport {result["lost_in_transport"]}')
