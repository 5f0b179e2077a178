"""What `ros2 param list/get/describe` show for a node, built without ROS.

Our own parser (`params.resolve_parameters`) reads the command line and parameter files
and validates the values on both backends alike, so a bad start-up fails the same way
with or without rclpy. On the rclpy backend the node then declares each resolved
parameter with an rcl_interfaces ParameterDescriptor built from the spec below
(`runtime/rclpy_backend.py` only maps the fields onto the message).

Parameters are declared read-only: a node reads them once into a frozen dataclass, so a
later `ros2 param set` would change nothing; rclpy refuses it with its own reason instead.
"""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass
from typing import Any

from samrl_common.params import FIELD_NAME_SEPARATOR, PARAM_NAME_SEPARATOR, describe_parameters

# rcl_interfaces/msg/ParameterType constants.
PARAMETER_BOOL = 1
PARAMETER_INTEGER = 2
PARAMETER_DOUBLE = 3
PARAMETER_STRING = 4
PARAMETER_BOOL_ARRAY = 6
PARAMETER_INTEGER_ARRAY = 7
PARAMETER_DOUBLE_ARRAY = 8
PARAMETER_STRING_ARRAY = 9

_SCALAR_TYPES = {'bool': PARAMETER_BOOL, 'int': PARAMETER_INTEGER, 'float': PARAMETER_DOUBLE,
                 'str': PARAMETER_STRING}
_ARRAY_TYPES = {'bool': PARAMETER_BOOL_ARRAY, 'int': PARAMETER_INTEGER_ARRAY, 'float': PARAMETER_DOUBLE_ARRAY,
                'str': PARAMETER_STRING_ARRAY}
# describe_parameters' type names ('float', 'list[str]', 'tuple[float]') to ParameterType.
ROS_PARAMETER_TYPES: dict[str, int] = {
    **_SCALAR_TYPES,
    **{f'{container}[{scalar}]': code for scalar, code in _ARRAY_TYPES.items() for container in ('list', 'tuple')},
}
CONTINUOUS_STEP = 0  # rcl_interfaces ranges: a step of 0 allows every value between the bounds


@dataclass(frozen=True)
class DescriptorSpec:
    """One parameter as rclpy declares it; field names follow rcl_interfaces/msg/ParameterDescriptor.

    Attributes:
        name: ROS parameter name (`a.b` for the dataclass field `a__b`).
        type: rcl_interfaces ParameterType constant.
        description: what it means, with its unit (the field's metadata).
        value: the resolved value as rclpy takes it (a list for arrays).
        read_only: always True (see the module docstring).
        floating_point_range / integer_range: inclusive (from, to) bounds, or None.
    """

    name: str
    type: int
    description: str
    value: Any
    read_only: bool = True
    floating_point_range: tuple[float, float] | None = None
    integer_range: tuple[int, int] | None = None

    @property
    def is_empty_array(self) -> bool:
        """rclpy cannot tell an empty list's element type: declare it by type, without a value."""
        return self.value == []


def _field_name(ros_name: str) -> str:
    return ros_name.replace(PARAM_NAME_SEPARATOR, FIELD_NAME_SEPARATOR)


def descriptor_specs(params: Any) -> list[DescriptorSpec]:
    """The descriptors of a node's resolved parameters, in declaration order.

    Args:
        params: the node's parameter dataclass instance (what `resolve_parameters` returned).

    Raises:
        TypeError: `params` is not a dataclass instance, or a field has an unsupported type or range.
    """
    if not is_dataclass(params) or isinstance(params, type):
        raise TypeError(f'expected a parameter dataclass instance, got {params!r}')
    specs = []
    for described in describe_parameters(type(params)):
        value = getattr(params, _field_name(described.name))
        ros_type = ROS_PARAMETER_TYPES[described.type]
        bounds = described.range
        specs.append(DescriptorSpec(
            name=described.name, type=ros_type, description=described.description,
            value=list(value) if isinstance(value, tuple) else value,
            floating_point_range=(float(bounds[0]), float(bounds[1])) if bounds and ros_type == PARAMETER_DOUBLE
            else None,
            integer_range=(int(bounds[0]), int(bounds[1])) if bounds and ros_type == PARAMETER_INTEGER else None))
    return specs
