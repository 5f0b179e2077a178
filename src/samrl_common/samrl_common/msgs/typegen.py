"""Build Cyclone DDS `IdlStruct` classes from ROS 2 message definitions.

Each class carries the DDS type name rmw_cyclonedds uses
(`pkg::msg::dds_::Name_`), is `@final` (XCDR1, as rmw_cyclonedds writes) and
serializes `uint8[]`/`byte[]` members as one buffer copy: cyclonedds'
generic sequence machine packs element by element (about 30 ms for a
640x480 image, see FACTS.md); its `BytesMachine` writes the same bytes at once.
`BytesMachine` is private API of cyclonedds 11.0.1 (pinned); the byte
comparison test against rosbags guards it.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from cyclonedds.idl import annotations as idl_annotations
from cyclonedds.idl import make_idl_struct, types
from cyclonedds.idl._machinery import BytesMachine
from rosbags.interfaces import Nodetype

from samrl_common.msgs.definitions import Definition

_SCALARS: dict[str, Any] = {
    'bool': bool, 'byte': types.uint8, 'char': types.uint8,
    'int8': types.int8, 'uint8': types.uint8, 'int16': types.int16, 'uint16': types.uint16,
    'int32': types.int32, 'uint32': types.uint32, 'int64': types.int64, 'uint64': types.uint64,
    'float32': types.float32, 'float64': types.float64,
}
_OCTETS = ('uint8', 'byte', 'char')
_ZERO = {bool: False, types.float32: 0.0, types.float64: 0.0}


def dds_type_name(ros_name: str) -> str:
    """'sensor_msgs/msg/Image' -> 'sensor_msgs::msg::dds_::Image_' (rmw_cyclonedds naming)."""
    package, kind, name = ros_name.split('/')
    return f'{package}::{kind}::dds_::{name}_'


def ros_type_name(dds_name: str) -> str:
    """Inverse of dds_type_name."""
    package, kind, _, name = dds_name.split('::')
    return f'{package}/{kind}/{name.rstrip("_")}'


def _is_octet(desc: tuple) -> bool:
    return desc[0] == Nodetype.BASE and desc[1][0] in _OCTETS


class StructFactory:
    """Creates (and caches) one IdlStruct class per ROS type name.

    `lookup` maps a ROS type name to its definition (see definitions.py).
    """

    def __init__(self, lookup):
        self._lookup = lookup
        self._classes: dict[str, type] = {}

    def get(self, ros_name: str) -> type:
        if ros_name not in self._classes:
            self._classes[ros_name] = self._build(ros_name, self._lookup(ros_name))
        return self._classes[ros_name]

    def build_flat(self, ros_name: str, leading: dict[str, Any], class_name: str) -> type:
        """A class on the same DDS type name with extra leading members.

        Used for service samples, which carry rmw_cyclonedds' request header
        before the request's own members (FACTS.md).
        """
        consts, fields = self._lookup(ros_name)
        return self._make(class_name, ros_name, consts, fields, leading)

    def _build(self, ros_name: str, definition: Definition) -> type:
        consts, fields = definition
        return self._make(ros_name.rsplit('/', 1)[-1], ros_name, consts, fields, {})

    def _make(self, class_name, ros_name, consts, fields, leading) -> type:
        annotations = dict(leading)
        defaults = {name: (lambda: 0) for name in leading}
        octets = []
        for name, desc in fields:
            annotations[name] = self._annotation(desc)
            defaults[name] = self._default_factory(desc)
            if desc[0] == Nodetype.SEQUENCE and _is_octet(desc[1][0]):
                octets.append(name)
        cls = make_idl_struct(class_name, dds_type_name(ros_name), annotations, dataclassify=False)
        idl_annotations.final(cls)
        for name, factory in defaults.items():
            setattr(cls, name, dataclasses.field(default_factory=factory))
        for cname, _ctype, value in consts:
            setattr(cls, cname, value)
        cls = dataclasses.dataclass(cls)
        cls.__ros_type__ = ros_name
        cls.__octet_members__ = tuple(octets)
        _use_bytes_machines(cls)
        return cls

    def _annotation(self, desc: tuple) -> Any:
        kind, detail = desc
        if kind == Nodetype.BASE:
            base, bound = detail
            if base in ('string', 'wstring'):
                return types.bounded_str[bound] if bound else str
            if base not in _SCALARS:
                raise TypeError(f'unsupported ROS base type {base!r}')
            return _SCALARS[base]
        if kind == Nodetype.NAME:
            return self.get(detail)
        sub, size = detail
        if kind == Nodetype.ARRAY:
            return types.array[self._annotation(sub), size]
        return types.sequence[self._annotation(sub), size] if size else types.sequence[self._annotation(sub)]

    def _default_factory(self, desc: tuple):
        kind, detail = desc
        if kind == Nodetype.BASE:
            base = detail[0]
            if base in ('string', 'wstring'):
                return str
            return partial(lambda v: v, _ZERO.get(_SCALARS[base], 0))
        if kind == Nodetype.NAME:
            return self.get(detail)
        sub, size = detail
        if kind == Nodetype.ARRAY:
            if _is_octet(sub):
                return partial(bytes, size)
            element = self._default_factory(sub)
            return lambda: [element() for _ in range(size)]
        return bytes if _is_octet(sub) else list


def _use_bytes_machines(cls: type) -> None:
    """Swap the element-wise machines of uint8[] members for BytesMachine."""
    if not cls.__octet_members__:
        return
    idl = cls.__idl__
    idl.populate()
    for machine in (idl.v1_machine, idl.v2_machine):
        for name in cls.__octet_members__:
            bound = machine.members_machines[name]
            machine.members_machines[name] = BytesMachine(getattr(bound, 'max_length', None))
