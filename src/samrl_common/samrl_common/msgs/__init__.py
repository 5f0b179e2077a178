"""ROS 2 message and service types as Cyclone DDS IdlStructs, generated on first use.

    from samrl_common.msgs import sensor_msgs, get_message, get_service
    image = sensor_msgs.msg.Image(width=640, height=480, encoding='rgb8')
    Trigger = get_service('std_srvs/srv/Trigger')

The same classes are used by both runtime backends: over Cyclone DDS they are
written as they are; over rclpy their CDR bytes are published raw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cyclonedds.idl import types

from samrl_common.msgs.cdr import MessageError, deserialize, serialize
from samrl_common.msgs.definitions import UnknownTypeError, all_definitions, definition, service_names
from samrl_common.msgs.typegen import StructFactory, dds_type_name, ros_type_name

__all__ = [
    'MessageError', 'ServiceType', 'UnknownTypeError', 'deserialize', 'get_message', 'get_service',
    'message_names', 'serialize', 'service_names', 'dds_type_name', 'ros_type_name',
]

# rmw_cyclonedds' request header: {uint64 client_guid; int64 sequence} (FACTS.md).
REQUEST_HEADER = {'_client_guid': types.uint64, '_sequence': types.int64}


@dataclass(frozen=True)
class ServiceType:
    """A service: user-facing Request/Response, and their wire forms with the request header."""

    name: str
    Request: type
    Response: type
    RequestWire: type
    ResponseWire: type


@cache
def _factory() -> StructFactory:
    return StructFactory(definition)


def get_message(name: str) -> type:
    """The message class for 'pkg/msg/Name' (also 'pkg/Name')."""
    parts = name.split('/')
    if len(parts) == 2:
        name = f'{parts[0]}/msg/{parts[1]}'
    return _factory().get(name)


@cache
def get_service(name: str) -> ServiceType:
    """The service type for 'pkg/srv/Name'."""
    factory = _factory()
    request, response = f'{name}_Request', f'{name}_Response'
    short = name.rsplit('/', 1)[-1]
    return ServiceType(
        name=name,
        Request=factory.get(request),
        Response=factory.get(response),
        RequestWire=factory.build_flat(request, REQUEST_HEADER, f'{short}_RequestWire'),
        ResponseWire=factory.build_flat(response, REQUEST_HEADER, f'{short}_ResponseWire'),
    )


def message_names(package: str | None = None) -> list[str]:
    """Known message type names (not service parts), optionally of one package."""
    return sorted(k for k in all_definitions()
                  if '/msg/' in k and (package is None or k.startswith(package + '/')))


class _Kind:
    def __init__(self, package: str, kind: str):
        self._prefix = f'{package}/{kind}/'

    def __getattr__(self, attr: str):
        if attr.startswith('_'):
            raise AttributeError(attr)
        if self._prefix.endswith('/srv/'):
            return get_service(self._prefix + attr)
        return get_message(self._prefix + attr)


class _Package:
    def __init__(self, package: str):
        self.msg = _Kind(package, 'msg')
        self.srv = _Kind(package, 'srv')


def __getattr__(package: str) -> _Package:
    """`from samrl_common.msgs import sensor_msgs` -> sensor_msgs.msg.Image."""
    if package.startswith('_') or not any(k.startswith(package + '/') for k in all_definitions()):
        raise AttributeError(f'no ROS package {package!r} in the known definitions')
    return _Package(package)
