"""Cyclone DDS backend: ROS 2 topics and services on the wire as rmw_cyclonedds_cpp puts them.

Topic `/a/b` is DDS topic `rt/a/b`; service `/s` is `rq/sRequest` + `rr/sReply`,
whose samples start with the 16-byte request header (FACTS.md). Samples are
written and taken as raw CDR bytes (cyclonedds' `ddspy_write`/`ddspy_take`,
private API of the pinned 11.0.1) so decoding, and its errors, stay ours.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future

from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.core import GuardCondition, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from samrl_common import msgs
from samrl_common.runtime.dds_config import domain_id
from samrl_common.runtime.qos import QOS_SERVICE_INBOX, QOS_SERVICES, QoSProfile

ANY_SAMPLE = SampleState.Any | ViewState.Any | InstanceState.Any
TAKE_BATCH = 32
READER_WAIT_NS = duration(milliseconds=200)
# A writer blocks at most this long when a reliable reader's history is full.
MAX_BLOCKING_NS = duration(milliseconds=100)
CDR_ALIGNMENT = 4


def topic_name(name: str) -> str:
    return 'rt' + name


def request_topic(service: str) -> str:
    return f'rq{service}Request'


def reply_topic(service: str) -> str:
    return f'rr{service}Reply'


def to_cyclone_qos(profile: QoSProfile) -> Qos:
    return Qos(
        Policy.Reliability.Reliable(max_blocking_time=MAX_BLOCKING_NS) if profile.reliable
        else Policy.Reliability.BestEffort,
        Policy.Durability.TransientLocal if profile.transient_local else Policy.Durability.Volatile,
        Policy.History.KeepLast(profile.depth),
        # rmw_cyclonedds writes XCDR1 (plain CDR).
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )


class DdsPublisher:
    def __init__(self, participant: DomainParticipant, topic: Topic, qos: QoSProfile):
        self._writer = DataWriter(participant, topic, to_cyclone_qos(qos))

    def publish_bytes(self, data: bytes) -> None:
        pad = -len(data) % CDR_ALIGNMENT
        ret = ddspy_write(self._writer._ref, data + bytes(pad) if pad else data)
        if ret < 0:
            raise RuntimeError(f'DDS write failed with code {ret}')

    def matched_count(self) -> int:
        return len(self._writer.get_matched_subscriptions())


class DdsReader:
    """Waits for samples in its own thread and hands their raw bytes to `on_data`."""

    def __init__(self, participant: DomainParticipant, topic: Topic, qos: QoSProfile,
                 on_data: Callable[[bytes, int], None]):
        self._reader = DataReader(participant, topic, to_cyclone_qos(qos))
        self._on_data = on_data
        self._waitset = WaitSet(participant)
        self._wake = GuardCondition(participant)
        self._waitset.attach(ReadCondition(self._reader, ANY_SAMPLE))
        self._waitset.attach(self._wake)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f'dds-reader{topic.name}', daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._waitset.wait(READER_WAIT_NS) == 0 or self._stop.is_set():
                continue
            samples = ddspy_take(self._reader._ref, ANY_SAMPLE, TAKE_BATCH)
            if isinstance(samples, int):
                continue
            for data, info in samples:
                if info.valid_data:  # invalid samples signal a disposed writer
                    self._on_data(data, info.source_timestamp)

    def matched_count(self) -> int:
        return len(self._reader.get_matched_publications())

    def close(self) -> None:
        self._stop.set()
        self._wake.set(True)
        self._thread.join(timeout=2.0)


class DdsClient:
    """Service client: requests carry our random guid; replies with other guids are ignored."""

    def __init__(self, backend: 'DdsBackend', name: str, service: msgs.ServiceType):
        self._service = service
        self._guid = random.getrandbits(64)
        self._sequence = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._writer = backend.dds_publisher(request_topic(name), service.RequestWire, QOS_SERVICES)
        self._reader = backend.dds_reader(reply_topic(name), service.ResponseWire, QOS_SERVICE_INBOX,
                                          self._on_reply)

    def is_ready(self) -> bool:
        return self._writer.matched_count() > 0 and self._reader.matched_count() > 0

    def call_async(self, request) -> Future:
        future: Future = Future()
        sequence = next(self._sequence)
        with self._lock:
            self._pending[sequence] = future
        wire = self._service.RequestWire(_client_guid=self._guid, _sequence=sequence, **vars(request))
        self._writer.publish_bytes(msgs.serialize(wire))
        return future

    def _on_reply(self, data: bytes, _stamp: int) -> None:
        try:
            wire = msgs.deserialize(self._service.ResponseWire, data)
        except msgs.MessageError:
            return  # a malformed reply for us times out at the caller, with its reason logged there
        if wire._client_guid != self._guid:
            return
        with self._lock:
            future = self._pending.pop(wire._sequence, None)
        if future is not None and not future.done():
            fields = {k: v for k, v in vars(wire).items() if k not in msgs.REQUEST_HEADER}
            future.set_result(self._service.Response(**fields))

    def forget(self, future: Future) -> None:
        with self._lock:
            for key, pending in list(self._pending.items()):
                if pending is future:
                    del self._pending[key]


class DdsServer:
    """Answers requests: `handle(request)` returns a Future of the response; the reply echoes the header."""

    def __init__(self, backend: 'DdsBackend', name: str, service: msgs.ServiceType, handle, on_error):
        self._service = service
        self._handle = handle
        self._on_error = on_error
        self._writer = backend.dds_publisher(reply_topic(name), service.ResponseWire, QOS_SERVICES)
        self._reader = backend.dds_reader(request_topic(name), service.RequestWire, QOS_SERVICE_INBOX,
                                          self._on_request)

    def _on_request(self, data: bytes, _stamp: int) -> None:
        try:
            wire = msgs.deserialize(self._service.RequestWire, data)
        except msgs.MessageError as exc:
            self._on_error(f'dropped malformed request: {exc}')
            return
        fields = {k: v for k, v in vars(wire).items() if k not in msgs.REQUEST_HEADER}
        future = self._handle(self._service.Request(**fields))
        future.add_done_callback(lambda f: self._reply(wire._client_guid, wire._sequence, f))

    def _reply(self, guid: int, sequence: int, future: Future) -> None:
        if future.exception() is not None:
            return  # the node has logged the handler's failure; the client times out
        wire = self._service.ResponseWire(_client_guid=guid, _sequence=sequence, **vars(future.result()))
        self._writer.publish_bytes(msgs.serialize(wire))


class DdsBackend:
    """One DDS participant per node; entities are created and closed through it."""

    name = 'cyclonedds'

    def __init__(self):
        self.participant = DomainParticipant(domain_id())
        self._topics: dict[str, Topic] = {}
        self._readers: list[DdsReader] = []

    def _topic(self, name: str, cls: type) -> Topic:
        existing = self._topics.get(name)
        if existing is None:
            existing = self._topics[name] = Topic(self.participant, name, cls)
        elif existing.data_type.__idl_typename__ != cls.__idl_typename__:
            raise TypeError(f'DDS topic {name} is already used with type {existing.data_type.__idl_typename__}')
        return existing

    def dds_publisher(self, dds_topic: str, cls: type, qos: QoSProfile) -> DdsPublisher:
        return DdsPublisher(self.participant, self._topic(dds_topic, cls), qos)

    def dds_reader(self, dds_topic: str, cls: type, qos: QoSProfile, on_data) -> DdsReader:
        reader = DdsReader(self.participant, self._topic(dds_topic, cls), qos, on_data)
        self._readers.append(reader)
        return reader

    # The backend interface the Node uses (ROS names; the rclpy backend has the same).
    def publisher(self, topic: str, cls: type, qos: QoSProfile) -> DdsPublisher:
        return self.dds_publisher(topic_name(topic), cls, qos)

    def reader(self, topic: str, cls: type, qos: QoSProfile, on_data) -> DdsReader:
        return self.dds_reader(topic_name(topic), cls, qos, on_data)

    def client(self, name: str, service: msgs.ServiceType) -> DdsClient:
        return DdsClient(self, name, service)

    def server(self, name: str, service: msgs.ServiceType, handle, on_error) -> DdsServer:
        return DdsServer(self, name, service, handle, on_error)

    def declare_parameters(self, specs) -> None:
        """Nothing to do: plain DDS has no parameter services (`ros2 param` needs the rclpy backend)."""

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()


class KeepLast:
    """Thread-safe keep-last queue between a reader thread and the executor (DDS history semantics)."""

    def __init__(self, depth: int):
        self._items: collections.deque = collections.deque(maxlen=depth)
        self._lock = threading.Lock()
        self.dropped = 0

    def push(self, item) -> bool:
        """Append; True when the queue was empty before (the executor must be told)."""
        with self._lock:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            was_empty = not self._items
            self._items.append(item)
            return was_empty

    def drain(self) -> list:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items
