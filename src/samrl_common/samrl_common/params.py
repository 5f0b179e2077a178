"""ROS 2 command-line arguments, parameter files and name resolution, without rclpy.

The same command line must configure a node whether it runs on rclpy or on our
Cyclone DDS backend, so this module follows the rcl conventions:

* ``split_ros_args`` separates ``--ros-args ... [--]`` sections from the
  program's own arguments (``-p``, ``-r``, ``--params-file``, ``--log-level``).
* ``load_params_file`` reads ROS 2 parameter YAML files (node-name keys,
  wildcards, ``ros__parameters``) for one fully qualified node name.
* ``resolve_parameters`` merges declared defaults < files (in order) < ``-p``
  into the node's frozen parameter dataclass.  A ROS parameter ``a.b`` is the
  dataclass field ``a__b``.
* ``resolve_topic_name`` expands relative and private names and applies remaps.

References: ROS 2 design articles "ROS Command Line" and "Topic and Service
name mapping to DDS"; rcl ``arguments.c``/``remap.c``; rclcpp parameter-file
wildcard matching.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import yaml

ROS_ARGS_FLAG = "--ros-args"
ROS_ARGS_END = "--"
PARAM_FLAGS = ("-p", "--param")
REMAP_FLAGS = ("-r", "--remap")
PARAMS_FILE_FLAG = "--params-file"
LOG_LEVEL_FLAG = "--log-level"
# rcl flags accepted for command-line compatibility but without effect here.
IGNORED_VALUE_FLAGS = ("-e", "--enclave", "--log-config-file")
IGNORED_SWITCHES = frozenset(
    f"--{state}-{what}-logs"
    for state in ("enable", "disable")
    for what in ("stdout", "rosout", "external-lib")
)
ASSIGNMENT = ":="
NODE_PREFIX_SEPARATOR = ":"
NODE_NAME_REMAPS = ("__node", "__name")  # '__name' is rcl's older alias
NAMESPACE_REMAP = "__ns"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
LOG_LEVEL_ALIASES = {"warning": "warn"}

PARAMETERS_KEY = "ros__parameters"
DESCRIPTION_KEY = "description"  # field metadata: what the parameter means, with its unit
RANGE_KEY = "range"              # field metadata: inclusive (low, high) bounds of an int or float
PARAM_NAME_SEPARATOR = "."
FIELD_NAME_SEPARATOR = "__"
# Declared by every rclpy node; tolerated in files even when a spec omits it.
IMPLICIT_PARAMETERS = frozenset({"use_sim_time"})
SCALAR_TYPES = (bool, int, float, str)
YAML_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

NAMESPACE_ROOT = "/"
PRIVATE_PREFIX = "~"
MAX_NODE_NAME_LENGTH = 255  # rmw: RMW_NODE_NAME_MAX_NAME_LENGTH
MAX_TOPIC_NAME_LENGTH = 255 - 8  # rmw: 8 characters reserved for DDS prefixes
MAX_NAMESPACE_LENGTH = MAX_TOPIC_NAME_LENGTH - 2  # room for the shortest topic '/x'
SUBSTITUTION = re.compile(r"\{([^{}]*)\}")
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_]")
PARAM_NAME = re.compile(r"\w+(\.\w+)*", re.ASCII)
NODE_PREFIX = re.compile(r"([A-Za-z_]\w*):(?!/)(.+)", re.ASCII)
WILDCARD_ONE = "*"
WILDCARD_ANY = "**"

SpecT = TypeVar("SpecT")


class ParameterError(ValueError):
    """A ROS argument, parameter file or parameter value is invalid; names the culprit."""


@dataclass(frozen=True)
class RosArgs:
    """The ROS-specific part of a command line.

    Attributes:
        node_name: replacement from ``-r __node:=name`` (None: keep the node's own).
        namespace: replacement from ``-r __ns:=/ns`` (None: keep the node's own).
        params: ``-p`` overrides, ROS name (optionally ``node:name``) to YAML value.
        param_files: ``--params-file`` paths in command-line order.
        remaps: ``-r from:=to`` name remaps in command-line order (``from`` may
            carry a ``node:`` prefix); the first matching rule wins, as in rcl.
        log_level: lower-case severity from ``--log-level``.
    """

    node_name: str | None = None
    namespace: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    param_files: tuple[str, ...] = ()
    remaps: dict[str, str] = field(default_factory=dict)
    log_level: str | None = None


class ParameterDescription(NamedTuple):
    """One declared parameter as documented by ``describe_parameters``."""

    name: str
    type: str
    default: Any
    description: str
    range: tuple[Any, Any] | None = None  # inclusive bounds, as rcl_interfaces' ranges


# --------------------------------------------------------------------------- YAML values


class _RosYamlLoader(yaml.SafeLoader):
    """Safe YAML loader that reads like rcl: keys and dates stay strings.

    Without this, PyYAML would turn a key ``on:`` into True and ``2024-01-01``
    into a date.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != YAML_TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        return {self._construct_key(key, deep): self.construct_object(value, deep=deep)
                for key, value in node.value}

    def _construct_key(self, node: yaml.Node, deep: bool) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return self.construct_object(node, deep=deep)


def _load_yaml(stream: Any) -> Any:
    """Parse YAML text or a stream with ``_RosYamlLoader``."""
    return yaml.load(stream, Loader=_RosYamlLoader)


def _check_value(value: Any, culprit: str) -> Any:
    """Return ``value`` if it is a ROS parameter value, else raise naming ``culprit``.

    ROS parameters are bool, int, float, str or a list of one of those types
    (rcl rejects mixed-type sequences).
    """
    if isinstance(value, SCALAR_TYPES):
        return value
    if isinstance(value, list):
        kinds = {type(item) for item in value}
        if kinds <= set(SCALAR_TYPES) and len(kinds) <= 1:
            return value
        raise ParameterError(f"{culprit}: list items must all be of one type bool, int, "
                             f"float or str, got {value!r}")
    raise ParameterError(f"{culprit}: {value!r} is not a parameter value "
                         f"(bool, int, float, str or a list of one of them)")


def _parse_yaml_value(text: str, culprit: str) -> Any:
    """Parse a ``-p`` value the way rcl does: as a YAML scalar or flow sequence."""
    try:
        value = _load_yaml(text)
    except yaml.YAMLError as exc:
        raise ParameterError(f"{culprit}: value {text!r} is not valid YAML ({exc})") from exc
    return _check_value(value, culprit)


# --------------------------------------------------------------------------- command line


class _RosArgsBuilder:
    """Accumulates the rules of the ``--ros-args`` sections of one command line."""

    def __init__(self) -> None:
        self.node_name: str | None = None
        self.namespace: str | None = None
        self.params: dict[str, Any] = {}
        self.param_files: list[str] = []
        self.remaps: dict[str, str] = {}
        self.log_level: str | None = None

    def handlers(self) -> dict[str, Callable[[str], None]]:
        """Map each value-taking flag to the method that consumes its value."""
        table: dict[str, Callable[[str], None]] = {PARAMS_FILE_FLAG: self.param_files.append,
                                                   LOG_LEVEL_FLAG: self.add_log_level}
        table.update({flag: self.add_param for flag in PARAM_FLAGS})
        table.update({flag: self.add_remap for flag in REMAP_FLAGS})
        table.update({flag: lambda _value: None for flag in IGNORED_VALUE_FLAGS})
        return table

    def add_param(self, rule: str) -> None:
        """Record ``[node:]name:=value``; a later rule for the same name wins."""
        lhs, separator, text = rule.partition(ASSIGNMENT)
        if not separator:
            raise ParameterError(f"parameter rule '{rule}' has no '{ASSIGNMENT}'; "
                                 f"expected -p name:=value")
        prefixed = NODE_PREFIX.fullmatch(lhs)
        name = prefixed.group(2) if prefixed else lhs
        if not PARAM_NAME.fullmatch(name):
            raise ParameterError(f"parameter rule '{rule}': invalid parameter name '{name}'")
        self.params[lhs] = _parse_yaml_value(text, f"parameter '{lhs}'")

    def add_remap(self, rule: str) -> None:
        """Record ``[node:]from:=to``, ``__node:=name`` or ``__ns:=/ns``; first rule wins."""
        lhs, separator, rhs = rule.partition(ASSIGNMENT)
        if not separator or not lhs or not rhs:
            raise ParameterError(f"remap rule '{rule}' must have the form from:=to")
        prefixed = NODE_PREFIX.fullmatch(lhs)
        target = prefixed.group(2) if prefixed else lhs
        if target in NODE_NAME_REMAPS + (NAMESPACE_REMAP,):
            if prefixed:
                raise ParameterError(f"remap rule '{rule}': node-prefixed {target} rules "
                                     f"are not supported")
            self._remap_node(target, rhs, rule)
        else:
            self.remaps.setdefault(lhs, rhs)

    def _remap_node(self, target: str, value: str, rule: str) -> None:
        """Apply a ``__node``/``__ns`` rule unless an earlier one already did."""
        try:
            if target == NAMESPACE_REMAP:
                namespace = _strip_trailing_slash(value)
                validate_namespace(namespace)
                if self.namespace is None:
                    self.namespace = namespace
            else:
                validate_node_name(value)
                if self.node_name is None:
                    self.node_name = value
        except ValueError as exc:
            raise ParameterError(f"remap rule '{rule}': {exc}") from exc

    def add_log_level(self, value: str) -> None:
        """Record the default severity; logger-specific levels are not supported."""
        if ASSIGNMENT in value:
            raise ParameterError(f"log level '{value}': logger-specific levels "
                                 f"(name:=level) are not supported")
        level = LOG_LEVEL_ALIASES.get(value.lower(), value.lower())
        if level not in LOG_LEVELS:
            raise ParameterError(f"log level '{value}' is not one of {', '.join(LOG_LEVELS)}")
        self.log_level = level

    def build(self) -> RosArgs:
        """Freeze the accumulated rules."""
        return RosArgs(node_name=self.node_name, namespace=self.namespace,
                       params=dict(self.params), param_files=tuple(self.param_files),
                       remaps=dict(self.remaps), log_level=self.log_level)


def _strip_trailing_slash(namespace: str) -> str:
    """rcl accepts ``__ns:=/a/b/``; the trailing slash carries no meaning."""
    return namespace.rstrip("/") or NAMESPACE_ROOT


def split_ros_args(argv: list[str]) -> tuple[list[str], RosArgs]:
    """Split a command line into the program's own arguments and its ROS arguments.

    Args:
        argv: the full command line (``sys.argv``, program name included); not modified.

    Returns:
        ``(non_ros_args, ros_args)``; ``non_ros_args`` keeps the original order.

    Raises:
        ParameterError: unknown flag inside ``--ros-args``, a flag without its value,
            or a malformed rule; the message quotes the offending argument.
    """
    builder = _RosArgsBuilder()
    handlers = builder.handlers()
    non_ros: list[str] = []
    in_ros_section = False
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if not in_ros_section:
            in_ros_section = arg == ROS_ARGS_FLAG
            if not in_ros_section:
                non_ros.append(arg)
        elif arg == ROS_ARGS_END:
            in_ros_section = False
        elif arg in handlers:
            if index >= len(argv):
                raise ParameterError(f"ROS argument '{arg}' at the end of the command "
                                     f"line has no value")
            handlers[arg](argv[index])
            index += 1
        elif arg != ROS_ARGS_FLAG and arg not in IGNORED_SWITCHES:
            raise ParameterError(f"unknown ROS argument '{arg}' after {ROS_ARGS_FLAG}; "
                                 f"known: {', '.join(sorted(handlers))}")
    return non_ros, builder.build()


# --------------------------------------------------------------------------- parameter files


def _read_yaml_file(path: str) -> Any:
    """Load one YAML document, turning I/O and syntax errors into ParameterError."""
    try:
        with open(path, encoding="utf-8") as stream:
            return _load_yaml(stream)
    except OSError as exc:
        raise ParameterError(f"parameters file '{path}' cannot be read: "
                             f"{exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameters file '{path}' is not valid YAML: {exc}") from exc


def _join_node_key(prefix: str, key: Any) -> str:
    """Join namespace levels of a parameter file into an absolute node key."""
    parts = [part for part in f"{prefix}/{key}".split("/") if part]
    return NAMESPACE_ROOT + "/".join(parts)


def _require_namespace_level(mapping: Mapping[Any, Any], node_key: str, path: str) -> None:
    """A mapping without ``ros__parameters`` must hold only nested node entries."""
    values = sorted(str(key) for key, value in mapping.items() if not isinstance(value, dict))
    if values:
        raise ParameterError(f"parameters file '{path}': entry '{node_key}' has no "
                             f"'{PARAMETERS_KEY}' section (found {', '.join(values)})")


def _collect_node_entries(mapping: Mapping[Any, Any], prefix: str,
                          path: str) -> list[tuple[str, Mapping[str, Any]]]:
    """List ``(node_key, ros__parameters)`` in file order; nested keys are namespaces."""
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in mapping.items():
        node_key = _join_node_key(prefix, key)
        if not isinstance(value, dict) or not value:
            raise ParameterError(f"parameters file '{path}': entry '{node_key}' has no "
                                 f"'{PARAMETERS_KEY}' section")
        if PARAMETERS_KEY not in value:
            _require_namespace_level(value, node_key, path)
            entries.extend(_collect_node_entries(value, node_key, path))
            continue
        extra = sorted(str(other) for other in value if other != PARAMETERS_KEY)
        if extra:
            raise ParameterError(f"parameters file '{path}': entry '{node_key}' has keys "
                                 f"{extra} beside '{PARAMETERS_KEY}'")
        parameters = value[PARAMETERS_KEY] or {}
        if not isinstance(parameters, dict):
            raise ParameterError(f"parameters file '{path}': '{node_key}.{PARAMETERS_KEY}' "
                                 f"must be a mapping, got {parameters!r}")
        entries.append((node_key, parameters))
    return entries


def _flatten(parameters: Mapping[Any, Any], prefix: str, culprit: str) -> dict[str, Any]:
    """Flatten nested parameter mappings into dotted names, checking every value."""
    flat: dict[str, Any] = {}
    for key, value in parameters.items():
        name = f"{prefix}{PARAM_NAME_SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, name, culprit))
        else:
            flat[name] = _check_value(value, f"{culprit}, parameter '{name}'")
    return flat


def _node_key_pattern(node_key: str) -> re.Pattern[str]:
    """Compile a node key as rclcpp does: ``/*`` is one name token, ``/**`` any number."""
    pieces = []
    for token in node_key.strip("/").split("/"):
        if token == WILDCARD_ANY:
            pieces.append(r"(?:/\w+)*")
        elif token == WILDCARD_ONE:
            pieces.append(r"/\w+")
        else:
            pieces.append("/" + re.escape(token))
    return re.compile("".join(pieces), re.ASCII)


def _node_key_matches(node_key: str, node_fqn: str) -> bool:
    """Whether a parameter-file node key (``node``, ``/ns/node``, wildcards) names the node."""
    return _node_key_pattern(_join_node_key("", node_key)).fullmatch(node_fqn) is not None


def _is_wildcard(node_key: str) -> bool:
    return WILDCARD_ONE in node_key


def _merge_by_specificity(entries: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge matching entries: wildcard keys first, then exact names; later wins in each."""
    merged: dict[str, Any] = {}
    for _key, values in sorted(entries, key=lambda entry: not _is_wildcard(entry[0])):
        merged.update(values)
    return merged


def load_params_file(path: str, node_fqn: str) -> dict[str, Any]:
    """Read the parameters a ROS 2 parameter file gives the node ``node_fqn``.

    Top-level keys are node names (``node`` is ``/node``; ``ns/node`` is
    ``/ns/node``), nested mappings without ``ros__parameters`` are namespaces,
    and ``*`` / ``**`` match one / any number of name tokens (``/**`` matches
    every node).  Entries whose key has a wildcard are applied before exact
    ones; within each group a later entry overrides an earlier one.

    Args:
        path: YAML file path.
        node_fqn: fully qualified node name, e.g. ``/robot/camera``.

    Returns:
        Flat ``{dotted.name: value}`` of the matching entries.

    Raises:
        ParameterError: unreadable file, bad YAML, a node entry without
            ``ros__parameters`` or an invalid value; the message names file and key.
    """
    document = _read_yaml_file(path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ParameterError(f"parameters file '{path}' must map node names to "
                             f"'{PARAMETERS_KEY}', got {type(document).__name__}")
    matching = []
    for node_key, parameters in _collect_node_entries(document, "", path):
        if _node_key_matches(node_key, node_fqn):
            culprit = f"parameters file '{path}', node '{node_key}'"
            matching.append((node_key, _flatten(parameters, "", culprit)))
    return _merge_by_specificity(matching)


# --------------------------------------------------------------------------- declared parameters


@dataclass(frozen=True)
class _ParamType:
    """A supported parameter annotation: a scalar type, optionally inside list/tuple."""

    scalar: type
    container: type | None = None

    @property
    def name(self) -> str:
        if self.container is None:
            return self.scalar.__name__
        return f"{self.container.__name__}[{self.scalar.__name__}]"


def _param_type(hint: Any, owner: str) -> _ParamType:
    """Interpret a field annotation: bool/int/float/str, list[X] or tuple[X, ...]."""
    if hint in SCALAR_TYPES:
        return _ParamType(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and len(args) == 1 and args[0] in SCALAR_TYPES:
        return _ParamType(args[0], list)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in SCALAR_TYPES:
        return _ParamType(args[0], tuple)
    raise TypeError(f"{owner} has unsupported parameter type {hint!r}")


def _spec_fields(spec: type) -> list[tuple[dataclasses.Field[Any], _ParamType]]:
    """The init fields of a parameter dataclass with their parameter types."""
    if not (isinstance(spec, type) and dataclasses.is_dataclass(spec)):
        raise TypeError(f"parameter spec must be a dataclass type, got {spec!r}")
    hints = typing.get_type_hints(spec)
    return [(spec_field, _param_type(hints[spec_field.name], f"field '{spec_field.name}'"))
            for spec_field in dataclasses.fields(spec) if spec_field.init]


def _ros_name(field_name: str) -> str:
    return field_name.replace(FIELD_NAME_SEPARATOR, PARAM_NAME_SEPARATOR)


def _default(spec_field: dataclasses.Field[Any]) -> Any:
    """The field's default value, or None for a required parameter."""
    if spec_field.default is not dataclasses.MISSING:
        return spec_field.default
    if spec_field.default_factory is not dataclasses.MISSING:
        return spec_field.default_factory()
    return None


def _is_required(spec_field: dataclasses.Field[Any]) -> bool:
    return (spec_field.default is dataclasses.MISSING
            and spec_field.default_factory is dataclasses.MISSING)


def _range(spec_field: dataclasses.Field[Any], kind: _ParamType) -> tuple[Any, Any] | None:
    """The field's declared inclusive bounds, checked for shape: only int and float scalars have one."""
    bounds = spec_field.metadata.get(RANGE_KEY)
    if bounds is None:
        return None
    numeric = kind.container is None and kind.scalar in (int, float)
    if not (numeric and isinstance(bounds, tuple) and len(bounds) == 2 and bounds[0] <= bounds[1]):
        raise TypeError(f"field '{spec_field.name}': metadata '{RANGE_KEY}' must be (low, high) with "
                        f"low <= high, on an int or float parameter; got {bounds!r} on {kind.name}")
    return bounds


def describe_parameters(spec: type) -> list[ParameterDescription]:
    """Document a node's declared parameters: ``(name, type, default, description, range)``.

    Descriptions come from ``field(metadata={"description": ...})`` and ranges from
    ``metadata={"range": (low, high)}``; the default of a required parameter is reported as None.
    """
    return [ParameterDescription(_ros_name(spec_field.name), kind.name, _default(spec_field),
                                 spec_field.metadata.get(DESCRIPTION_KEY, ""), _range(spec_field, kind))
            for spec_field, kind in _spec_fields(spec)]


def _check_range(name: str, value: Any, bounds: tuple[Any, Any] | None, node_fqn: str) -> None:
    """Refuse a value outside the declared inclusive bounds (the check rclpy makes on a set)."""
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ParameterError(f"parameter '{name}' for node {node_fqn} must be in "
                             f"[{bounds[0]}, {bounds[1]}], got {value!r}")


def _coerce_scalar(value: Any, scalar: type) -> Any:
    """Return ``value`` as ``scalar`` or raise TypeError; int may become float, bool never."""
    if isinstance(value, bool) != (scalar is bool):
        raise TypeError
    if scalar is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, scalar):
        raise TypeError
    return value


def _coerce(name: str, value: Any, kind: _ParamType, node_fqn: str) -> Any:
    """Check ``value`` against the declared type, raising ParameterError on mismatch."""
    try:
        if kind.container is None:
            return _coerce_scalar(value, kind.scalar)
        if not isinstance(value, list):
            raise TypeError
        return kind.container(_coerce_scalar(item, kind.scalar) for item in value)
    except TypeError:
        raise ParameterError(f"parameter '{name}' for node {node_fqn} expects {kind.name}, "
                             f"got {type(value).__name__} {value!r}") from None


def _command_line_params(params: Mapping[str, Any], node_fqn: str) -> dict[str, Any]:
    """``-p`` overrides for this node: unprefixed ones apply to all nodes (rcl's ``/**``)."""
    entries = []
    for key, value in params.items():
        prefixed = NODE_PREFIX.fullmatch(key)
        node_key, name = prefixed.groups() if prefixed else (WILDCARD_ANY, key)
        if _node_key_matches(node_key, node_fqn):
            entries.append((node_key, {name: value}))
    return _merge_by_specificity(entries)


def _overrides(ros_args: RosArgs, node_fqn: str) -> dict[str, Any]:
    """Merge parameter files (in order) and then ``-p`` rules for one node."""
    merged: dict[str, Any] = {}
    for path in ros_args.param_files:
        merged.update(load_params_file(path, node_fqn))
    merged.update(_command_line_params(ros_args.params, node_fqn))
    return merged


def resolve_parameters(spec: type[SpecT], ros_args: RosArgs, node_fqn: str) -> SpecT:
    """Build the node's parameter dataclass from defaults, files and ``-p`` rules.

    Args:
        spec: frozen dataclass type; each init field is a declared parameter whose
            type hint is bool, int, float, str, list[X] or tuple[X, ...] and whose
            ROS name is the field name with ``__`` read as ``.``.
        ros_args: parsed ROS arguments (see ``split_ros_args``).
        node_fqn: fully qualified node name used to select parameter-file entries.

    Returns:
        An instance of ``spec``.

    Raises:
        ParameterError: unknown parameter, type mismatch, a value outside its declared
            range, missing required parameter, bad file, or a ValueError raised by
            ``spec.__post_init__`` (its message kept).
    """
    fields = {_ros_name(spec_field.name): (spec_field, kind)
              for spec_field, kind in _spec_fields(spec)}
    values: dict[str, Any] = {}
    for name, value in _overrides(ros_args, node_fqn).items():
        if name not in fields:
            if name in IMPLICIT_PARAMETERS:
                continue
            raise ParameterError(f"unknown parameter '{name}' for node {node_fqn}; "
                                 f"declared: {', '.join(fields)}")
        spec_field, kind = fields[name]
        values[spec_field.name] = _coerce(name, value, kind, node_fqn)
        _check_range(name, values[spec_field.name], _range(spec_field, kind), node_fqn)
    missing = [name for name, (spec_field, _) in fields.items()
               if _is_required(spec_field) and spec_field.name not in values]
    if missing:
        raise ParameterError(f"parameter(s) {', '.join(missing)} for node {node_fqn} have "
                             f"no default and were not set")
    try:
        return spec(**values)
    except ValueError as exc:
        raise ParameterError(f"invalid parameters for node {node_fqn}: {exc}") from exc


# --------------------------------------------------------------------------- names


def _first_invalid_character(name: str, allowed: str) -> int | None:
    """Index of the first character that is neither a token character nor in ``allowed``."""
    for index, character in enumerate(name):
        if not TOKEN_CHARACTERS.fullmatch(character) and character not in allowed:
            return index
    return None


def validate_node_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid ROS 2 node name (``[A-Za-z_][A-Za-z0-9_]*``)."""
    if not name:
        raise ValueError("node name must not be empty")
    bad = _first_invalid_character(name, "")
    if bad is not None:
        raise ValueError(f"node name '{name}' contains '{name[bad]}' at index {bad}; "
                         f"only letters, digits and '_' are allowed")
    if name[0].isdigit():
        raise ValueError(f"node name '{name}' must not start with a digit")
    if len(name) > MAX_NODE_NAME_LENGTH:
        raise ValueError(f"node name '{name[:20]}...' is longer than {MAX_NODE_NAME_LENGTH}")


def _validate_absolute(name: str, what: str, max_length: int) -> None:
    """Shared rules of namespaces and fully qualified names."""
    if not name.startswith("/"):
        raise ValueError(f"{what} '{name}' must be absolute (start with '/')")
    bad = _first_invalid_character(name, "/")
    if bad is not None:
        raise ValueError(f"{what} '{name}' contains '{name[bad]}' at index {bad}; "
                         f"only letters, digits, '_' and '/' are allowed")
    if "//" in name:
        raise ValueError(f"{what} '{name}' contains a repeated '/'")
    if name != NAMESPACE_ROOT and name.endswith("/"):
        raise ValueError(f"{what} '{name}' must not end with '/'")
    for token in name.split("/"):
        if token[:1].isdigit():
            raise ValueError(f"{what} '{name}': token '{token}' must not start with a digit")
    if len(name) > max_length:
        raise ValueError(f"{what} '{name[:20]}...' is longer than {max_length}")


def validate_namespace(namespace: str) -> None:
    """Raise ValueError unless ``namespace`` is a valid absolute ROS 2 namespace."""
    if not namespace:
        raise ValueError("namespace must not be empty (use '/')")
    _validate_absolute(namespace, "namespace", MAX_NAMESPACE_LENGTH)


def _validate_relative_syntax(name: str) -> None:
    """Rules for a name before expansion: '~' only as '~' or '~/...', balanced braces."""
    if not name:
        raise ValueError("topic or service name must not be empty")
    if PRIVATE_PREFIX in name[1:] or (name[0] == PRIVATE_PREFIX and name[1:2] not in ("", "/")):
        raise ValueError(f"name '{name}': '~' is only allowed as '~' or a leading '~/'")
    outside_braces = SUBSTITUTION.sub("", name)
    if "{" in outside_braces or "}" in outside_braces:
        raise ValueError(f"name '{name}' has unbalanced '{{' or '}}'")
    if name[0].isdigit():
        raise ValueError(f"name '{name}' must not start with a digit")


def _substitute(name: str, namespace: str, node_name: str) -> str:
    """Replace ``{node}``, ``{ns}`` and ``{namespace}`` substitutions."""
    values = {"node": node_name, "ns": namespace, "namespace": namespace}

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ValueError(f"name '{name}' uses unknown substitution '{{{key}}}'")
        return values[key]

    return SUBSTITUTION.sub(replace, name)


def _normalize_namespace(namespace: str | None) -> str:
    """'' or None is the root namespace; a relative namespace is made absolute."""
    if not namespace:
        return NAMESPACE_ROOT
    return namespace if namespace.startswith("/") else "/" + namespace


def expand_topic_name(name: str, namespace: str, node_name: str) -> str:
    """Expand a topic or service name to its fully qualified form and validate it.

    ``chatter`` -> ``/ns/chatter``, ``~/x`` -> ``/ns/node/x``, ``/abs`` unchanged;
    ``{node}``/``{ns}`` substitutions are replaced.

    Raises:
        ValueError: the name, namespace or node name is invalid (message says why).
    """
    namespace = _normalize_namespace(namespace)
    validate_namespace(namespace)
    validate_node_name(node_name)
    _validate_relative_syntax(name)
    base = namespace.rstrip("/")
    if name.startswith(PRIVATE_PREFIX):
        name = f"{base}/{node_name}{name[1:]}"
    elif not name.startswith("/"):
        name = f"{base}/{name}"
    expanded = _substitute(name, namespace, node_name)
    _validate_absolute(expanded, "topic or service name", MAX_TOPIC_NAME_LENGTH)
    return expanded


def resolve_topic_name(name: str, namespace: str, node_name: str,
                       remaps: Mapping[str, str]) -> str:
    """Expand ``name`` for a node and apply the first matching remap rule.

    A rule ``from:=to`` matches when ``from``, expanded for the same node, equals
    the expanded name (so ``chatter``, ``/ns/chatter`` and ``~/x`` rules all work);
    a rule ``node:from:=to`` applies only to the node called ``node``.  The
    replacement is expanded for the node too.

    Raises:
        ValueError: an invalid name, namespace, node name or remap rule.
    """
    expanded = expand_topic_name(name, namespace, node_name)
    for source, replacement in remaps.items():
        prefixed = NODE_PREFIX.fullmatch(source)
        rule_node, match = prefixed.groups() if prefixed else (node_name, source)
        if rule_node != node_name:
            continue
        if _expand_rule_side(match, source, replacement, namespace, node_name) == expanded:
            return _expand_rule_side(replacement, source, replacement, namespace, node_name)
    return expanded


def _expand_rule_side(name: str, source: str, replacement: str, namespace: str,
                      node_name: str) -> str:
    """Expand one side of a remap rule, naming the rule if it is invalid."""
    try:
        return expand_topic_name(name, namespace, node_name)
    except ValueError as exc:
        raise ValueError(f"remap rule '{source}{ASSIGNMENT}{replacement}': {exc}") from exc
