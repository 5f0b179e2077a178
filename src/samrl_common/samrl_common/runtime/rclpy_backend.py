"""rclpy backend: a thin shell used on machines with ROS 2 Jazzy (not installable here, so not run in CI).

Our IdlStruct messages travel as their CDR bytes: publishers accept serialized
bytes and `raw=True` subscriptions deliver them (FACTS.md). Services have no
raw form, so requests and responses are converted with rclpy.serialization.
rclpy spins in a background thread and only queues work for the node's own
executor, exactly as the DDS backend's reader threads do. Parameters are parsed and
validated by our own parser on both backends; here they are then declared, read-only,
with descriptors (samrl_common.parameter_descriptors), for `ros2 param list/get/describe`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from samrl_common import msgs
from samrl_common.parameter_descriptors import CONTINUOUS_STEP, DescriptorSpec
from samrl_common.runtime.qos import QoSProfile

SERVICE_HANDLER_TIMEOUT_S = 30.0


def _rclpy_qos(profile: QoSProfile):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
    from rclpy.qos import QoSProfile as RosQoS
    return RosQoS(
        history=HistoryPolicy.KEEP_LAST, depth=profile.depth,
        reliability=ReliabilityPolicy.RELIABLE if profile.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if profile.transient_local else DurabilityPolicy.VOLATILE)


def _ros_descriptor(spec: DescriptorSpec):
    """rcl_interfaces ParameterDescriptor of one spec (the spec's fields carry the message's names)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    descriptor = ParameterDescriptor(name=spec.name, type=spec.type, description=spec.description,
                                     read_only=spec.read_only)
    if spec.floating_point_range:
        low, high = spec.floating_point_range
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high,
                                                              step=float(CONTINUOUS_STEP))]
    if spec.integer_range:
        low, high = spec.integer_range
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=CONTINUOUS_STEP)]
    return descriptor


def _ros_message(cls: type):
    from rosidl_runtime_py.utilities import get_message
    return get_message(cls.__ros_type__)


class _Publisher:
    def __init__(self, pub):
        self._pub = pub

    def publish_bytes(self, data: bytes) -> None:
        self._pub.publish(data)

    def matched_count(self) -> int:
        return self._pub.get_subscription_count()


class _Client:
    def __init__(self, client, service: msgs.ServiceType, ros_srv):
        self._client, self._service, self._ros_srv = client, service, ros_srv

    def is_ready(self) -> bool:
        return self._client.service_is_ready()

    def call_async(self, request) -> Future:
        from rclpy.serialization import deserialize_message, serialize_message
        future: Future = Future()
        ros_future = self._client.call_async(deserialize_message(msgs.serialize(request), self._ros_srv.Request))
        ros_future.add_done_callback(lambda f: future.set_result(
            msgs.deserialize(self._service.Response, serialize_message(f.result()))))
        return future

    def forget(self, future: Future) -> None:
        future.cancel()


class RclpyBackend:
    name = 'rclpy'

    def __init__(self, fqn: str):
        import rclpy
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.executors import MultiThreadedExecutor
        if not rclpy.ok():
            rclpy.init(args=[])  # our own parser has consumed --ros-args already
        namespace, _, name = fqn.rpartition('/')
        self._node = rclpy.create_node(name, namespace=namespace or '/')
        self._group = ReentrantCallbackGroup()
        self._executor = MultiThreadedExecutor()
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def publisher(self, topic: str, cls: type, qos: QoSProfile) -> _Publisher:
        return _Publisher(self._node.create_publisher(_ros_message(cls), topic, _rclpy_qos(qos)))

    def reader(self, topic: str, cls: type, qos: QoSProfile, on_data):
        return self._node.create_subscription(_ros_message(cls), topic, lambda data: on_data(data, 0),
                                              _rclpy_qos(qos), raw=True, callback_group=self._group)

    def client(self, name: str, service: msgs.ServiceType) -> _Client:
        from rosidl_runtime_py.utilities import get_service
        ros_srv = get_service(service.name)
        return _Client(self._node.create_client(ros_srv, name, callback_group=self._group), service, ros_srv)

    def server(self, name: str, service: msgs.ServiceType, handle, on_error):
        from rclpy.serialization import deserialize_message, serialize_message
        from rosidl_runtime_py.utilities import get_service
        ros_srv = get_service(service.name)

        def callback(ros_request, ros_response):
            try:
                request = msgs.deserialize(service.Request, serialize_message(ros_request))
            except msgs.MessageError as exc:
                on_error(f'dropped malformed request: {exc}')
                return ros_response
            response = handle(request).result(timeout=SERVICE_HANDLER_TIMEOUT_S)
            return deserialize_message(msgs.serialize(response), ros_srv.Response)

        return self._node.create_service(ros_srv, name, callback, callback_group=self._group)

    def declare_parameters(self, specs: list[DescriptorSpec]) -> None:
        """Declare the values our parser resolved (overrides ignored: rclpy never saw the arguments)."""
        from rclpy.parameter import Parameter
        for spec in specs:
            value = Parameter.Type(spec.type) if spec.is_empty_array else spec.value
            self._node.declare_parameter(spec.name, value, _ros_descriptor(spec), ignore_override=True)

    def close(self) -> None:
        self._executor.shutdown()
        self._node.destroy_node()
