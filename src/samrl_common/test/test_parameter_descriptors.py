"""What `ros2 param describe` shows: descriptors built without ROS, and the thin rclpy shell on fakes."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from samrl_common import parameter_descriptors as pd
from samrl_common.params import ParameterError, RosArgs, describe_parameters, resolve_parameters


@dataclass(frozen=True)
class CameraParams:
    rate_hz: float = field(default=15.0, metadata={'description': 'frames per second (Hz)', 'range': (1.0, 60.0)})
    queue: int = field(default=5, metadata={'description': 'frames kept', 'range': (1, 100)})
    enabled: bool = field(default=True, metadata={'description': 'publish at all'})
    frame: str = field(default='cam', metadata={'description': 'tf frame'})
    limits__low_m: tuple[float, ...] = field(default=(0.1, 0.2), metadata={'description': 'lower corner (m)'})
    names: list[str] = field(default_factory=list, metadata={'description': 'object names'})


def test_descriptor_specs_carry_type_description_range_and_resolved_value():
    params = resolve_parameters(CameraParams, RosArgs(params={'rate_hz': 30}), '/camera')
    specs = {spec.name: spec for spec in pd.descriptor_specs(params)}
    assert list(specs) == ['rate_hz', 'queue', 'enabled', 'frame', 'limits.low_m', 'names']
    assert specs['rate_hz'] == pd.DescriptorSpec('rate_hz', pd.PARAMETER_DOUBLE, 'frames per second (Hz)', 30.0,
                                                 floating_point_range=(1.0, 60.0))
    assert specs['queue'].type == pd.PARAMETER_INTEGER and specs['queue'].integer_range == (1, 100)
    assert specs['enabled'].type == pd.PARAMETER_BOOL and specs['frame'].type == pd.PARAMETER_STRING
    assert specs['limits.low_m'].type == pd.PARAMETER_DOUBLE_ARRAY and specs['limits.low_m'].value == [0.1, 0.2]
    assert specs['names'].type == pd.PARAMETER_STRING_ARRAY and specs['names'].is_empty_array
    assert all(spec.read_only for spec in specs.values())  # nodes read parameters once, at start-up


def test_declared_range_is_checked_at_start_up_on_both_backends():
    """The same refusal with or without rclpy: our parser runs before either backend."""
    with pytest.raises(ParameterError, match=r"'rate_hz' for node /camera must be in \[1.0, 60.0\], got 100.0"):
        resolve_parameters(CameraParams, RosArgs(params={'rate_hz': 100.0}), '/camera')
    with pytest.raises(ParameterError, match=r"'queue' for node /camera must be in \[1, 100\], got 0"):
        resolve_parameters(CameraParams, RosArgs(params={'queue': 0}), '/camera')


def test_a_range_on_a_non_number_is_a_declaration_error():
    @dataclass(frozen=True)
    class Bad:
        frame: str = field(default='x', metadata={'range': (0, 1)})

    with pytest.raises(TypeError, match="field 'frame': metadata 'range'"):
        describe_parameters(Bad)


def test_every_node_declares_descriptors_its_defaults_satisfy():
    """Every samrl node class: a type rclpy knows, a description and a default inside its range."""
    from samrl_common.demo.listener import ListenerParams
    from samrl_common.demo.talker import TalkerParams
    from samrl_perception.capture_node import CaptureParams
    for spec in (TalkerParams, ListenerParams, CaptureParams):
        for descriptor in pd.descriptor_specs(spec()):
            assert descriptor.type in pd.ROS_PARAMETER_TYPES.values() and descriptor.description
            bounds = descriptor.floating_point_range or descriptor.integer_range
            assert bounds is None or bounds[0] <= descriptor.value <= bounds[1], descriptor.name


class _RecordingNode:
    def __init__(self):
        self.declared = []

    def declare_parameter(self, name, value, descriptor, ignore_override=False):
        self.declared.append((name, value, descriptor, ignore_override))


def _fake_ros_modules(monkeypatch):
    """Just enough of rclpy and rcl_interfaces for the shell's declare_parameters."""
    class Message:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    msg = types.SimpleNamespace(ParameterDescriptor=type('ParameterDescriptor', (Message,), {}),
                                FloatingPointRange=type('FloatingPointRange', (Message,), {}),
                                IntegerRange=type('IntegerRange', (Message,), {}))
    parameter = types.SimpleNamespace(Parameter=types.SimpleNamespace(Type=lambda code: ('type', code)))
    monkeypatch.setitem(sys.modules, 'rcl_interfaces', types.ModuleType('rcl_interfaces'))
    monkeypatch.setitem(sys.modules, 'rcl_interfaces.msg', msg)
    monkeypatch.setitem(sys.modules, 'rclpy', types.ModuleType('rclpy'))
    monkeypatch.setitem(sys.modules, 'rclpy.parameter', parameter)


def test_rclpy_shell_declares_each_parameter_read_only_with_its_descriptor(monkeypatch):
    from samrl_common.runtime.rclpy_backend import RclpyBackend
    _fake_ros_modules(monkeypatch)
    backend = RclpyBackend.__new__(RclpyBackend)  # no rclpy here: only the parameter shell is exercised
    backend._node = _RecordingNode()
    backend.declare_parameters(pd.descriptor_specs(CameraParams()))
    declared = {name: (value, descriptor, ignore) for name, value, descriptor, ignore in backend._node.declared}
    value, descriptor, ignore_override = declared['rate_hz']
    assert value == 15.0 and ignore_override  # our parser's value, not rclpy's (empty) overrides
    assert (descriptor.type, descriptor.description, descriptor.read_only) == \
        (pd.PARAMETER_DOUBLE, 'frames per second (Hz)', True)
    assert (descriptor.floating_point_range[0].from_value, descriptor.floating_point_range[0].to_value) == (1.0, 60.0)
    assert declared['queue'][1].integer_range[0].to_value == 100
    assert declared['names'][0] == ('type', pd.PARAMETER_STRING_ARRAY)  # empty list: declared by type
