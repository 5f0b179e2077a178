"""Benchmark: image transport between two processes over the runtime (rate and latency).

A talker process publishes 640x480 images (rgb8, 32FC1) at a set rate; this
process receives them as a node and measures, per image, wall-clock latency
from the header stamp (set just before publishing) to the subscription callback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from samrl_common.runtime import QOS_SENSOR_DATA, Node, stamp_to_s
from samrl_common.runtime.dds_config import loopback_environment

WARMUP_S = 2.0
DISCOVERY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class TransportResult:
    encoding: str
    width: int
    height: int
    requested_rate_hz: float
    seconds: float
    published_estimate: int
    received: int
    received_rate_hz: float
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_max_ms: float


def _talker(encoding: str, rate_hz: float, width: int, height: int, domain: int) -> subprocess.Popen:
    env = loopback_environment()
    env['ROS_DOMAIN_ID'] = str(domain)
    argv = [sys.executable, '-m', 'samrl_common.demo.talker', '--ros-args', '-r', '__node:=bench_talker',
            '-p', f'encoding:={encoding}', '-p', f'rate_hz:={rate_hz}', '-p', f'width:={width}',
            '-p', f'height:={height}', '-r', 'image:=/bench/image', '--log-level', 'warn']
    return subprocess.Popen(argv, env=env)


def measure(encoding: str, rate_hz: float, seconds: float, width: int = 640, height: int = 480,
            domain: int = 42) -> TransportResult:
    """Run one talker process at `rate_hz` and receive for `seconds` after a warm-up."""
    os.environ.update({k: v for k, v in loopback_environment().items() if k.startswith(('CYCLONEDDS', 'SAMRL'))})
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    node = Node('bench_listener', argv=[])
    arrivals: list[tuple[float, float]] = []
    # Sensor-data QoS, as camera drivers publish (a reliable reader would not match their best-effort writer).
    node.create_subscription('sensor_msgs/msg/Image', '/bench/image',
                             lambda m: arrivals.append((time.time(), stamp_to_s(m.header.stamp))), QOS_SENSOR_DATA)
    talker = _talker(encoding, rate_hz, width, height, domain)
    try:
        if not node.spin_until(lambda: arrivals, DISCOVERY_TIMEOUT_S):
            raise RuntimeError('no image arrived from the talker process')
        node.spin_until(lambda: False, WARMUP_S)
        arrivals.clear()
        start = time.time()
        node.spin_until(lambda: False, seconds)
        elapsed = time.time() - start
    finally:
        talker.terminate()
        talker.wait(10)
        node.destroy()
    latency = np.array([(recv - sent) * 1e3 for recv, sent in arrivals])
    return TransportResult(
        encoding=encoding, width=width, height=height, requested_rate_hz=rate_hz, seconds=round(elapsed, 3),
        published_estimate=int(rate_hz * elapsed), received=len(arrivals),
        received_rate_hz=round(len(arrivals) / elapsed, 1),
        latency_mean_ms=round(float(latency.mean()), 2), latency_p50_ms=round(float(np.percentile(latency, 50)), 2),
        latency_p95_ms=round(float(np.percentile(latency, 95)), 2), latency_max_ms=round(float(latency.max()), 2))


def run_benchmark(seconds: float = 10.0, rates: tuple[float, ...] = (30.0, 1000.0),
                  encodings: tuple[str, ...] = ('rgb8', '32FC1')) -> list[dict]:
    """Every encoding at every rate; 1000 Hz stands for 'as fast as it goes'."""
    results = []
    for domain, (encoding, rate) in enumerate(((e, r) for e in encodings for r in rates), start=42):
        result = measure(encoding, rate, seconds, domain=domain)
        print(f'{encoding:>6} @ {rate:6.0f} Hz requested: received {result.received_rate_hz:7.1f} msg/s, '
              f'latency mean {result.latency_mean_ms:.2f} ms, p95 {result.latency_p95_ms:.2f} ms, '
              f'max {result.latency_max_ms:.2f} ms', flush=True)
        results.append(asdict(result))
    return results
