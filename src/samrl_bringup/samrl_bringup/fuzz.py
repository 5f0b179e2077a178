"""`samrl fuzz`: start a node as a process and feed it malformed, adversarial and out-of-range input over DDS.

For each node of the task graph (NODES) the fuzzer starts it on an isolated loopback DDS domain, waits
until every input topic and service is matched, checks that it does its job (JOB CHECK, which also warms
it up), then sends `count` messages per input topic and `count` requests per service, and checks again.
Inputs are drawn from a seeded numpy generator (deterministic for a seed, except the fresh stamps of
good messages):

  good       every GOOD_EVERY-th message: a valid input the node must act on
  typed      a good message with 1-3 fields set to adversarial values: NaN, +-inf, integer extremes,
             zero or huge image sizes with short data, wrong encodings, empty/huge/odd strings, stamps
             far in the past or future, zero or non-unit quaternions, long or empty arrays
  malformed  raw CDR bytes: truncated, bit-flipped, length words overwritten, random, a foreign
             encapsulation, trailing garbage, empty, or a message of another type on the topic

Cyclone DDS validates ("normalizes") every sample against its type when it is written and again when it
is received, so CDR whose lengths or sizes do not add up never reaches a node's Python code: the fuzzer
counts the samples its own writer refuses as 'refused_by_dds' (they could not arrive from any sender
either) and sends the rest, which pass that check but not necessarily the runtime's decoding (trailing
bytes, another type, foreign encapsulations, invalid UTF-8) or the node's own checks (bit-flipped values).

Service requests are sent as raw request samples (the rmw_cyclonedds 16-byte header, then the request)
with at most MAX_OUTSTANDING unanswered. A request that decodes here must be answered (success, a
refusal with its reason, or "busy" beyond the node's queue bound) within the service's timeout, or it
counts as a hang; one that does not decode is dropped by the node's runtime and expects no answer.

After the fuzzing every service also gets a burst of BURST_REQUESTS good requests at once (a client
flooding it), each of which must be answered too ("busy" is an answer).

The node's resident memory is sampled throughout; afterwards it is stopped with SIGINT and its log is
read for tracebacks of inputs it failed on (the runtime logs a failing callback and keeps the node
running: these are "handled errors", listed, not crashes; requests a handler failed on are written out
as .cdr files next to the log, to be replayed). A node passes when it never died, answered every request,
did its job before and after, grew by less than RSS_GROWTH_BOUND_MB and exited cleanly on SIGINT.
Node and fuzzer run on Cyclone DDS (SAMRL_BACKEND=dds, no rclpy) on a loopback domain of FUZZ_DOMAINS
that no other process uses (checked before and after: a node of someone else's test must not be fuzzed).
"""

from __future__ import annotations

import gc
import math
import os
import re
import signal
import subprocess
import threading
import time
import typing
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samrl_common import msgs

NODE_NAMES = ('sim_bridge', 'capture_node', 'segmentation_node', 'model_node', 'model_tracker', 'oracle_controller',
              'policy_node', 'viewpoint_node')
ALL_NODES = 'all'
DEFAULT_COUNT = 1000              # messages per input topic and requests per service
DEFAULT_TIME_LIMIT_S = 900.0      # of sending, per node (start-up and the job checks come on top)
GOOD_EVERY = 10                   # every n-th message of a stream is a good one
TYPED_FRACTION = 0.55             # of the other messages: adversarial typed ones; the rest malformed bytes
MAX_FUZZ_BYTES = 4_000_000        # no fuzzed sample is larger (keeps the fuzzer itself within memory)
MAX_TEXT_CHARS = 20_000
MAX_SEQUENCE_ITEMS = 5_000
MUTATION_ATTEMPTS = 8             # tries to make an adversarial message that serializes within the bounds
# Requests in flight per service: one more than the runtime's queue bound (MAX_PENDING_REQUESTS, 8), so the
# "busy" answer is exercised, and fewer than the 10 samples of the server's DDS request history (QOS_SERVICES,
# keep-last): a burst beyond that loses the oldest requests before the runtime sees them (no answer, not even
# "busy"). Requests that will not decode count as in flight too, until a later one is answered or
# UNCONFIRMED_SLOT_S has passed: they take a place in that history until the server's reader takes them.
MAX_OUTSTANDING = 9
UNCONFIRMED_SLOT_S = 2.0
# After the fuzzing, each service gets a burst of this many good requests at once (a client flooding it):
# the runtime promises an answer to every one, "busy" beyond its queue bound.
BURST_REQUESTS = 30
BURST = 'burst'
BURST_TIMEOUT_S = 20.0            # the burst's answers are mostly "busy" (due at once), the rest behind <= 3 updates
BURST_FAILURE = 'burst not answered in full'
RSS_GROWTH_BOUND_MB = 500.0       # peak resident memory over the warmed-up start, per node
# DDS domains of the fuzzer's runs: above those of samrl_common.testing (100..199), at most 232 (ROS 2).
FUZZ_DOMAINS = range(200, 233)
DOMAIN_PROBE_S = 0.5              # how long a domain is watched for other processes before it is used
START_TIMEOUT_S = 180.0           # process start-up (torch, Mitsuba) and DDS discovery on a loaded machine
STOP_TIMEOUT_S = 20.0             # after SIGINT, before SIGKILL
RSS_SAMPLE_PERIOD_S = 0.2
REQUEST_TIMEOUT_S = 30.0
MAX_LISTED_ERRORS = 12
CDR_HEADER = 4
REQUEST_HEADER_BYTES = 16         # client guid + sequence number
CDR_ALIGNMENT = 4
MB = 1024 * 1024

FLOAT64_VALUES = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 1e20, -1e20, -1.0, 1e6)
FLOAT32_VALUES = (math.nan, math.inf, -math.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45, 1e20, -1.0, 1e6)
SIZE_FIELDS = ('width', 'height', 'step', 'binning_x', 'binning_y', 'x_offset', 'y_offset')
ODD_ENCODINGS = ('', 'yuv422', 'rgba8', 'bgr8', 'mono8', 'mono16', '16UC1', '32FC1', '8UC3', 'RGB8', 'rgb8\x00',
                 'bayer_rggb8', '64FC1')
ODD_TEXT = ('', ' ', '/', '/world', 'world ', '..', '../../../etc/passwd', '%s%n%x{0}', 'world\x00camera',
            '\n[FATAL] [0.0] [injected]: not a real log line', 'камера_оптика', '🤖🦾', '\t\r', 'a' * 256,
            'camera_color_optical_frame', 'world', 'peg', 'hole_block', 'needle_threading', 'busy')
QUATERNIONS = ((0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0), (2.0, 0.0, 0.0, 0.0), (1e-9, 0.0, 0.0, 0.0),
               (math.nan, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, -1.0), (1e300, 1e300, 0.0, 0.0), (0.7, 0.0, 0.0, 0.7))
WORD_VALUES = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x00000000, 0x3FFFFFFF, 0x00100000)
MALFORMED_KINDS = ('truncated', 'bitflip', 'word', 'random', 'encapsulation', 'trailing', 'empty', 'wrong_type')
# Foreign encapsulation identifiers that reach the node's runtime (little-endian XCDR2, parameter list, XCDR2
# parameter list). Cyclone's writer also sends unknown ids (0xffff, 0x0011), but its receiver rejects those
# packets as malformed, and a reliable writer then retransmits the sample forever, with every later sample of
# that writer stuck behind it: the fuzzer would block itself, so it leaves them out. Cyclone's writer refuses
# big-endian encodings (0x0000, 0x0006, 0x000a) and unknown ids such as 0x0100.
ENCAPSULATIONS = (b'\x00\x07', b'\x00\x03', b'\x00\x0b')


# --------------------------------------------------------------------------- message generators

@dataclass(frozen=True)
class FuzzItem:
    """One sample to send: `kind` is 'good', 'typed' or 'malformed:<how>'; `data` is its CDR bytes."""

    kind: str
    data: bytes

    @property
    def family(self) -> str:
        return self.kind.split(':', 1)[0]


def _member_kind(annotation) -> tuple:
    """('struct', cls) | ('bool',) | ('scalar', 'uint32') | ('str', bound) | ('seq', sub, bound) | ('array', sub, n)."""
    if isinstance(annotation, type) and hasattr(annotation, '__ros_type__'):
        return ('struct', annotation)
    if annotation is bool:
        return ('bool',)
    if annotation is str:
        return ('str', None)
    if typing.get_origin(annotation) is typing.Annotated:
        meta = typing.get_args(annotation)[1]
        if isinstance(meta, str):
            return ('bool',) if meta == 'bool' else ('scalar', meta)
        kind = type(meta).__name__
        if kind == 'sequence':
            return ('seq', meta.subtype, meta.max_length)
        if kind == 'array':
            return ('array', meta.subtype, meta.length)
        if kind == 'bounded_str':
            return ('str', meta.max_length)
    raise TypeError(f'no fuzzing for member type {annotation!r}')


def _members(cls: type) -> dict[str, Any]:
    return {name: ann for name, ann in getattr(cls, '__annotations__', {}).items()}


def _slots(message, skip: frozenset[str] = frozenset(), depth: int = 0) -> list[tuple[Any, str, tuple]]:
    """Every member of the message, nested ones included: (owner, name, kind); a few elements of struct sequences."""
    out = []
    for name, annotation in _members(type(message)).items():
        if name in skip:
            continue
        kind = _member_kind(annotation)
        out.append((message, name, kind))
        value = getattr(message, name)
        if kind[0] == 'struct' and depth < 8:
            out.extend(_slots(value, depth=depth + 1))
        elif kind[0] in ('seq', 'array') and _member_kind(kind[1])[0] == 'struct' and depth < 8:
            for element in list(value)[:3]:
                out.extend(_slots(element, depth=depth + 1))
    return out


def _int_bounds(kind: str) -> tuple[int, int]:
    bits = int(kind.lstrip('uint'))
    return (0, (1 << bits) - 1) if kind.startswith('u') else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def adversarial_int(kind: str, name: str, rng: np.random.Generator) -> int:
    low, high = _int_bounds(kind)
    values = [low, high, 0, 1, high - 1, low + 1, (high >> 1) + 1, -1 if low < 0 else 2]
    if name in SIZE_FIELDS or name in ('seed', 'episode', 'max_iterations', 'sec', 'nanosec'):
        values += [v for v in (100_000, 65_536, 999_999_999, 1_000_000_000, 2 ** 31 - 1, -2 ** 31, 2 ** 32 - 1,
                               -2, 2 ** 63 - 1, -2 ** 63) if low <= v <= high]
    return int(values[rng.integers(len(values))]) if rng.random() < 0.85 else int(rng.integers(low, high,
                                                                                              endpoint=True))


def adversarial_float(kind: str, rng: np.random.Generator) -> float:
    values = FLOAT32_VALUES if kind == 'float32' else FLOAT64_VALUES
    return float(values[rng.integers(len(values))]) if rng.random() < 0.9 else float(rng.normal(0.0, 1e3))


def adversarial_text(rng: np.random.Generator, bound: int | None = None) -> str:
    choice = rng.integers(5)
    if choice == 0:
        text = ODD_TEXT[rng.integers(len(ODD_TEXT))]
    elif choice == 1:
        text = 'x' * int(rng.integers(1, MAX_TEXT_CHARS))
    elif choice == 2:  # random code points, surrogates left out (they cannot be UTF-8)
        points = rng.integers(1, 0xD7FF, size=int(rng.integers(1, 200)))
        text = ''.join(map(chr, points))
    elif choice == 3:
        text = ''.join(chr(c) for c in rng.integers(0, 32, size=int(rng.integers(1, 40))))
    else:
        text = '/'.join(['frame'] * int(rng.integers(1, 500)))
    return text[:bound] if bound else text


def _adversarial_bytes(value: bytes, rng: np.random.Generator) -> bytes:
    value = bytes(value)
    choice = rng.integers(7)
    if choice == 0:
        return b''
    if choice == 1:
        return value[:int(rng.integers(0, max(len(value), 1)))]
    if choice == 2:
        return value + rng.bytes(int(rng.integers(1, 4096)))
    if choice == 3:
        return rng.bytes(len(value))
    if choice == 4:
        return b'\xff' * len(value)
    if choice == 5:
        return bytes(int(rng.integers(1, 16)))
    return rng.bytes(int(rng.integers(1, MAX_FUZZ_BYTES // 2)))


def _adversarial_sequence(kind: tuple, value, name: str, rng: np.random.Generator):
    sub = _member_kind(kind[1])
    bound = kind[2]
    if isinstance(value, (bytes, bytearray)):   # uint8[] (image data): fixed-size ones keep their length
        return _adversarial_bytes(value, rng) if kind[0] == 'seq' else rng.bytes(len(value))
    if kind[0] == 'array':  # a fixed length: adversarial elements
        return [_adversarial_scalar(sub, name, rng) if sub[0] != 'struct' else sub[1]() for _ in range(kind[2])]
    choice = rng.integers(4)
    items = list(value)
    if choice == 0:
        return []
    count = int(rng.choice([2, 7, 100, 1000, MAX_SEQUENCE_ITEMS]))
    if bound:
        count = min(count, bound)
    if sub[0] == 'struct':
        template = items[0] if items else sub[1]()
        return [template] * count if choice == 1 else items + [sub[1]() for _ in range(min(count, 50))]
    if choice == 1:
        return [_adversarial_scalar(sub, name, rng)] * count
    return items + [_adversarial_scalar(sub, name, rng) for _ in range(min(count, 200))]


def _adversarial_scalar(kind: tuple, name: str, rng: np.random.Generator):
    if kind[0] == 'bool':
        return bool(rng.integers(2))
    if kind[0] == 'str':
        return adversarial_text(rng, kind[1])
    if kind[1].startswith('float'):
        return adversarial_float(kind[1], rng)
    return adversarial_int(kind[1], name, rng)


def _mutate_struct(value, rng: np.random.Generator, now_s: float):
    """A meaning-aware mutation of a known struct (image, quaternion, stamp); None for others."""
    ros = type(value).__ros_type__
    if ros == 'geometry_msgs/msg/Quaternion':
        value.x, value.y, value.z, value.w = QUATERNIONS[rng.integers(len(QUATERNIONS))]
        return value
    if ros == 'builtin_interfaces/msg/Time':
        now = now_s
        sec, nanosec = [(0, 0), (2 ** 31 - 1, 999_999_999), (-2 ** 31, 0), (int(now) + 10 ** 6, 0),
                        (int(now) - 10 ** 6, 0), (int(now), 1_000_000_000), (int(now), 2 ** 32 - 1),
                        (int(now) + 2, 0), (int(now) - 60, 0), (-1, 0)][rng.integers(10)]
        value.sec, value.nanosec = sec, nanosec
        return value
    if ros == 'sensor_msgs/msg/Image':
        choice = rng.integers(8)
        if choice == 0:   # a huge image claimed, a few bytes sent
            value.width, value.height = int(rng.choice([100_000, 65_536, 2 ** 31])), int(rng.choice([1, 100_000]))
            value.step = value.width * 3
        elif choice == 1:
            value.width, value.height, value.step = [(0, 0, 0), (0, 48, 0), (64, 0, 192), (1, 1, 1)][rng.integers(4)]
        elif choice == 2:
            value.encoding = ODD_ENCODINGS[rng.integers(len(ODD_ENCODINGS))]
        elif choice == 3:
            value.step = int(rng.choice([0, 1, value.step - 1, value.step + 1, 2 ** 32 - 1]))
        elif choice == 4:
            value.is_bigendian = int(rng.choice([1, 2, 255]))
        elif choice == 5:   # every pixel NaN, inf or negative (for float depth) or saturated
            fill = rng.choice([np.nan, np.inf, -1.0, 0.0])
            if value.encoding == '32FC1':
                value.data = np.full(len(value.data) // 4, fill, '<f4').tobytes()
            else:
                value.data = bytes([0 if fill == 0.0 else 255]) * len(value.data)
        elif choice == 6:   # a consistent but large image
            side = int(rng.choice([1024, 2048, 4096, 8192]))
            value.width, value.height, value.encoding, value.step = side, max(1, MAX_FUZZ_BYTES // (3 * side) - 1), \
                'rgb8', side * 3
            value.data = bytes(value.step * value.height)
        else:
            value.data = _adversarial_bytes(value.data, rng)
        return value
    return None


def adversarial_message(good, rng: np.random.Generator, skip: frozenset[str] = frozenset(), now_s: float = 0.0):
    """`good` (not changed) with 1-3 members set to adversarial values; it serializes within MAX_FUZZ_BYTES.
    Stamps are set relative to `now_s` (seconds), e.g. a million seconds ahead of it."""
    cls = type(good)
    base = msgs.serialize(good)
    for _ in range(MUTATION_ATTEMPTS):
        message = msgs.deserialize(cls, base)  # a deep copy
        for _ in range(int(rng.integers(1, 4))):
            slots = _slots(message, skip)
            owner, name, kind = slots[rng.integers(len(slots))]
            value = getattr(owner, name)
            if kind[0] == 'struct':
                mutated = _mutate_struct(value, rng, now_s) if rng.random() < 0.8 else None
                setattr(owner, name, mutated if mutated is not None else kind[1]())
            elif kind[0] in ('seq', 'array'):
                setattr(owner, name, _adversarial_sequence(kind, value, name, rng))
            else:
                setattr(owner, name, _adversarial_scalar(kind, name, rng))
        try:
            if len(msgs.serialize(message)) <= MAX_FUZZ_BYTES:
                return message
        except Exception:  # noqa: BLE001 - cyclonedds raises plain Exception for values the type cannot hold
            continue
    return msgs.deserialize(cls, base)


def malformed_bytes(data: bytes, rng: np.random.Generator, wrong_types: Sequence[bytes] = (),
                    protect: int = 0) -> tuple[str, bytes]:
    """(how, bytes): `data` broken in one of MALFORMED_KINDS; `protect` bytes after the CDR header stay
    intact except in 'random', 'encapsulation' and 'wrong_type' (a service request's guid and sequence)."""
    how = MALFORMED_KINDS[rng.integers(len(MALFORMED_KINDS))]
    if how == 'wrong_type' and not wrong_types:
        how = 'truncated'
    first = min(CDR_HEADER + protect, len(data))
    if how == 'truncated':   # at least a byte after the header: Cyclone does not send the header alone
        return how, data[:int(rng.integers(CDR_HEADER + 1, len(data)))] if len(data) > CDR_HEADER + 1 else data
    if how == 'bitflip':
        out = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            if len(out) > first:
                position = int(rng.integers(first, len(out)))
                out[position] ^= 1 << int(rng.integers(8))
        return how, bytes(out)
    if how == 'word':
        out = bytearray(data)
        words = (len(out) - first) // 4
        for _ in range(int(rng.integers(1, 5)) if words > 0 else 0):
            at = first + 4 * int(rng.integers(words))
            out[at:at + 4] = int(rng.choice(WORD_VALUES)).to_bytes(4, 'little')
        return how, bytes(out)
    if how == 'random':
        header = b'\x00\x01' if rng.random() < 0.7 else ENCAPSULATIONS[rng.integers(len(ENCAPSULATIONS))]
        return how, header + b'\x00\x00' + rng.bytes(int(rng.integers(1, 4096)))
    if how == 'encapsulation':
        return how, ENCAPSULATIONS[rng.integers(len(ENCAPSULATIONS))] + data[2:]
    if how == 'trailing':
        return how, data + rng.bytes(int(rng.integers(4, 257)))
    if how == 'empty':   # a CDR header and one zero word (Cyclone does not send a header alone)
        return how, data[:CDR_HEADER] + bytes(4)
    return how, wrong_types[rng.integers(len(wrong_types))]


class MessageFuzzer:
    """The samples of one input stream: good, typed-adversarial and malformed, deterministic for a seed.

    good(rng, stamp_ns) makes a valid message (stamped stamp_ns where it has stamps); wrong_types are
    CDR samples of other types to put on this topic; `skip` names members never mutated and `protect`
    the bytes after the CDR header never corrupted (a request's header, so its answer comes back to us).
    """

    def __init__(self, cls: type, good: Callable[[np.random.Generator, int], Any], seed,
                 wrong_types: Sequence[bytes] = (), good_every: int = GOOD_EVERY, skip: frozenset[str] = frozenset(),
                 protect: int = 0):
        self.cls, self.good, self.wrong_types = cls, good, tuple(wrong_types)
        self.good_every, self.skip, self.protect = good_every, skip, protect
        self.rng = np.random.default_rng(seed)

    def item(self, index: int, stamp_ns: int, prepare: Callable[[Any], Any] = lambda m: m) -> FuzzItem:
        """The index-th sample; `prepare` finishes the good message (e.g. sets a request's header)."""
        good = prepare(self.good(self.rng, stamp_ns))
        if not isinstance(good, self.cls):
            raise TypeError(f'good input of {self.cls.__ros_type__} is a {type(good).__name__}')
        if index % self.good_every == 0:
            return FuzzItem('good', msgs.serialize(good))
        if self.rng.random() < TYPED_FRACTION:
            return FuzzItem('typed', msgs.serialize(adversarial_message(good, self.rng, self.skip, stamp_ns / 1e9)))
        how, data = malformed_bytes(msgs.serialize(good), self.rng, self.wrong_types, self.protect)
        return FuzzItem(f'malformed:{how}', data)


def padded(data: bytes) -> bytes:
    """The bytes as the DDS writer sends them (padded to 4, as DdsPublisher.publish_bytes does)."""
    pad = -len(data) % CDR_ALIGNMENT
    return data + bytes(pad) if pad else data


def decodes(cls: type, data: bytes):
    """The message the bytes decode to at the receiver, or None when its runtime drops them."""
    try:
        return msgs.deserialize(cls, padded(data))
    except msgs.MessageError:
        return None


# --------------------------------------------------------------------------- inputs of the nodes

def _stamp(stamp_ns: int):
    return msgs.get_message('builtin_interfaces/msg/Time')(sec=stamp_ns // 10 ** 9, nanosec=stamp_ns % 10 ** 9)


def _frames_qos():
    """The rgbd topic's QoS: reliable keep-last (QOS_FRAMES) where the runtime defines it."""
    from samrl_common.runtime import qos
    return getattr(qos, 'QOS_FRAMES', qos.QOS_SENSOR_DATA)


@dataclass
class TopicInput:
    topic: str
    msg_type: str
    qos: Any
    good: Callable[[np.random.Generator, int], Any]


@dataclass
class ServiceInput:
    name: str
    srv_type: str
    good: Callable[[np.random.Generator, int], Any]      # a valid Request
    good_every: int = GOOD_EVERY
    timeout_s: float = REQUEST_TIMEOUT_S
    max_outstanding: int = MAX_OUTSTANDING


@dataclass
class Inputs:
    topics: list[TopicInput]
    services: list[ServiceInput] = field(default_factory=list)


class Session:
    """The fuzzer's side of one node's run: a runtime Node for checks and a raw DDS participant for samples."""

    def __init__(self, process, inputs: Inputs):
        from samrl_common.runtime import Node
        from samrl_common.runtime.dds import DdsBackend
        self.process = process
        self.node = Node('samrl_fuzz', argv=[])
        self.raw = DdsBackend()
        self.writers = {t.topic: self.raw.publisher(t.topic, msgs.get_message(t.msg_type), t.qos)
                        for t in inputs.topics}

    def publish(self, topic: str, message) -> None:
        self.writers[topic].publish_bytes(msgs.serialize(message))

    def wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin the check node until condition() or the timeout; False also when the process has died."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline or self.process.poll() is not None:
                return False
            self.node.spin_once(timeout_s=0.02)
        return True

    def close(self) -> None:
        self.node.destroy()
        self.raw.close()
        self.writers.clear()


@dataclass
class Target:
    """A node under test: how to start it, its inputs, and how to see it do its job."""

    name: str
    module: str
    params: tuple[str, ...]
    job: str                                   # what the job check checks, in words
    make: Callable[[], 'TargetRun']
    pace_s: float = 0.002                      # pause after each round of topic messages


class TargetRun:
    """Per-run state of a target: inputs (built before the node starts) and the checks."""

    def params(self) -> tuple[str, ...]:
        """Parameters known only once the run is made (a directory it wrote), after the target's."""
        return ()

    def close(self) -> None:
        """Remove what the run made (called after the node has stopped)."""

    def inputs(self) -> Inputs:
        raise NotImplementedError

    def setup(self, session: Session) -> None:
        """Create check subscriptions/clients and send initial state (called once all inputs match)."""

    def check(self, session: Session) -> tuple[bool, str]:
        raise NotImplementedError

    def after_good(self, session: Session, stamp_ns: int) -> None:
        """Called after a round with a good message stamped stamp_ns: a node that is slow with good input
        may be waited for here, so that the messages after it are not superseded unseen."""


class Stamps(set):
    """The (sec, nanosec) stamps of the messages seen on an output (not the messages: they add up)."""

    def add_stamp(self, message) -> None:
        self.add((message.header.stamp.sec, message.header.stamp.nanosec))


def _vector3(x: float, y: float, z: float):
    return msgs.get_message('geometry_msgs/msg/Vector3')(x=float(x), y=float(y), z=float(z))


def _peg_world():
    from samrl_sim.world import World
    world = World('peg_insertion')
    world.reset(0)
    return world


def _ee_command(translation, stamp_ns: int, rotation=(0.0, 0.0, 0.0), gripper: float = 0.04):
    message = msgs.samrl_interfaces.msg.EndEffectorCommand(translation=_vector3(*translation),
                                                           rotation=_vector3(*rotation), gripper_width=gripper)
    message.header.stamp, message.header.frame_id = _stamp(stamp_ns), 'world'
    return message


class BridgeRun(TargetRun):
    JOINT_MOVED = 1e-3     # rad: a valid command moved the arm

    def __init__(self):
        from samrl_common.conversions import pose_msg
        world = _peg_world()
        try:
            self.camera_pose = pose_msg(world.camera_pose())   # reachable: where the camera arm is
        finally:
            world.close()
        self.states, self.arm = 0, None

    def _good_goal(self, rng, stamp_ns):
        goal = msgs.geometry_msgs.msg.PoseStamped(pose=self.camera_pose)
        goal.header.stamp, goal.header.frame_id = _stamp(stamp_ns), 'world'
        return goal

    def inputs(self) -> Inputs:
        from samrl_common.runtime import QOS_DEFAULT

        def good_command(rng, stamp_ns):
            return _ee_command(rng.uniform(-0.005, 0.005, 3), stamp_ns, rng.uniform(-0.02, 0.02, 3),
                               float(rng.uniform(0.0, 0.08)))

        def good_reset(rng, _stamp_ns):
            return msgs.samrl_interfaces.srv.ResetEpisode.Request(seed=int(rng.choice([-1, rng.integers(0, 1000)])))

        return Inputs([TopicInput('/samrl/ee_command', 'samrl_interfaces/msg/EndEffectorCommand', QOS_DEFAULT,
                                  good_command),
                       TopicInput('/samrl/camera_goal', 'geometry_msgs/msg/PoseStamped', QOS_DEFAULT, self._good_goal)],
                      [ServiceInput('/samrl/reset_episode', 'samrl_interfaces/srv/ResetEpisode', good_reset)])

    def setup(self, session: Session) -> None:
        session.node.create_subscription('samrl_interfaces/msg/TaskState', '/samrl/task_state', self._on_state)
        session.node.create_subscription('sensor_msgs/msg/JointState', '/joint_states', self._on_joints)
        self.reset = session.node.create_client('samrl_interfaces/srv/ResetEpisode', '/samrl/reset_episode')

    def _on_state(self, _message) -> None:
        self.states += 1

    def _on_joints(self, message) -> None:
        self.arm = np.array(message.position[:7])     # the Panda's seven joints

    def _moved(self, start: np.ndarray) -> bool:
        return self.arm is not None and float(np.abs(self.arm - start).max()) > self.JOINT_MOVED

    def check(self, session: Session) -> tuple[bool, str]:
        before = self.states
        session.wait(lambda: False, 2.0)
        states = self.states - before
        if states < 5:
            return False, f'{states} /samrl/task_state messages in 2 s (expected ~20 at 10 Hz)'
        if not session.wait(self.reset.service_is_ready, 10.0):
            return False, '/samrl/reset_episode is not available'
        try:
            answer = self.reset.call(msgs.samrl_interfaces.srv.ResetEpisode.Request(seed=0), timeout_s=20.0)
        except TimeoutError as exc:
            return False, str(exc)
        if not answer.success:
            return False, f'a valid reset was refused: {answer.message}'
        session.wait(lambda: False, 0.5)
        if self.arm is None:
            return False, 'no /joint_states'
        start = self.arm.copy()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:   # a small valid command each control period until the arm moves
            session.publish('/samrl/ee_command', _ee_command((0.0, 0.0, 0.01), time.time_ns()))
            if session.wait(lambda: self._moved(start), 0.1):
                return True, f'{states} task states in 2 s; a valid reset answered; a valid command moved the arm'
        return False, 'a valid end-effector command did not move the arm within 5 s'


def _camera_images(stamp_ns: int, width: int = 64, height: int = 48, rng=None):
    from samrl_description.names import OPTICAL_FRAME
    from samrl_sim.conversions import image_msgs
    rng = rng if rng is not None else np.random.default_rng(0)
    rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    depth = np.full((height, width), 0.5, np.float32) + rng.uniform(0.0, 0.1, (height, width)).astype(np.float32)
    return image_msgs(rgb, depth, _stamp(stamp_ns), OPTICAL_FRAME)


def _camera_info(stamp_ns: int, width: int = 64, height: int = 48):
    from samrl_common.conversions import camera_info_msg
    from samrl_description.camera import CameraIntrinsics
    from samrl_description.names import OPTICAL_FRAME
    return camera_info_msg(CameraIntrinsics.d435(width, height), _stamp(stamp_ns), OPTICAL_FRAME)


class CaptureRun(TargetRun):
    def __init__(self):
        self.frames = Stamps()

    @staticmethod
    def _static_tf(stamp_ns: int):
        from samrl_common.tf_ros import to_msg
        from samrl_description.geometry import Pose
        from samrl_description.names import OPTICAL_FRAME
        pose = Pose(np.array([0.5, -0.4, 0.5]), np.array([1.0, 0.0, 0.0, 0.0]))
        return msgs.tf2_msgs.msg.TFMessage(transforms=[to_msg('world', OPTICAL_FRAME, pose, _stamp(stamp_ns))])

    @staticmethod
    def _dynamic_tf(rng, stamp_ns: int):
        from samrl_common.tf_ros import to_msg
        from samrl_description.geometry import Pose
        pose = Pose(rng.uniform(-1.0, 1.0, 3), np.array([0.0, 0.0, 0.0, 1.0]))
        return msgs.tf2_msgs.msg.TFMessage(transforms=[to_msg('world', 'fuzz_link', pose, _stamp(stamp_ns))])

    def inputs(self) -> Inputs:
        from samrl_common.runtime import QOS_LATCHED, QOS_SENSOR_DATA, QOS_TF
        from samrl_description.names import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
        return Inputs([
            TopicInput(COLOR_TOPIC, 'sensor_msgs/msg/Image', QOS_SENSOR_DATA,
                       lambda rng, stamp_ns: _camera_images(stamp_ns, rng=rng)[0]),
            TopicInput(DEPTH_TOPIC, 'sensor_msgs/msg/Image', QOS_SENSOR_DATA,
                       lambda rng, stamp_ns: _camera_images(stamp_ns, rng=rng)[1]),
            TopicInput(COLOR_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', QOS_SENSOR_DATA,
                       lambda rng, stamp_ns: _camera_info(stamp_ns)),
            TopicInput('/tf', 'tf2_msgs/msg/TFMessage', QOS_TF, self._dynamic_tf),
            TopicInput('/tf_static', 'tf2_msgs/msg/TFMessage', QOS_LATCHED,
                       lambda rng, stamp_ns: self._static_tf(stamp_ns))])

    def setup(self, session: Session) -> None:
        from samrl_common.runtime import QOS_SENSOR_DATA
        from samrl_perception.capture_node import RGBD_TOPIC
        session.node.create_subscription('samrl_interfaces/msg/RGBDFrame', RGBD_TOPIC, self.frames.add_stamp,
                                         QOS_SENSOR_DATA)
        session.publish('/tf_static', self._static_tf(time.time_ns()))

    def check(self, session: Session) -> tuple[bool, str]:
        from samrl_description.names import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
        session.publish('/tf_static', self._static_tf(time.time_ns()))  # fuzzed ones may have re-parented it
        for attempt in range(1, 6):
            stamp_ns = time.time_ns()
            color, depth = _camera_images(stamp_ns)
            session.publish(COLOR_INFO_TOPIC, _camera_info(stamp_ns))
            session.wait(lambda: False, 0.05)
            session.publish(COLOR_TOPIC, color)
            session.publish(DEPTH_TOPIC, depth)
            stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
            if session.wait(lambda: stamp in self.frames, 3.0):
                return True, f'a good 64x48 pair came out as an RGBDFrame (attempt {attempt})'
        return False, 'no RGBDFrame for 5 good colour/depth pairs (3 s each)'


def _rgbd_frame(stamp_ns: int, rng, width: int = 64, height: int = 48):
    """A frame of random colour at 0.4 m, from the world's origin (what segmentation takes)."""
    from samrl_description.camera import CameraIntrinsics
    from samrl_description.geometry import Pose
    return _frame_msg(stamp_ns, rng.integers(0, 255, (height, width, 3), dtype=np.uint8),
                      np.full((height, width), 0.4, np.float32), CameraIntrinsics.d435(width, height), Pose.identity())


def _frame_msg(stamp_ns: int, rgb: np.ndarray, depth_m: np.ndarray, intrinsics, camera_pose):
    """samrl_interfaces/RGBDFrame as capture_node sends it, the camera's pose (a Pose) in the world."""
    from samrl_common.conversions import camera_info_msg, pose_msg
    from samrl_common.images import array_to_image
    from samrl_description.names import OPTICAL_FRAME
    stamp = _stamp(stamp_ns)
    message = msgs.samrl_interfaces.msg.RGBDFrame(
        rgb=array_to_image(rgb, 'rgb8', stamp, OPTICAL_FRAME),
        depth=array_to_image(depth_m, '32FC1', stamp, OPTICAL_FRAME),
        camera_info=camera_info_msg(intrinsics, stamp, OPTICAL_FRAME), world_frame='world',
        camera_pose=pose_msg(camera_pose))
    message.header.stamp, message.header.frame_id = stamp, OPTICAL_FRAME
    return message


def _object_masks(stamp_ns: int, label: str, mask: np.ndarray):
    """samrl_interfaces/ObjectMasks of one instance (mono8 `mask`, non-zero on it), as segmentation sends it."""
    from samrl_common.images import array_to_image
    from samrl_description.names import OPTICAL_FRAME
    from samrl_description.objects import OBJECT_CLASSES
    stamp = _stamp(stamp_ns)
    labels = (mask > 0).astype(np.uint8) * (OBJECT_CLASSES.index(label) + 1)
    message = msgs.samrl_interfaces.msg.ObjectMasks(
        source='oracle', labels=[label], scores=[1.0], masks=[array_to_image(mask, 'mono8', stamp, OPTICAL_FRAME)],
        label_image=array_to_image(labels, 'mono8', stamp, OPTICAL_FRAME))
    message.header.stamp, message.header.frame_id = stamp, OPTICAL_FRAME
    return message


class SegmentationRun(TargetRun):
    GOOD_FRAME_WAIT_S = 3.0

    def __init__(self):
        self.masks = Stamps()

    def inputs(self) -> Inputs:
        from samrl_perception.capture_node import RGBD_TOPIC
        return Inputs([TopicInput(RGBD_TOPIC, 'samrl_interfaces/msg/RGBDFrame', _frames_qos(),
                                  lambda rng, stamp_ns: _rgbd_frame(stamp_ns, rng))])

    def setup(self, session: Session) -> None:
        from samrl_common.runtime import QOS_SENSOR_DATA
        from samrl_perception.segmentation_node import MASKS_TOPIC
        session.node.create_subscription('samrl_interfaces/msg/ObjectMasks', MASKS_TOPIC, self.masks.add_stamp,
                                         QOS_SENSOR_DATA)

    def after_good(self, session: Session, stamp_ns: int) -> None:
        """Segmenting takes 0.1-0.3 s, and frames that come meanwhile supersede each other: wait for it."""
        stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
        session.wait(lambda: stamp in self.masks, self.GOOD_FRAME_WAIT_S)

    def check(self, session: Session) -> tuple[bool, str]:
        from samrl_perception.capture_node import RGBD_TOPIC
        rng = np.random.default_rng(0)
        for attempt in range(1, 6):
            stamp_ns = time.time_ns()
            session.publish(RGBD_TOPIC, _rgbd_frame(stamp_ns, rng))
            stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
            if session.wait(lambda: stamp in self.masks, 15.0):
                return True, f'a good 64x48 RGBDFrame was segmented (attempt {attempt})'
        return False, 'no ObjectMasks for 5 good frames (15 s each)'


TASK = 'peg_insertion'               # the task graph of the targets that run one task's nodes
TRACK_TARGET = 'hole_block'          # what model_node tracks in peg insertion
TASK_STEPS = 150                     # an episode's step budget in the good task states


@dataclass(frozen=True)
class TrackView:
    """A view of the tracking target with the Panda's state, from the world at reset: one tracking update."""

    rgb: np.ndarray
    depth_m: np.ndarray
    mask: np.ndarray               # mono8, 255 on TRACK_TARGET
    intrinsics: Any
    camera_pose: Any               # the optical frame's Pose in the world
    tcp_pose: Any
    finger_opening_m: float

    @classmethod
    def of(cls, world, width: int, height: int) -> 'TrackView':
        image = world.render(width, height)
        mask = (image.seg == world.segmentation_ids()[TRACK_TARGET]).astype(np.uint8) * 255
        return cls(image.rgb, image.depth_m.astype(np.float32), mask, world.camera_intrinsics(width, height),
                   world.camera_pose(), world.tcp_pose(), float(world.panda.gripper_width()))

    def request_fields(self) -> dict:
        """The fields of a valid TrackModel request."""
        from samrl_common.conversions import camera_info_msg, pose_msg
        from samrl_common.images import array_to_image
        from samrl_description.names import OPTICAL_FRAME
        return {'rgb': array_to_image(self.rgb, 'rgb8'), 'depth': array_to_image(self.depth_m, '32FC1'),
                'mask': array_to_image(self.mask, 'mono8'),
                'camera_info': camera_info_msg(self.intrinsics, _stamp(0), OPTICAL_FRAME),
                'camera_pose': pose_msg(self.camera_pose), 'target': TRACK_TARGET, 'tcp_pose': pose_msg(self.tcp_pose),
                'finger_opening_m': self.finger_opening_m}

    def frame(self, stamp_ns: int):
        return _frame_msg(stamp_ns, self.rgb, self.depth_m, self.intrinsics, self.camera_pose)

    def masks(self, stamp_ns: int):
        return _object_masks(stamp_ns, TRACK_TARGET, self.mask)


class WorldTf:
    """Both arms' tf tree at the world's reset, as the sim bridge sends it: fixed joints and the arms' bases
    on /tf_static, the moving joints on /tf (stamped: model_node looks the Panda up at a frame's stamp)."""

    def __init__(self, world):
        self.edges = world.transforms()

    def message(self, stamp_ns: int, static: bool):
        from samrl_common.tf_ros import to_msg
        return msgs.tf2_msgs.msg.TFMessage(transforms=[to_msg(e.parent, e.child, e.pose, _stamp(stamp_ns))
                                                       for e in self.edges if e.static == static])

    def inputs(self) -> list[TopicInput]:
        from samrl_common.runtime import QOS_LATCHED, QOS_TF
        return [TopicInput('/tf_static', 'tf2_msgs/msg/TFMessage', QOS_LATCHED,
                           lambda rng, stamp_ns: self.message(stamp_ns, True)),
                TopicInput('/tf', 'tf2_msgs/msg/TFMessage', QOS_TF,
                           lambda rng, stamp_ns: self.message(stamp_ns, False))]

    def publish(self, session: Session, stamp_ns: int) -> None:
        """The whole tree (fuzzed messages may have re-parented or replaced its frames)."""
        session.publish('/tf_static', self.message(stamp_ns, True))
        session.publish('/tf', self.message(stamp_ns, False))


def _task_state(stamp_ns: int, step: int, episode: int = 0, seed: int = 0):
    """samrl_interfaces/TaskState of a running peg-insertion episode (a control tick of the world)."""
    message = msgs.samrl_interfaces.msg.TaskState(task=TASK, episode=episode, seed=seed, step=step % TASK_STEPS,
                                                  max_steps=TASK_STEPS, info_json='{}')
    message.header.stamp, message.header.frame_id = _stamp(stamp_ns), 'world'
    return message


def _sim_state_template(world):
    """The sim bridge's privileged samrl_interfaces/SimState of the world now (stamp 0)."""
    from samrl_sim import conversions as conv
    from samrl_sim.world import read_body_states
    return conv.sim_state_msg(read_body_states(world.client), TASK, 0, 0, _stamp(0))


def _restamped(message, stamp_ns: int):
    """A copy of a stamped message with a new header stamp."""
    copy = msgs.deserialize(type(message), msgs.serialize(message))
    copy.header.stamp = _stamp(stamp_ns)
    return copy


class ModelRun(TargetRun):
    """Updates take seconds: one request in UPDATE_GOOD_EVERY is a valid one-iteration update of a 64x48 view."""

    UPDATE_GOOD_EVERY = 50
    # model_node queues UPDATES_WAITING (2) updates behind the running one: one more is "busy" (not imported
    # here: samrl_model.model_node brings torch and Mitsuba into the fuzzer).
    UPDATE_OUTSTANDING = 4
    TIMEOUT_S = 300.0      # a request may wait behind the running update and the queued ones

    TRACK_SIZE_PX = (160, 120)     # the tracker's window (128x96) must fit in the frame

    def __init__(self):
        world = _peg_world()
        try:
            self._read_world(world)
        finally:
            world.close()

    def _read_world(self, world) -> None:
        """What the good inputs are made of: a 64x48 view of the hole block and the tracker's view."""
        image = world.render(64, 48)
        self.mask = (image.seg == world.segmentation_ids()[TRACK_TARGET]).astype(np.uint8) * 255
        self.rgb, self.depth = image.rgb, image.depth_m.astype(np.float32)
        self.intrinsics, self.pose = world.camera_intrinsics(64, 48), world.camera_pose()
        self.view = TrackView.of(world, *self.TRACK_SIZE_PX)
        self.track_frame = self.view.request_fields()

    def track_request(self, rng=None, _stamp_ns: int = 0):
        """A valid tracking update: an episode's start (a coarse model) now and then, else a step."""
        start = rng is None or rng.random() < 0.2
        return msgs.samrl_interfaces.srv.TrackModel.Request(**self.track_frame, episode_start=bool(start))

    def _camera(self, width: int, height: int):
        from samrl_common.conversions import camera_info_msg, pose_msg
        from samrl_description.camera import CameraIntrinsics
        k = self.intrinsics if (width, height) == (64, 48) else CameraIntrinsics.d435(width, height)
        return camera_info_msg(k, _stamp(0), 'camera_color_optical_frame'), pose_msg(self.pose)

    def update_request(self, rng=None, _stamp_ns: int = 0):
        from samrl_common.images import array_to_image
        info, pose = self._camera(64, 48)
        return msgs.samrl_interfaces.srv.UpdateModel.Request(
            rgb=array_to_image(self.rgb, 'rgb8'), depth=array_to_image(self.depth, '32FC1'),
            mask=array_to_image(self.mask, 'mono8'), camera_info=info, camera_pose=pose, target='hole_block',
            max_iterations=1)

    def render_request(self, rng=None, _stamp_ns: int = 0):
        width, height = ((16, 12), (32, 24), (64, 48))[int(rng.integers(3)) if rng is not None else 1]
        info, pose = self._camera(width, height)
        return msgs.samrl_interfaces.srv.RenderModel.Request(camera_pose=pose, camera_info=info,
                                                             target=('hole_block', 'peg', '')[
                                                                 int(rng.integers(3)) if rng is not None else 0])

    def inputs(self) -> Inputs:
        return Inputs([], [ServiceInput('/samrl/model/update', 'samrl_interfaces/srv/UpdateModel', self.update_request,
                                        self.UPDATE_GOOD_EVERY, self.TIMEOUT_S, self.UPDATE_OUTSTANDING),
                           ServiceInput('/samrl/model/render', 'samrl_interfaces/srv/RenderModel', self.render_request,
                                        GOOD_EVERY, self.TIMEOUT_S),
                           ServiceInput('/samrl/model/track', 'samrl_interfaces/srv/TrackModel', self.track_request,
                                        self.UPDATE_GOOD_EVERY, self.TIMEOUT_S, self.UPDATE_OUTSTANDING)])

    def setup(self, session: Session) -> None:
        self.update = session.node.create_client('samrl_interfaces/srv/UpdateModel', '/samrl/model/update')
        self.render = session.node.create_client('samrl_interfaces/srv/RenderModel', '/samrl/model/render')
        self.track = session.node.create_client('samrl_interfaces/srv/TrackModel', '/samrl/model/track')

    def check(self, session: Session) -> tuple[bool, str]:
        try:
            render = self.render.call(self.render_request(), timeout_s=self.TIMEOUT_S)
            if not render.success:
                return False, f'a valid 32x24 render failed: {render.message}'
            update = self.update.call(self.update_request(), timeout_s=self.TIMEOUT_S)
            track = self.track.call(self.track_request(), timeout_s=self.TIMEOUT_S)
        except TimeoutError as exc:
            return False, str(exc)
        if not update.success or not math.isfinite(update.final_loss):
            return False, f'a valid one-iteration update failed: {update.message} (loss {update.final_loss})'
        if not track.success or track.action != 'coarse':
            return False, f'a valid tracking start failed: {track.message} ({track.action})'
        return True, (f'a valid 32x24 render, a one-iteration update (loss {update.final_loss:.3g}) and a tracking '
                      f'start ({track.iterations} iterations) succeeded')


class OracleRun(TargetRun):
    def __init__(self):
        world = _peg_world()
        try:
            self.template = _sim_state_template(world)
        finally:
            world.close()
        self.commands = Stamps()

    def sim_state(self, rng=None, stamp_ns: int = 0):
        return _restamped(self.template, stamp_ns or time.time_ns())

    def inputs(self) -> Inputs:
        from samrl_common.runtime import QOS_DEFAULT
        return Inputs([TopicInput('/samrl/sim_state', 'samrl_interfaces/msg/SimState', QOS_DEFAULT, self.sim_state)])

    def setup(self, session: Session) -> None:
        session.node.create_subscription('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command',
                                         self.commands.add_stamp)

    def check(self, session: Session) -> tuple[bool, str]:
        for attempt in range(1, 6):
            stamp_ns = time.time_ns()
            session.publish('/samrl/sim_state', self.sim_state(stamp_ns=stamp_ns))
            stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
            if session.wait(lambda: stamp in self.commands, 5.0):
                return True, f'a good SimState was answered with an end-effector command (attempt {attempt})'
        return False, 'no /samrl/ee_command for 5 good SimStates (5 s each)'


class TrackerRun(ModelRun):
    """model_node following the world (track:=true): frames with their masks, the world's task and sim states and
    its tf, besides the services. A good frame and masks pair with the tf and a sim state at its stamp is tracked,
    and the error against the sim state comes out as a ModelError of the frame's stamp."""

    GOOD_PAIR_WAIT_S = 10.0        # after a good pair while fuzzing: one tracking update on a loaded machine
    CHECK_WAIT_S = 60.0            # per attempt of the job check (an episode's first frame fits a coarse model)
    CHECK_ATTEMPTS = 3
    INPUTS_FIRST_S = 0.1           # tf and the states go first: a pair is tracked as soon as it is complete

    def _read_world(self, world) -> None:
        super()._read_world(world)
        self.tf = WorldTf(world)
        self.sim_template = _sim_state_template(world)
        self.errors: dict[tuple[int, int], Any] = {}
        self.ticks = 0

    def _tick(self, _rng, stamp_ns: int):
        self.ticks += 1
        return _task_state(stamp_ns, self.ticks)

    def inputs(self) -> Inputs:
        from samrl_common.runtime import QOS_DEFAULT, QOS_SENSOR_DATA
        from samrl_perception.capture_node import RGBD_TOPIC
        from samrl_perception.segmentation_node import MASKS_TOPIC
        return Inputs([*self.tf.inputs(),
                       TopicInput('/samrl/sim_state', 'samrl_interfaces/msg/SimState', QOS_DEFAULT,
                                  lambda rng, stamp_ns: _restamped(self.sim_template, stamp_ns)),
                       TopicInput('/samrl/task_state', 'samrl_interfaces/msg/TaskState', QOS_DEFAULT, self._tick),
                       TopicInput(MASKS_TOPIC, 'samrl_interfaces/msg/ObjectMasks', QOS_SENSOR_DATA,
                                  lambda rng, stamp_ns: self.view.masks(stamp_ns)),
                       TopicInput(RGBD_TOPIC, 'samrl_interfaces/msg/RGBDFrame', _frames_qos(),
                                  lambda rng, stamp_ns: self.view.frame(stamp_ns))],
                      super().inputs().services)

    def setup(self, session: Session) -> None:
        super().setup(session)
        session.node.create_subscription('samrl_interfaces/msg/ModelError', '/samrl/model/error', self._on_error)

    def _on_error(self, message) -> None:
        self.errors[(message.header.stamp.sec, message.header.stamp.nanosec)] = message

    def after_good(self, session: Session, stamp_ns: int) -> None:
        """A tracking update takes about a second, and newer pairs supersede a waiting one: wait for it."""
        stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
        session.wait(lambda: stamp in self.errors, self.GOOD_PAIR_WAIT_S)

    def check(self, session: Session) -> tuple[bool, str]:
        ok, services = super().check(session)
        if not ok:
            return False, services
        ok, tracked = self._check_tracking(session)
        return ok, f'{services}; {tracked}'

    def _check_tracking(self, session: Session) -> tuple[bool, str]:
        from samrl_perception.capture_node import RGBD_TOPIC
        from samrl_perception.segmentation_node import MASKS_TOPIC
        for attempt in range(1, self.CHECK_ATTEMPTS + 1):
            stamp_ns = time.time_ns()
            self.tf.publish(session, stamp_ns)
            session.publish('/samrl/sim_state', _restamped(self.sim_template, stamp_ns))
            session.publish('/samrl/task_state', self._tick(None, stamp_ns))
            session.wait(lambda: False, self.INPUTS_FIRST_S)
            session.publish(MASKS_TOPIC, self.view.masks(stamp_ns))
            session.publish(RGBD_TOPIC, self.view.frame(stamp_ns))
            stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
            if session.wait(lambda: stamp in self.errors, self.CHECK_WAIT_S):
                error = self.errors[stamp]
                if not (math.isfinite(error.position_mm) and math.isfinite(error.rotation_deg)):
                    return False, f'a good frame was tracked to a non-finite error {error}'
                return True, (f'a good frame with its masks was tracked ({error.action}, error {error.position_mm:.1f} '
                              f'mm, {error.rotation_deg:.1f} deg; attempt {attempt})')
        return False, (f'no ModelError for {self.CHECK_ATTEMPTS} good frames with masks, tf and a sim state '
                       f'({self.CHECK_WAIT_S:g} s each)')


# Untrained tiny networks for the Learn@Sim nodes: their job check is the plumbing (inputs in, a command or a
# camera goal out), not the policy's quality, and a small network keeps a control step cheap. Q is flat (its
# return scale zeroed): an untrained Q falls by noise on most view steps, which viewpoint_node then refuses
# without a goal; on a flat Q every step is kept, so good inputs give a goal each tick.
TINY_NETWORK = {'encoder': 'pooled', 'channels': (4, 8), 'feature_dim': 16, 'hidden': (32,)}
STATE_JITTER_M = 0.005             # good model states move the objects by up to this much


def _write_tiny_run(run_dir: Path) -> None:
    """A Learn@Sim run directory as load_policies reads it (actor, fixed actor, Q), seeded, untrained."""
    import torch

    from samrl_policy.checkpoints import save_network
    from samrl_policy.model_env import PROPRIO_SIZE
    from samrl_policy.networks import Actor, NetworkConfig, QNetwork
    config = NetworkConfig(proprio_dim=PROPRIO_SIZE, **TINY_NETWORK)
    with torch.random.fork_rng():      # leaves the fuzzer's own torch generator alone
        torch.manual_seed(0)
        q_network = QNetwork(config)
        q_network.return_std.zero_()
        for name, network in (('actor.pt', Actor(config)), ('fixed_actor.pt', Actor(config)), ('q.pt', q_network)):
            save_network(run_dir / name, network, {'command': 'samrl fuzz'})


def _model_state(rng, stamp_ns: int):
    """samrl_interfaces/ModelState of the task's nominal scene as model_node publishes it (objects moved by up
    to STATE_JITTER_M when rng is given)."""
    from samrl_common.conversions import pose_msg
    from samrl_description.tasks import nominal_scene
    scene = nominal_scene(TASK)
    poses = [pose_msg(placement.pose) for placement in scene.values()]
    for pose in poses if rng is not None else ():
        pose.position.x += float(rng.uniform(-STATE_JITTER_M, STATE_JITTER_M))
        pose.position.y += float(rng.uniform(-STATE_JITTER_M, STATE_JITTER_M))
    ColorRGBA = msgs.get_message('std_msgs/msg/ColorRGBA')
    message = msgs.samrl_interfaces.msg.ModelState(
        task=TASK, object_names=list(scene), object_poses=poses,
        object_colors=[ColorRGBA(0.5, 0.5, 0.5, 1.0) for _ in scene],
        thread_joint_angles=[float(a) for p in scene.values() if p.joint_angles for a in p.joint_angles], loss=0.0)
    message.header.stamp, message.header.frame_id = _stamp(stamp_ns), 'world'
    return message


class LearnAtSimRun(TargetRun):
    """A node acting on M's state (policy_node, viewpoint_node) with tiny networks in a temporary run directory;
    its inputs: the world's tf, model_node's latched state and the world's ticks."""

    def __init__(self):
        import tempfile
        world = _peg_world()
        try:
            self.tf = WorldTf(world)
        finally:
            world.close()
        self.run_dir = tempfile.TemporaryDirectory(prefix='samrl_fuzz_run_')
        _write_tiny_run(Path(self.run_dir.name))
        self.ticks = 0

    def params(self) -> tuple[str, ...]:
        return (f'run_dir:={self.run_dir.name}',)

    def close(self) -> None:
        self.run_dir.cleanup()

    def _tick(self, _rng, stamp_ns: int):
        self.ticks += 1
        return _task_state(stamp_ns, self.ticks)

    def inputs(self) -> Inputs:
        from samrl_common.runtime import QOS_DEFAULT, QOS_LATCHED
        return Inputs([*self.tf.inputs(),
                       TopicInput('/samrl/model/state', 'samrl_interfaces/msg/ModelState', QOS_LATCHED, _model_state),
                       TopicInput('/samrl/task_state', 'samrl_interfaces/msg/TaskState', QOS_DEFAULT, self._tick)])

    def publish_state(self, session: Session, stamp_ns: int) -> None:
        """A good world and model state (the fuzzed ones may have replaced them)."""
        self.tf.publish(session, stamp_ns)
        session.publish('/samrl/model/state', _model_state(None, stamp_ns))


class PolicyRun(LearnAtSimRun):
    GOOD_TICK_WAIT_S = 2.0         # after a good tick while fuzzing: one control step (render and actor)
    CHECK_WAIT_S = 10.0
    CHECK_ATTEMPTS = 5
    STATE_FIRST_S = 0.1            # the model state and tf go first: a tick is acted on at once

    def __init__(self):
        super().__init__()
        self.commands: dict[tuple[int, int], Any] = {}

    def setup(self, session: Session) -> None:
        session.node.create_subscription('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command',
                                         self._on_command)
        self.publish_state(session, time.time_ns())

    def _on_command(self, message) -> None:
        self.commands[(message.header.stamp.sec, message.header.stamp.nanosec)] = message

    def after_good(self, session: Session, stamp_ns: int) -> None:
        stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
        session.wait(lambda: stamp in self.commands, self.GOOD_TICK_WAIT_S)

    def check(self, session: Session) -> tuple[bool, str]:
        for attempt in range(1, self.CHECK_ATTEMPTS + 1):
            stamp_ns = time.time_ns()
            self.publish_state(session, stamp_ns)
            session.wait(lambda: False, self.STATE_FIRST_S)
            session.publish('/samrl/task_state', self._tick(None, stamp_ns))
            stamp = (stamp_ns // 10 ** 9, stamp_ns % 10 ** 9)
            if session.wait(lambda: stamp in self.commands, self.CHECK_WAIT_S):
                why = _command_out_of_limits(self.commands[stamp])
                if why:
                    return False, f'a good tick was answered with a command {why}'
                return True, (f'a good tick was answered with an end-effector command within the limits '
                              f'(attempt {attempt})')
        return False, (f'no /samrl/ee_command for {self.CHECK_ATTEMPTS} good ticks with a good model state and tf '
                       f'({self.CHECK_WAIT_S:g} s each)')


def _command_out_of_limits(command) -> str | None:
    """Why an end-effector command is not one control step of the task's (None when it is)."""
    from samrl_description.task_goals import MAX_ROTATION_PER_STEP_RAD, MAX_TRANSLATION_PER_STEP_M
    from samrl_description.tasks import GRIPPER_WIDTHS_M
    t, r = command.translation, command.rotation
    if command.header.frame_id != 'world':
        return f'in {command.header.frame_id!r}, not the world'
    if not np.all(np.abs([t.x, t.y, t.z]) <= MAX_TRANSLATION_PER_STEP_M):
        return f'translation {[t.x, t.y, t.z]} over {MAX_TRANSLATION_PER_STEP_M} m per axis'
    if not np.all(np.abs([r.x, r.y, r.z]) <= MAX_ROTATION_PER_STEP_RAD):
        return f'rotation {[r.x, r.y, r.z]} over {MAX_ROTATION_PER_STEP_RAD} rad per component'
    if command.gripper_width != GRIPPER_WIDTHS_M[TASK]:
        return f'gripper width {command.gripper_width} m, not the task\'s {GRIPPER_WIDTHS_M[TASK]} m'
    return None


class ViewpointRun(LearnAtSimRun):
    """Camera goals are stamped when they are sent, not by an input: the job check waits until a view step on
    fuzzed input would have ended, then for a new goal from the good inputs; each attempt sends another
    episode progress (a view step refused because Q fell there is not retried on the same input)."""

    SETTLE_S = 2.0                 # one view step (0.2-1 s on a loaded machine) after a 0.1 s tick
    CHECK_WAIT_S = 5.0
    CHECK_ATTEMPTS = 4
    PROGRESS_STEPS = 17            # task-state steps between the attempts' ticks

    def __init__(self):
        super().__init__()
        self.goals: list = []

    def setup(self, session: Session) -> None:
        session.node.create_subscription('geometry_msgs/msg/PoseStamped', '/samrl/camera_goal', self.goals.append)
        self.publish_state(session, time.time_ns())
        session.publish('/samrl/task_state', self._tick(None, time.time_ns()))

    def check(self, session: Session) -> tuple[bool, str]:
        self.publish_state(session, time.time_ns())
        for attempt in range(1, self.CHECK_ATTEMPTS + 1):
            session.publish('/samrl/task_state', _task_state(time.time_ns(), attempt * self.PROGRESS_STEPS))
            session.wait(lambda: False, self.SETTLE_S)
            before = len(self.goals)
            if session.wait(lambda: len(self.goals) > before, self.CHECK_WAIT_S):
                why = _goal_unusable(self.goals[-1])
                if why:
                    return False, f'a view step on good inputs gave a camera goal {why}'
                return True, f'good inputs gave a new camera goal in the world (attempt {attempt})'
        return False, (f'no new /samrl/camera_goal for {self.CHECK_ATTEMPTS} good task states with a good model state '
                       f'and tf ({self.CHECK_WAIT_S:g} s each)')


def _goal_unusable(goal) -> str | None:
    """Why a camera goal is not a pose the camera arm can take (None when it is)."""
    p, q = goal.pose.position, goal.pose.orientation
    if goal.header.frame_id != 'world':
        return f'in {goal.header.frame_id!r}, not the world'
    if not np.all(np.isfinite([p.x, p.y, p.z, q.x, q.y, q.z, q.w])):
        return f'with a non-finite pose {goal.pose}'
    if abs(math.hypot(q.x, q.y, q.z, q.w) - 1.0) > 1e-6:
        return f'with a quaternion of norm {math.hypot(q.x, q.y, q.z, q.w)}'
    return None


# The task graph's nodes (samrl launch peg_insertion), with the parameters the graph gives them; the bridge
# renders 64x48 images so that the camera loop does not take the shared CPU from the fuzzing. The pace lets
# a node look at most messages (segmentation_node segments only the newest frame: faster, and most frames
# would be superseded unseen; viewpoint_node takes one view step per 0.1 s tick). model_tracker is model_node
# as the task graphs run it, following the world; policy_node and viewpoint_node run untrained tiny networks.
NODES: dict[str, Target] = {
    'sim_bridge': Target('sim_bridge', 'samrl_sim.bridge_node',
                         ('task:=peg_insertion', 'image_width:=64', 'image_height:=48'),
                         'it keeps publishing /samrl/task_state, a valid reset is answered and a valid '
                         'end-effector command moves /joint_states', BridgeRun),
    'capture_node': Target('capture_node', 'samrl_perception.capture_node', (),
                           'a good colour/depth pair with camera_info and the camera pose on /tf_static comes out '
                           'as an RGBDFrame', CaptureRun),
    'segmentation_node': Target('segmentation_node', 'samrl_perception.segmentation_node',
                                ('source:=mask_rcnn', 'target_object:=hole_block', 'scene_objects:=peg,hole_block'),
                                'a good RGBDFrame is segmented (ObjectMasks with its stamp)', SegmentationRun,
                                pace_s=0.02),
    'model_node': Target('model_node', 'samrl_model.model_node', ('task:=peg_insertion',),
                         'a valid small render, a valid one-iteration update and a tracking start succeed', ModelRun),
    'model_tracker': Target('model_tracker', 'samrl_model.model_node', ('task:=peg_insertion', 'track:=true'),
                            'as model_node, and a good frame with its masks, the tf and a sim state at its stamp is '
                            'tracked (a finite ModelError of its stamp)', TrackerRun, pace_s=0.02),
    'oracle_controller': Target('oracle_controller', 'samrl_sim.oracle_node', ('task:=peg_insertion',),
                                'a good SimState is answered with an end-effector command of its stamp', OracleRun,
                                pace_s=0.004),
    'policy_node': Target('policy_node', 'samrl_policy.policy_node', ('task:=peg_insertion',),
                          'a good tick with a good model state and tf is answered with an end-effector command of its '
                          'stamp within the per-step limits', PolicyRun, pace_s=0.03),
    'viewpoint_node': Target('viewpoint_node', 'samrl_viewpoint.viewpoint_node', ('task:=peg_insertion', 'rate:=10.0'),
                             'with a good model state, task state and tf it sends a new finite camera goal in the '
                             'world', ViewpointRun, pace_s=0.1),
}


def resolve_nodes(name: str) -> tuple[str, ...]:
    if name == ALL_NODES:
        return NODE_NAMES
    if name not in NODES:
        raise ValueError(f'unknown node {name!r}; expected one of {", ".join(NODE_NAMES)} or "{ALL_NODES}"')
    return (name,)


# --------------------------------------------------------------------------- the run

@dataclass
class ServiceStream:
    """Raw requests of one service and the answers that come back to them."""

    spec: ServiceInput
    fuzzer: MessageFuzzer
    service: Any
    writer: Any = None
    guid: int = 0
    sent: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)      # success / busy / refused / internal_error
    pending: dict = field(default_factory=dict)            # (guid, sequence) -> (sent at, kind)
    unanswered: list = field(default_factory=list)
    registered: set = field(default_factory=set)
    expired: set = field(default_factory=set)
    unconfirmed: list = field(default_factory=list)        # (index, sent at) of requests that will not decode
    last_answered: int = -1                                # index of the latest request answered
    burst_sent: int = 0
    failed_requests: list = field(default_factory=list)    # requests answered "internal error", with their bytes
    burst_answers: Counter = field(default_factory=Counter)
    unexpected: int = 0
    duplicates: int = 0
    late: int = 0
    index: int = 0
    latencies: list = field(default_factory=list)

    def on_reply(self, data: bytes, _stamp: int) -> None:   # DDS reader thread
        try:
            wire = msgs.deserialize(self.service.ResponseWire, data)
        except msgs.MessageError:
            self.answers['malformed_reply'] += 1
            return
        key = (wire._client_guid, wire._sequence)
        entry = self.pending.pop(key, None)
        if entry is None:
            if key in self.expired:
                self.late += 1            # already counted unanswered: it came after the timeout
            elif key in self.registered:
                self.duplicates += 1
            elif wire._client_guid == self.guid:
                self.unexpected += 1      # an answer to a request that should not have decoded
            return                        # else: the check clients' replies, which come here too
        self.last_answered = max(self.last_answered, entry[2])
        if wire.success:
            outcome = 'success'
        elif wire.message.startswith('busy'):
            outcome = 'busy'
        elif wire.message.startswith('internal error'):
            outcome = 'internal_error'
        else:
            outcome = 'refused'
        if entry[1] == BURST:
            self.burst_answers[outcome] += 1
        else:
            self.latencies.append(time.monotonic() - entry[0])
            self.answers[outcome] += 1
            if outcome == 'internal_error' and len(self.failed_requests) < MAX_LISTED_ERRORS:
                self.failed_requests.append({'index': entry[2], 'kind': entry[1], 'message': wire.message[:300],
                                             'data': entry[3]})

    def send_burst(self, size: int) -> None:
        """`size` good requests at once, as a client that floods the service: each must be answered (at
        least "busy"); the ones that are not are counted in the burst's unanswered."""
        for _ in range(size):
            index, sequence = self.index, self.index + 1
            self.index += 1
            wire = self.service.RequestWire(_client_guid=self.guid, _sequence=sequence,
                                            **vars(self.fuzzer.good(self.fuzzer.rng, time.time_ns())))
            self.pending[(self.guid, sequence)] = (time.monotonic(), BURST, index, b'')
            self.registered.add((self.guid, sequence))
            self.burst_sent += 1
            self.writer.publish_bytes(msgs.serialize(wire))

    def send_next(self, count: int) -> bool:
        """Send one request if the count and MAX_OUTSTANDING allow; True when one was sent (or refused by DDS)."""
        if self.index >= count or self.in_flight() >= self.spec.max_outstanding:
            return False
        index, sequence = self.index, self.index + 1

        def header(request):
            return self.service.RequestWire(_client_guid=self.guid, _sequence=sequence, **vars(request))

        item = self.fuzzer.item(index, time.time_ns(), header)
        self.index += 1
        wire = decodes(self.service.RequestWire, item.data)
        key = (wire._client_guid, wire._sequence) if wire is not None else None
        if key is not None:   # registered before it is written: the answer may come back at once
            self.pending[key] = (time.monotonic(), item.kind, index, item.data)
        if not _write(self.writer, item.data):
            if key is not None:
                self.pending.pop(key, None)
            self.sent['refused_by_dds'] += 1
            return True
        if key is not None:
            self.registered.add(key)
        else:
            self.unconfirmed.append((index, time.monotonic()))
        self.sent[item.family] += 1
        self.sent['expect_answer' if key is not None else 'expect_drop'] += 1
        return True

    def in_flight(self) -> int:
        """Requests that may still sit in the server's DDS history (see MAX_OUTSTANDING)."""
        now = time.monotonic()
        self.unconfirmed = [(index, at) for index, at in self.unconfirmed
                            if index > self.last_answered and now - at < UNCONFIRMED_SLOT_S]
        return len(self.pending) + len(self.unconfirmed)

    def expire(self, now: float) -> None:
        for key, (sent_at, kind, _index, _data) in list(self.pending.items()):
            timeout_s = min(self.spec.timeout_s, BURST_TIMEOUT_S) if kind == BURST else self.spec.timeout_s
            if now - sent_at > timeout_s and self.pending.pop(key, None) is not None:
                self.expired.add(key)
                self.unanswered.append(kind)

    def summary(self) -> dict:
        answered = sum(v for k, v in self.answers.items() if k != 'malformed_reply')
        latencies = sorted(self.latencies)
        unanswered = Counter(self.unanswered + [entry[1] for entry in self.pending.values()])
        burst_lost = unanswered.pop(BURST, 0)
        return {'sent': self.index - self.sent['refused_by_dds'] - self.burst_sent,
                'kinds': {k: self.sent[k] for k in ('good', 'typed', 'malformed', 'refused_by_dds')},
                'expect_answer': self.sent['expect_answer'], 'expect_drop': self.sent['expect_drop'],
                'answered': answered, **{k: self.answers[k] for k in ('success', 'busy', 'refused', 'internal_error')},
                'unanswered': sum(unanswered.values()), 'unanswered_kinds': dict(unanswered),
                'unexpected_replies': self.unexpected, 'duplicate_replies': self.duplicates, 'late_replies': self.late,
                'malformed_replies': self.answers['malformed_reply'],
                'latency_s_p50': round(latencies[len(latencies) // 2], 4) if latencies else None,
                'latency_s_max': round(latencies[-1], 4) if latencies else None,
                'internal_error_requests': [{k: v for k, v in r.items() if k != 'data'} for r in self.failed_requests],
                'burst': {'sent': self.burst_sent, 'answered': sum(self.burst_answers.values()),
                          **{k: self.burst_answers[k] for k in ('success', 'busy', 'refused', 'internal_error')},
                          'unanswered': burst_lost}}


def _write(writer, data: bytes) -> bool:
    """Write raw bytes; False where our own DDS writer refuses them (counted, never sent)."""
    try:
        writer.publish_bytes(data)
    except RuntimeError:
        return False
    return True


class RssSampler:
    def __init__(self, pid: int):
        import psutil
        self._process = psutil.Process(pid)
        self.peak = self.last = 0.0
        self._next = 0.0

    def sample(self, force: bool = False) -> float:
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + RSS_SAMPLE_PERIOD_S
            try:
                self.last = self._process.memory_info().rss / MB
            except Exception:  # noqa: BLE001 - the process is gone (psutil.NoSuchProcess and kin)
                return self.last
            self.peak = max(self.peak, self.last)
        return self.last


TRACEBACK_LINE = 'Traceback (most recent call last)'
ERROR_LINE = re.compile(r'^\[(ERROR|FATAL)\] \[[\d.]+\] \[[^\]]*\]: (.*)$')
NODE_REPORT = re.compile(r'\b(published|received|segmented) \d+ frames.*dropped: .*')   # perception's last words
FAILED_DROP = re.compile(r'dropped (.+?) \(failed, (\d+) so far\): (.*)$')


def read_log(text: str) -> dict:
    """What a node's log says it failed on but survived: tracebacks (with the exception that ends each),
    [ERROR]/[FATAL] lines, and frames dropped because processing them raised (perception's 'failed' drops)."""
    lines = text.splitlines()
    errors: Counter = Counter()
    failed: dict[str, int] = {}
    exceptions: Counter = Counter()
    for index, line in enumerate(lines):
        match = ERROR_LINE.match(line)
        if match:
            errors[re.sub(r'\d+', 'N', match.group(2))[:200]] += 1
        match = FAILED_DROP.search(line)
        if match:   # "(failed, N so far)": the drop log is rate-limited, its count is not
            key = re.sub(r'\d+', 'N', match.group(3))[:200]
            failed[key] = max(failed.get(key, 0), int(match.group(2)))
        if line.startswith(TRACEBACK_LINE):   # the exception line that ends the traceback
            for follow in lines[index + 1:index + 200]:
                if follow and not follow.startswith((' ', '\t', 'Traceback', 'During handling', 'The above')):
                    exceptions[follow[:200]] += 1
                    break
    reports = [match.group(0) for match in NODE_REPORT.finditer(text)]
    return {'tracebacks': text.count(TRACEBACK_LINE), 'error_lines': sum(errors.values()),
            'node_report': reports[-1][:500] if reports else None,
            'errors': dict(errors.most_common(MAX_LISTED_ERRORS)),
            'exceptions': dict(exceptions.most_common(MAX_LISTED_ERRORS)),
            'processing_failures': dict(Counter(failed).most_common(MAX_LISTED_ERRORS))}


def participant_pids(participant, wait_s: float = 0.0) -> set[int]:
    """Process ids of the DDS participants `participant` sees on its domain (Cyclone announces __Pid)."""
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsParticipant
    reader = BuiltinDataReader(participant, BuiltinTopicDcpsParticipant)
    time.sleep(wait_s)
    pids = set()
    for sample in reader.read(N=1024):
        for policy in sample.qos:
            if getattr(policy, 'key', None) == '__Pid' and str(policy.value).isdigit():
                pids.add(int(policy.value))
    return pids


def _free_domain() -> int:
    """A DDS domain of FUZZ_DOMAINS on which no other process is seen: the node must meet only the fuzzer
    (a node of someone else's test on the same domain would be fuzzed, and would answer for ours)."""
    from cyclonedds.domain import DomainParticipant
    first = os.getpid() % len(FUZZ_DOMAINS)
    for offset in range(len(FUZZ_DOMAINS)):
        domain = FUZZ_DOMAINS[(first + offset) % len(FUZZ_DOMAINS)]
        probe = DomainParticipant(domain)
        others = participant_pids(probe, DOMAIN_PROBE_S) - {os.getpid()}
        del probe
        gc.collect()
        if not others:
            return domain
    raise RuntimeError(f'every DDS domain {FUZZ_DOMAINS.start}..{FUZZ_DOMAINS.stop - 1} is in use by other processes')


@contextmanager
def _dds_domain():
    """A loopback DDS domain of the node and the fuzzer alone, both on Cyclone DDS; yields the node's env."""
    from samrl_common.runtime.backend import BACKEND_ENV
    from samrl_common.testing import isolated_environment
    env = isolated_environment()              # loopback configuration; also sets this process's environment
    saved = {key: os.environ.get(key) for key in (BACKEND_ENV, 'ROS_DOMAIN_ID')}
    env[BACKEND_ENV] = os.environ[BACKEND_ENV] = 'dds'
    env['ROS_DOMAIN_ID'] = os.environ['ROS_DOMAIN_ID'] = str(_free_domain())
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _foreign(session: Session) -> str | None:
    """Why the run cannot be trusted if another process has joined the domain; None when it is ours alone."""
    others = participant_pids(session.raw.participant) - {os.getpid(), session.process.pid}
    if others:
        return f'DDS domain {os.environ.get("ROS_DOMAIN_ID")} is shared with process(es) {sorted(others)}'
    return None


def _wait_ready(session: Session, streams: list[ServiceStream], readers: list, deadline: float) -> str | None:
    """None once every writer and service reader matches the node; else why not."""
    while True:
        if session.process.poll() is not None:
            return f'the node exited during start-up (code {session.process.returncode})'
        waiting = [t for t, w in session.writers.items() if w.matched_count() == 0]
        waiting += [s.spec.name for s in streams if s.writer.matched_count() == 0]
        waiting += [name for name, reader in readers if reader.matched_count() == 0]
        if not waiting:
            return None
        if time.monotonic() > deadline:
            return f'not matched within {START_TIMEOUT_S:g} s: {", ".join(waiting)}'
        time.sleep(0.05)


def fuzz_node(name: str, count: int = DEFAULT_COUNT, time_limit_s: float = DEFAULT_TIME_LIMIT_S, seed: int = 0,
              log_dir: Path = Path('out/fuzz'), progress: Callable[[str], None] = lambda _m: None) -> dict:
    """Fuzz one node (see the module docstring); returns its summary (dict, JSON-ready)."""
    target = NODES[name]
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = target.make()
    try:
        return _fuzz_run(name, target, run, count, time_limit_s, seed, log_dir, progress, started)
    finally:
        run.close()


def _fuzz_run(name: str, target: Target, run: TargetRun, count: int, time_limit_s: float, seed: int, log_dir: Path,
              progress: Callable[[str], None], started: float) -> dict:
    from samrl_common.testing import NodeProcess

    inputs = run.inputs()
    params = (*target.params, *run.params())
    result: dict[str, Any] = {'node': name, 'module': target.module, 'params': list(params), 'count': count,
                              'seed': seed, 'time_limit_s': time_limit_s, 'job_check': target.job}
    streams: list[ServiceStream] = []
    with _dds_domain() as env, _interruptible():
        process = NodeProcess(target.module, ['--ros-args', *[a for p in params for a in ('-p', p)]], env, log_dir)
        result['log'] = str(process.log_path)
        result['dds_domain'] = int(env['ROS_DOMAIN_ID'])
        session = None
        try:
            session = Session(process.process, inputs)
            streams, readers = _service_streams(session, inputs, seed)
            topics = [(spec, MessageFuzzer(msgs.get_message(spec.msg_type), spec.good, [seed, number],
                                           _wrong_types(msgs.get_message(spec.msg_type), inputs, number)))
                      for number, spec in enumerate(inputs.topics)]
            why = _wait_ready(session, streams, readers, time.monotonic() + START_TIMEOUT_S)
            result['start_s'] = round(time.monotonic() - started, 1)
            result['started'] = why is None
            if why is None:
                why = _foreign(session)
            if why is not None:
                result['start_error'] = why
                result['started'] = False
                progress(f'{name}: {why}')
            else:
                _fuzz_started_node(name, target, run, session, topics, streams, count, time_limit_s, result, progress)
        finally:
            if session is not None:
                session.close()
            result.update(_stop(process))
            if result.get('started') and not result['alive_at_end']:
                result['crashed'] = True   # it died before it was told to stop (during a check, say)
            log = result['log_read'] = read_log(process.output())
            result['handled_errors'] = log['tracebacks'] + sum(log['processing_failures'].values())
            result['duration_s'] = round(time.monotonic() - started, 1)
            del session
            gc.collect()
    result['services'] = {s.spec.name: s.summary() for s in streams}
    for stream in streams:   # the requests a handler failed on, as sent: replay them with the raw writer
        listing = result['services'][stream.spec.name]['internal_error_requests']
        for failed, listed in zip(stream.failed_requests, listing):
            path = log_dir / f'{name}{stream.spec.name.replace("/", "_")}-{failed["index"]}.cdr'
            path.write_bytes(failed['data'])
            listed['file'] = str(path)
    result['unanswered'] = sum(s['unanswered'] for s in result['services'].values())
    result['burst_unanswered'] = sum(s['burst']['unanswered'] for s in result['services'].values())
    result['hangs'] = result['unanswered'] + result['burst_unanswered'] + int(result.get('stop_killed', False))
    result['passed'], result['failures'] = _verdict(result)
    return result


def _service_streams(session: Session, inputs: Inputs, seed: int) -> tuple[list[ServiceStream], list]:
    """A raw request writer and a reply reader per service; the readers to wait for."""
    from samrl_common.runtime import QoSProfile
    from samrl_common.runtime.dds import reply_topic, request_topic
    streams, readers = [], []
    for number, spec in enumerate(inputs.services):
        service = msgs.get_service(spec.srv_type)
        rng_seed = [seed, 1000 + number]
        stream = ServiceStream(spec, MessageFuzzer(service.RequestWire, spec.good, rng_seed,
                                                   _wrong_types(service.RequestWire, inputs, number), spec.good_every,
                                                   frozenset(msgs.REQUEST_HEADER), REQUEST_HEADER_BYTES), service)
        stream.guid = int(np.random.default_rng(rng_seed).integers(1, 2 ** 63))
        history = QoSProfile(depth=100, reliable=True)   # deeper than any burst: nothing is lost on our side
        stream.writer = session.raw.dds_publisher(request_topic(spec.name), service.RequestWire, history)
        readers.append((f'{spec.name} (replies)', session.raw.dds_reader(reply_topic(spec.name), service.ResponseWire,
                                                                         history, stream.on_reply)))
        streams.append(stream)
    return streams, readers


def _fuzz_started_node(name: str, target: Target, run: TargetRun, session: Session, topics, streams, count: int,
                       time_limit_s: float, result: dict, progress) -> None:
    run.setup(session)
    ok, detail = run.check(session)
    result['job_before'] = {'ok': ok, 'detail': detail}
    progress(f'{name}: up in {result["start_s"]} s; job check before fuzzing: {"ok" if ok else "FAILED"} ({detail})')
    rss = RssSampler(session.process.pid)
    result['rss_mb_start'] = round(rss.sample(force=True), 1)
    _fuzz_loop(session, run, topics, streams, count, time_limit_s, target.pace_s, rss, result, progress, name)
    result['crashed'] = session.process.poll() is not None
    if result['crashed']:
        result['job_after'] = {'ok': False, 'detail': 'the node died'}
    else:
        ok, detail = run.check(session)
        result['job_after'] = {'ok': ok, 'detail': detail}
    result['foreign_participants'] = _foreign(session)
    rss.sample(force=True)
    result['rss_mb_peak'], result['rss_mb_end'] = round(rss.peak, 1), round(rss.last, 1)
    result['rss_mb_growth'] = round(rss.peak - result['rss_mb_start'], 1)
    progress(f'{name}: job check after fuzzing: {"ok" if result["job_after"]["ok"] else "FAILED"} '
             f'({result["job_after"]["detail"]})')


def _wrong_types(cls: type, inputs: Inputs, own: int) -> list[bytes]:
    """CDR samples of other types: the node's other inputs and a few unrelated messages."""
    samples = [msgs.serialize(msgs.std_msgs.msg.String(data='not the type of this topic')),
               msgs.serialize(msgs.geometry_msgs.msg.PoseStamped()),
               msgs.serialize(msgs.samrl_interfaces.msg.TaskState(task='peg_insertion', info_json='{}')),
               msgs.serialize(msgs.sensor_msgs.msg.Image(width=4, height=2, encoding='mono8', step=4, data=bytes(8)))]
    rng = np.random.default_rng(own)
    for spec in inputs.topics:
        if msgs.get_message(spec.msg_type) is not cls:
            samples.append(msgs.serialize(spec.good(rng, 0)))
    return samples


def _fuzz_loop(session: Session, run: TargetRun, topics, streams: list[ServiceStream], count: int,
               time_limit_s: float, pace_s: float, rss: RssSampler, result: dict, progress, name: str) -> None:
    sent = {spec.topic: Counter() for spec, _ in topics}
    malformed = {spec.topic: Counter() for spec, _ in topics}
    start = time.monotonic()
    deadline = start + time_limit_s
    next_report = start + 30.0
    rounds, stopped = 0, None
    while True:
        now = time.monotonic()
        if session.process.poll() is not None:
            stopped = f'the node died (exit code {session.process.returncode})'
            break
        if now > deadline:
            stopped = f'time limit of {time_limit_s:g} s reached'
            break
        busy = False
        if rounds < count and topics:
            stamp_ns = time.time_ns()
            good = False
            for spec, fuzzer in topics:
                item = fuzzer.item(rounds, stamp_ns)
                if not _write(session.writers[spec.topic], item.data):
                    sent[spec.topic]['refused_by_dds'] += 1
                    continue
                sent[spec.topic][item.family] += 1
                good = good or item.kind == 'good'
                if item.family == 'malformed':
                    malformed[spec.topic][item.kind.split(':')[1]] += 1
            if good:
                run.after_good(session, stamp_ns)
            rounds += 1
            busy = True
        for stream in streams:
            stream.expire(now)
            for _ in range(stream.spec.max_outstanding):
                if not stream.send_next(count):
                    break
                busy = True
        if not busy and all(not s.pending for s in streams):
            break
        rss.sample()
        session.node.spin_once(timeout_s=0.0)
        time.sleep(pace_s if busy else 0.01)
        if now > next_report:
            next_report = now + 30.0
            done = ([f'{rounds}/{count} rounds of topic messages'] if topics else []) + [
                f'{s.spec.name} {s.index}/{count} requests ({len(s.pending)} waiting)' for s in streams]
            progress(f'{name}: {", ".join(done)}, rss {rss.last:.0f} MB')
    fuzzing_s = time.monotonic() - start
    _drain(session, streams, rss)
    if streams and session.process.poll() is None:
        for stream in streams:
            stream.send_burst(BURST_REQUESTS)
        _drain(session, streams, rss)
    result['topics'] = {topic: {'sent': sum(c.values()) - c['refused_by_dds'],
                                **{k: c[k] for k in ('good', 'typed', 'malformed', 'refused_by_dds')},
                                'malformed_kinds': dict(malformed[topic])} for topic, c in sent.items()}
    result['fuzzing_s'] = round(fuzzing_s, 1)
    result['stopped_early'] = stopped


def _drain(session: Session, streams: list[ServiceStream], rss: RssSampler) -> None:
    """Wait for the answers still due (each until its timeout); what is left counts as unanswered."""
    while any(s.pending for s in streams) and session.process.poll() is None:
        for stream in streams:
            stream.expire(time.monotonic())
        rss.sample()
        session.node.spin_once(timeout_s=0.05)
    for stream in streams:
        stream.expire(math.inf if session.process.poll() is not None else time.monotonic())


def _stop(process) -> dict:
    """SIGINT (as Ctrl-C), then SIGTERM, then SIGKILL, each after STOP_TIMEOUT_S; the exit code and what it took."""
    if not process.alive():
        process.stop()
        return {'exit_code': process.process.returncode, 'stopped_by': None, 'stop_killed': False,
                'alive_at_end': False}
    stopped_by = None
    for sig in (signal.SIGINT, signal.SIGTERM):
        process.process.send_signal(sig)
        try:
            process.process.wait(STOP_TIMEOUT_S)
            stopped_by = sig.name
            break
        except subprocess.TimeoutExpired:
            continue
    if stopped_by is None:
        process.process.kill()
        process.process.wait()
        stopped_by = 'SIGKILL'
    process.stop()
    return {'exit_code': process.process.returncode, 'stopped_by': stopped_by, 'stop_killed': stopped_by != 'SIGINT',
            'alive_at_end': True}


@contextmanager
def _interruptible():
    """Ctrl-C for the fuzzer and its nodes even where SIGINT is ignored (a shell's background job): a child
    inherits an ignored SIGINT, and a node that ignores it would not stop on it."""
    restore = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        restore = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)


def _verdict(result: dict) -> tuple[bool, list[str]]:
    failures = []
    if not result.get('started', True):
        failures.append(f'did not start: {result.get("start_error")}')
        return False, failures
    if result.get('foreign_participants'):
        failures.append(f'not conclusive: {result["foreign_participants"]} during the run')
    if result.get('crashed'):
        failures.append(f'crashed (exit code {result.get("exit_code")})')
    if result.get('unanswered'):
        failures.append(f'{result["unanswered"]} requests unanswered')
    for service, summary in result.get('services', {}).items():
        burst = summary['burst']
        if burst['unanswered']:
            failures.append(f'{BURST_FAILURE}: {service}: {burst["unanswered"]} of a burst of {burst["sent"]} good '
                            f'requests got no answer, not even "busy" ({burst["busy"]} busy)')
    for when in ('job_before', 'job_after'):
        check = result.get(when)
        if check is None or not check['ok']:
            failures.append(f'{when}: {check["detail"] if check else "not run"}')
    if result.get('rss_mb_growth', 0.0) >= RSS_GROWTH_BOUND_MB:
        failures.append(f'memory grew by {result["rss_mb_growth"]} MB (bound {RSS_GROWTH_BOUND_MB:g} MB)')
    if result.get('stop_killed'):
        failures.append(f'did not stop within {STOP_TIMEOUT_S:g} s of SIGINT (stopped by {result.get("stopped_by")})')
    elif result.get('exit_code') not in (0, None) and not result.get('crashed'):
        failures.append(f'exit code {result["exit_code"]} after SIGINT')
    for service, summary in result.get('services', {}).items():
        if summary['unexpected_replies'] or summary['duplicate_replies'] or summary['malformed_replies']:
            failures.append(f'{service}: {summary["unexpected_replies"]} replies to requests that do not decode, '
                            f'{summary["duplicate_replies"]} duplicate and {summary["malformed_replies"]} '
                            'undecodable replies')
    return not failures, failures


def run_fuzz(names: Sequence[str], count: int = DEFAULT_COUNT, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
             seed: int = 0, log_dir: Path = Path('out/fuzz'), progress: Callable[[str], None] = lambda _m: None
             ) -> dict:
    """Fuzz the named nodes one after another; {'passed', 'nodes': [summary...], settings}."""
    nodes = _fuzz_each(names, count, time_limit_s, seed, log_dir, progress)
    return {'fuzz': 'nodes', 'count': count, 'time_limit_s': time_limit_s, 'seed': seed, 'good_every': GOOD_EVERY,
            'rss_growth_bound_mb': RSS_GROWTH_BOUND_MB, 'max_fuzz_bytes': MAX_FUZZ_BYTES,
            'passed': all(n['passed'] for n in nodes), 'nodes': nodes}


def _fuzz_each(names, count, time_limit_s, seed, log_dir, progress) -> list[dict]:
    nodes = []
    for name in names:
        progress(f'{name}: starting {NODES[name].module} ({count} per topic and service, time limit '
                 f'{time_limit_s:g} s)')
        nodes.append(fuzz_node(name, count, time_limit_s, seed, log_dir, progress))
        progress(f'{name}: {"PASS" if nodes[-1]["passed"] else "FAIL"}'
                 + ('' if nodes[-1]['passed'] else ': ' + '; '.join(nodes[-1]['failures'])))
    return nodes


def format_table(summary: dict) -> str:
    """One line per node: what was sent and answered, memory, the job checks and the verdict."""
    header = (f'{"node":<18} {"msgs":>6} {"reqs":>5} {"answd":>5} {"busy":>4} {"refus":>5} {"unans":>5} '
              f'{"burst":>6} {"crash":>5} {"hangs":>5} {"rss MB start/peak/end":>21} {"job":>7} {"errs":>4} '
              f'{"time s":>6}  result')
    lines = [header, '-' * len(header)]
    for n in summary['nodes']:
        services = list(n.get('services', {}).values())
        sent = sum(t['sent'] for t in n.get('topics', {}).values())
        rss = (f'{n.get("rss_mb_start", 0):.0f}/{n.get("rss_mb_peak", 0):.0f}/{n.get("rss_mb_end", 0):.0f}'
               if 'rss_mb_peak' in n else '-')
        burst = (f'{sum(s["burst"]["answered"] for s in services)}/{sum(s["burst"]["sent"] for s in services)}'
                 if services else '-')
        job = '/'.join('ok' if (n.get(w) or {}).get('ok') else 'FAIL' for w in ('job_before', 'job_after'))
        lines.append(
            f'{n["node"]:<18} {sent:>6} {sum(s["sent"] for s in services):>5} '
            f'{sum(s["answered"] for s in services):>5} {sum(s["busy"] for s in services):>4} '
            f'{sum(s["refused"] + s["internal_error"] for s in services):>5} {n.get("unanswered", 0):>5} '
            f'{burst:>6} {int(bool(n.get("crashed"))):>5} {n.get("hangs", 0):>5} {rss:>21} {job:>7} '
            f'{n.get("handled_errors", 0):>4} {n.get("duration_s", 0):>6.0f}  '
            f'{"PASS" if n["passed"] else "FAIL"}' + (f' ({n["stopped_early"]})' if n.get('stopped_early') else ''))
    lines.append(f'{"all" if summary["passed"] else "not all"} nodes passed (alive, every decodable request and every '
                 f'request of the burst answered, the job done before and after, peak RSS growth < '
                 f'{summary["rss_growth_bound_mb"]:g} MB, clean exit on SIGINT)')
    for n in summary['nodes']:
        for failure in n.get('failures', []):
            lines.append(f'  {n["node"]}: {failure}')
        log = n.get('log_read', {})
        for line, times in {**log.get('exceptions', {}), **log.get('processing_failures', {})}.items():
            lines.append(f'  {n["node"]} handled error x{times}: {line}')
    return '\n'.join(lines)
