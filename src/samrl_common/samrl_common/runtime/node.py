"""The node API every samrl node is written against, on either backend.

Shaped after rclpy so node code reads like ROS 2 code, with one execution model
on both backends: backend threads only queue work; every user callback (timer,
subscription, service handler) runs in the thread that calls `spin()`.
Malformed messages and failing callbacks are logged and dropped; the node keeps
running.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from samrl_common import msgs
from samrl_common.parameter_descriptors import descriptor_specs
from samrl_common.params import RosArgs, resolve_parameters, resolve_topic_name, split_ros_args
from samrl_common.runtime.backend import make_backend
from samrl_common.runtime.logs import ThrottledLogger, make_logger
from samrl_common.runtime.qos import QOS_DEFAULT, QoSProfile

NS_PER_S = 1_000_000_000
DROP_WARNING_PERIOD_S = 5.0
MAX_PENDING_REQUESTS = 8        # per service: a request beyond this many waiting is answered "busy" at once


@dataclass
class ServiceStats:
    """What a service did with its requests (for a node's summary and for tests)."""

    answered: int = 0
    busy: int = 0
    failed: int = 0          # the handler raised: answered success=false with the reason
    pending: int = 0


def stamp_now():
    """builtin_interfaces/Time of the wall clock."""
    ns = time.time_ns()
    return msgs.get_message('builtin_interfaces/msg/Time')(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def stamp_to_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _message_class(msg_type) -> type:
    return msgs.get_message(msg_type) if isinstance(msg_type, str) else msg_type


def _service_type(srv_type) -> msgs.ServiceType:
    return msgs.get_service(srv_type) if isinstance(srv_type, str) else srv_type


def _failure(service: msgs.ServiceType, reason: str):
    """A response with success=false and `reason`, for service types that have those fields; else None."""
    fields = getattr(service.Response, '__annotations__', {})
    if 'success' not in fields or 'message' not in fields:
        return None
    return service.Response(success=False, message=reason)


class Publisher:
    def __init__(self, impl, cls: type, topic: str):
        self._impl, self.msg_type, self.topic = impl, cls, topic

    def publish(self, message) -> None:
        if not isinstance(message, self.msg_type):
            raise TypeError(f'{self.topic} carries {self.msg_type.__ros_type__}, got {type(message).__name__}')
        self._impl.publish_bytes(msgs.serialize(message))

    def get_subscription_count(self) -> int:
        return self._impl.matched_count()


@dataclass
class Subscription:
    topic: str
    msg_type: type
    received: int = 0        # delivered to the callback
    dropped: int = 0         # did not decode
    superseded: int = 0      # replaced by a newer sample before the executor delivered it (keep-last)


class Client:
    def __init__(self, impl, service: msgs.ServiceType, name: str):
        self._impl, self.srv_type, self.name = impl, service, name

    def service_is_ready(self) -> bool:
        return self._impl.is_ready()

    def wait_for_service(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._impl.is_ready():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def call_async(self, request) -> Future:
        if not isinstance(request, self.srv_type.Request):
            raise TypeError(f'{self.name} expects {self.srv_type.name} requests, got {type(request).__name__}')
        return self._impl.call_async(request)

    def call(self, request, timeout_s: float = 5.0):
        """Blocking call; safe inside callbacks (replies are not routed through the executor)."""
        future = self.call_async(request)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            self._impl.forget(future)
            raise TimeoutError(f'service {self.name} did not answer within {timeout_s} s') from None


@dataclass(order=True)
class Timer:
    due: float
    order: int
    period_s: float = field(compare=False)
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Node:
    """A ROS 2 node: name, namespace, parameters, publishers, subscriptions, services, timers.

    Args:
        name: default node name (`-r __node:=x` overrides it).
        params: a frozen dataclass type whose fields are the declared parameters.
        argv: command-line arguments (default sys.argv[1:]); `--ros-args` sections are consumed.
    """

    def __init__(self, name: str, *, params: type | None = None, argv: list[str] | None = None,
                 namespace: str = ''):
        self.argv, ros_args = split_ros_args(list(sys.argv[1:] if argv is None else argv))
        self.name = ros_args.node_name or name
        self.namespace = ros_args.namespace or namespace or '/'
        self.fqn = self.namespace.rstrip('/') + '/' + self.name
        self.ros_args: RosArgs = ros_args
        self.params = resolve_parameters(params, ros_args, self.fqn) if params is not None else None
        self.logger = ThrottledLogger(make_logger(self.fqn, ros_args.log_level))
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._timers: list[Timer] = []
        self._order = itertools.count()
        self._shutdown = threading.Event()
        self.subscriptions: list[Subscription] = []
        self.service_stats: dict[str, ServiceStats] = {}
        self._entities: list = []
        self._backend = make_backend(self.fqn)
        if self.params is not None:  # `ros2 param list/get/describe` see them on the rclpy backend
            self._backend.declare_parameters(descriptor_specs(self.params))

    # -- names ---------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """Expand a topic or service name and apply remapping rules, as ROS 2 does."""
        return resolve_topic_name(name, self.namespace, self.name, self.ros_args.remaps)

    # -- entities ------------------------------------------------------------------------------
    def create_publisher(self, msg_type, topic: str, qos: QoSProfile = QOS_DEFAULT) -> Publisher:
        cls, resolved = _message_class(msg_type), self.resolve(topic)
        publisher = Publisher(self._backend.publisher(resolved, cls, qos), cls, resolved)
        self._entities.append(publisher)  # the node owns its entities, as in rclpy
        return publisher

    def create_subscription(self, msg_type, topic: str, callback: Callable, qos: QoSProfile = QOS_DEFAULT
                            ) -> Subscription:
        cls, resolved = _message_class(msg_type), self.resolve(topic)
        sub = Subscription(resolved, cls)
        history: queue.Queue = queue.Queue(maxsize=qos.depth)

        def on_data(data: bytes, _stamp: int) -> None:  # backend thread
            if history.full():  # keep-last: the oldest undelivered sample gives way
                try:
                    history.get_nowait()
                    sub.superseded += 1
                except queue.Empty:
                    pass
            history.put_nowait(data)
            self._work.put(lambda: self._deliver(sub, history, callback))

        self._entities.append(self._backend.reader(resolved, cls, qos, on_data))
        self.subscriptions.append(sub)
        return sub

    def create_service(self, srv_type, name: str, handler: Callable,
                       max_pending: int = MAX_PENDING_REQUESTS) -> ServiceStats:
        """Serve `name` with `handler`. Every request is answered: a request that finds `max_pending`
        others waiting gets "busy" at once, and a handler that raises answers success=false with the
        reason (for service types with success and message fields; others leave the client to time out)."""
        service, resolved = _service_type(srv_type), self.resolve(name)
        stats = self.service_stats[resolved] = ServiceStats()
        lock = threading.Lock()

        def handle(request) -> Future:  # backend thread
            future: Future = Future()
            with lock:
                busy = stats.pending >= max_pending and _failure(service, '') is not None
                stats.pending += 0 if busy else 1
            if busy:
                stats.busy += 1
                self.logger.warn_throttled(f'busy:{resolved}', f'{resolved}: busy, {stats.pending} requests waiting; '
                                           f'answered "busy" ({stats.busy} so far)', DROP_WARNING_PERIOD_S)
                future.set_result(_failure(service, f'busy: {stats.pending} requests are waiting; try again later'))
                return future

            def serve() -> None:
                self._serve(resolved, service, handler, request, future, stats)
                with lock:
                    stats.pending -= 1
            self._work.put(serve)
            return future

        self._entities.append(self._backend.server(resolved, service, handle,
                             lambda reason: self.logger.warn_throttled(f'srv:{resolved}', f'{resolved}: {reason}')))
        return stats

    def create_client(self, srv_type, name: str) -> Client:
        service, resolved = _service_type(srv_type), self.resolve(name)
        client = Client(self._backend.client(resolved, service), service, resolved)
        self._entities.append(client)
        return client

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        if not period_s > 0:
            raise ValueError(f'timer period must be > 0 s, got {period_s}')
        timer = Timer(time.monotonic() + period_s, next(self._order), period_s, callback)
        heapq.heappush(self._timers, timer)
        self._work.put(lambda: None)  # wake the executor to see the new deadline
        return timer

    def get_logger(self) -> 'ThrottledLogger':
        return self.logger

    # -- execution -----------------------------------------------------------------------------
    def _deliver(self, sub: Subscription, history: queue.Queue, callback: Callable) -> None:
        try:
            data = history.get_nowait()
        except queue.Empty:
            return  # superseded by a newer sample that an earlier call delivered
        try:
            message = msgs.deserialize(sub.msg_type, data)
        except msgs.MessageError as exc:
            sub.dropped += 1
            self.logger.warn_throttled(f'decode:{sub.topic}:{exc.kind}', f'dropped a message on {sub.topic} '
                                       f'({sub.dropped} so far): {exc}', DROP_WARNING_PERIOD_S)
            return
        sub.received += 1
        self._guarded(f'subscription {sub.topic}', callback, message)

    def _serve(self, name: str, service: msgs.ServiceType, handler, request, future: Future,
               stats: ServiceStats) -> None:
        try:
            response = handler(request)
            if not isinstance(response, service.Response):
                raise TypeError(f'handler returned {type(response).__name__}, not {service.name} Response')
            stats.answered += 1
            future.set_result(response)
        except Exception as exc:  # a failing handler must not stop the node, nor leave the client waiting
            stats.failed += 1
            self.logger.error(f'service {name} failed: {exc}\n{traceback.format_exc()}')
            failure = _failure(service, f'internal error: {type(exc).__name__}: {exc}')
            future.set_result(failure) if failure is not None else future.set_exception(exc)

    def _guarded(self, what: str, callback: Callable, *args) -> None:
        try:
            callback(*args)
        except Exception as exc:  # a failing callback must not stop the node
            self.logger.error(f'{what} callback failed: {exc}\n{traceback.format_exc()}')

    def _run_due_timers(self) -> float | None:
        """Run each due timer once; return seconds until the next deadline (None without timers).

        A timer whose callback outlasts its period runs once per call, never in a loop, so
        subscriptions and shutdown are still served; missed periods are skipped, not replayed.
        """
        now = time.monotonic()
        due = []
        while self._timers and (self._timers[0].cancelled or self._timers[0].due <= now):
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                due.append(timer)
        for timer in due:
            timer.due += timer.period_s * (int((now - timer.due) // timer.period_s) + 1)
            heapq.heappush(self._timers, timer)
            self._guarded('timer', timer.callback)
        if not self._timers:
            return None
        return max(0.0, self._timers[0].due - time.monotonic())

    def spin_once(self, timeout_s: float | None = None) -> None:
        """Run the work that has arrived, then due timers, then wait for more (up to timeout_s).

        Arrived messages go first so that a timer sees what came in before it was due
        (a control loop must act on the command that arrived during a long render).
        """
        self._run_ready_work()
        wait = self._run_due_timers()
        if timeout_s is not None:
            wait = timeout_s if wait is None else min(wait, timeout_s)
        try:
            work = self._work.get(timeout=wait)
        except queue.Empty:
            return
        work()

    def _run_ready_work(self) -> None:
        for _ in range(self._work.qsize()):  # only what is queued now: timers must not starve
            try:
                work = self._work.get_nowait()
            except queue.Empty:
                return
            work()

    def spin(self) -> None:
        """Process callbacks until shutdown() (or Ctrl-C in the caller)."""
        while not self._shutdown.is_set():
            self.spin_once(timeout_s=0.1)

    def spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline or self._shutdown.is_set():
                return False
            self.spin_once(timeout_s=min(0.05, max(0.0, deadline - time.monotonic())))
        return True

    def stopping(self) -> bool:
        """True once shutdown() was asked for: long callbacks end early on it."""
        return self._shutdown.is_set()

    def shutdown(self) -> None:
        self._shutdown.set()
        self._work.put(lambda: None)

    def destroy(self) -> None:
        self.shutdown()
        self._backend.close()
