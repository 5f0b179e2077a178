"""Every generated type must serialize byte-for-byte like rosbags, an independent CDR implementation."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_typestore

from samrl_common import msgs
from samrl_common.msgs.definitions import all_definitions

PACKAGES = ('builtin_interfaces', 'std_msgs', 'geometry_msgs', 'sensor_msgs', 'tf2_msgs',
            'visualization_msgs', 'std_srvs', 'samrl_interfaces')
NUMPY = {'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8, 'uint8': np.uint8,
         'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32, 'uint32': np.uint32,
         'int64': np.int64, 'uint64': np.uint64, 'float32': np.float32, 'float64': np.float64}
OCTET = ('uint8', 'byte', 'char')


def _type_names() -> list[str]:
    return sorted(k for k in all_definitions() if k.split('/')[0] in PACKAGES)


@pytest.fixture(scope='module')
def oracle():
    store = get_typestore(Stores.ROS2_JAZZY)
    extra = {k: v for k, v in all_definitions().items() if k not in store.fielddefs}
    store.register(extra)
    return store


def _scalar(rng: random.Random, base: str):
    if base == 'bool':
        return rng.random() < 0.5
    if base in ('float32', 'float64'):
        return float(NUMPY[base](rng.uniform(-1e3, 1e3)))
    if base == 'string':
        return ''.join(rng.choice('abcxyz_/ 09é') for _ in range(rng.randrange(12)))
    if base == 'byte':  # octet; rosbags packs scalar bytes as signed, so stay in 0..127
        return rng.randint(0, 127)
    info = np.iinfo(NUMPY[base])
    return rng.randint(int(info.min), int(info.max))


def _value(rng, desc, oracle):
    """A random value as (ours, rosbags')."""
    kind, detail = desc
    if kind == Nodetype.BASE:
        v = _scalar(rng, detail[0])
        return v, v
    if kind == Nodetype.NAME:
        return _random_message(rng, detail, oracle)
    sub, size = detail
    count = size if kind == Nodetype.ARRAY else rng.randrange(5)
    if sub[0] == Nodetype.BASE and sub[1][0] != 'string':
        values = [_scalar(rng, sub[1][0]) for _ in range(count)]
        array = np.array(values, dtype=NUMPY[sub[1][0]])
        ours = array.tobytes() if sub[1][0] in OCTET else values
        return ours, array
    pairs = [_value(rng, sub, oracle) for _ in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _random_message(rng, name, oracle):
    _consts, fields = all_definitions()[name]
    ours, theirs = {}, {}
    for field, desc in fields:
        ours[field], theirs[field] = _value(rng, desc, oracle)
    return msgs.get_message(name)(**ours), oracle.types[name](**theirs)


@pytest.mark.parametrize('name', _type_names())
def test_bytes_match_rosbags(name, oracle):
    rng = random.Random(name)
    for _ in range(3):
        ours, theirs = _random_message(rng, name, oracle)
        data = msgs.serialize(ours)
        assert data == bytes(oracle.serialize_cdr(theirs, name))
        assert msgs.deserialize(type(ours), data) == ours


@pytest.mark.parametrize('srv', msgs.service_names())
def test_service_wire_has_request_header(srv, oracle):
    service = msgs.get_service(srv)
    rng = random.Random(srv)
    for part, wire_cls in (('Request', service.RequestWire), ('Response', service.ResponseWire)):
        ours, theirs = _random_message(rng, f'{srv}_{part}', oracle)
        wire = wire_cls(_client_guid=2**64 - 3, _sequence=-42, **vars(ours))
        header = (2**64 - 3).to_bytes(8, 'little') + (-42).to_bytes(8, 'little', signed=True)
        body = bytes(oracle.serialize_cdr(theirs, f'{srv}_{part}'))
        assert msgs.serialize(wire) == body[:4] + header + body[4:]
        assert wire_cls.__idl_typename__ == msgs.dds_type_name(f'{srv}_{part}')


def test_names_follow_rmw_cyclonedds():
    assert msgs.sensor_msgs.msg.Image.__idl_typename__ == 'sensor_msgs::msg::dds_::Image_'
    assert msgs.ros_type_name('tf2_msgs::msg::dds_::TFMessage_') == 'tf2_msgs/msg/TFMessage'


def test_constants_are_class_attributes():
    Marker = msgs.get_message('visualization_msgs/msg/Marker')
    assert Marker.SPHERE == 2 and Marker.DELETEALL == 3


def test_unknown_type_names_the_package_contents():
    with pytest.raises(msgs.UnknownTypeError, match="unknown message type 'sensor_msgs/msg/Imag'.*Image"):
        msgs.get_message('sensor_msgs/msg/Imag')


@pytest.mark.parametrize('mutate, reason', [
    (lambda b: b[:3], 'shorter than the CDR header'),
    (lambda b: b[:-100], 'truncated'),
    (lambda b: b[:4] + b[4:20], 'cannot decode|truncated'),
    (lambda b: b'\x00\x07' + b[2:], 'unsupported encapsulation'),
    (lambda b: b + bytes(16), 'unread bytes'),
])
def test_malformed_buffers_raise_message_error(mutate, reason):
    image = msgs.sensor_msgs.msg.Image(width=10, height=10, encoding='mono8', step=10, data=bytes(100))
    with pytest.raises(msgs.MessageError, match=reason):
        msgs.deserialize(type(image), mutate(msgs.serialize(image)))


def test_wrong_type_is_detected():
    data = msgs.serialize(msgs.sensor_msgs.msg.Image(width=4, height=1, encoding='mono8', step=4, data=b'abcd'))
    with pytest.raises(msgs.MessageError):
        msgs.deserialize(msgs.geometry_msgs.msg.PoseStamped, data)
