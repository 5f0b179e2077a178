"""Tests for samrl_common.params: ROS 2 arguments, parameter files and names."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from samrl_common.params import (
    ParameterDescription,
    ParameterError,
    RosArgs,
    describe_parameters,
    expand_topic_name,
    load_params_file,
    resolve_parameters,
    resolve_topic_name,
    split_ros_args,
    validate_namespace,
    validate_node_name,
)

NODE_FQN = "/robot/camera"


@dataclass(frozen=True)
class CameraParams:
    """A node's declared parameters, as nodes define them."""

    rate_hz: float = field(default=30.0, metadata={"description": "publish rate [Hz]"})
    width: int = 640
    frame_id: str = "camera"
    enabled: bool = True
    image__encoding: str = field(default="rgb8", metadata={"description": "pixel format"})
    intrinsics: list[float] = field(default_factory=lambda: [1.0, 1.0])
    roi: tuple[int, ...] = (0, 0, 640, 480)
    topics: list[str] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rate_hz <= 0.0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")


@dataclass(frozen=True)
class RequiredParams:
    robot_ip: str
    gain: float = 1.0


def write_yaml(tmp_path: Path, text: str, name: str = "params.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# --------------------------------------------------------------------------- split_ros_args


def test_split_separates_program_args_from_ros_args() -> None:
    argv = ["prog", "--episodes", "3", "--ros-args", "-p", "rate_hz:=10.0", "--",
            "--seed", "1"]
    rest, ros = split_ros_args(argv)
    assert rest == ["prog", "--episodes", "3", "--seed", "1"]
    assert ros.params == {"rate_hz": 10.0}
    assert argv[3] == "--ros-args"  # input untouched


def test_split_without_ros_args_returns_empty_rosargs() -> None:
    rest, ros = split_ros_args(["prog", "--", "x"])
    assert rest == ["prog", "--", "x"]
    assert ros == RosArgs()


def test_split_handles_several_sections_and_trailing_section() -> None:
    argv = ["prog", "--ros-args", "-p", "a:=1", "--", "mid", "--ros-args",
            "--param", "b:=two", "--ros-args", "-r", "in:=out"]
    rest, ros = split_ros_args(argv)
    assert rest == ["prog", "mid"]
    assert ros.params == {"a": 1, "b": "two"}
    assert ros.remaps == {"in": "out"}


@pytest.mark.parametrize("text, expected", [
    ("42", 42), ("-1.5", -1.5), ("true", True), ("False", False), ("hello", "hello"),
    ("'42'", "42"), ("[1, 2, 3]", [1, 2, 3]), ("[0.5, 1.5]", [0.5, 1.5]),
    ("[a, b]", ["a", "b"]), ("[]", []), ("2024-01-01", "2024-01-01"),
])
def test_param_values_are_parsed_as_yaml(text: str, expected: object) -> None:
    _, ros = split_ros_args(["--ros-args", "-p", f"x:={text}"])
    assert ros.params["x"] == expected
    assert type(ros.params["x"]) is type(expected)


def test_later_param_rule_wins() -> None:
    _, ros = split_ros_args(["--ros-args", "-p", "x:=1", "-p", "x:=2"])
    assert ros.params == {"x": 2}


def test_remaps_node_name_namespace_files_and_log_level() -> None:
    argv = ["--ros-args", "-r", "__node:=cam", "-r", "__ns:=/robot/", "--remap",
            "image:=/raw", "-r", "cam:depth:=points", "--params-file", "a.yaml",
            "--params-file", "b.yaml", "--log-level", "WARNING"]
    _, ros = split_ros_args(argv)
    assert ros.node_name == "cam"
    assert ros.namespace == "/robot"
    assert ros.remaps == {"image": "/raw", "cam:depth": "points"}
    assert ros.param_files == ("a.yaml", "b.yaml")
    assert ros.log_level == "warn"


def test_first_remap_rule_wins_as_in_rcl() -> None:
    argv = ["--ros-args", "-r", "__name:=first", "-r", "__node:=second",
            "-r", "a:=b", "-r", "a:=c"]
    _, ros = split_ros_args(argv)
    assert ros.node_name == "first"
    assert ros.remaps == {"a": "b"}


def test_harmless_rcl_flags_are_accepted() -> None:
    argv = ["--ros-args", "--disable-rosout-logs", "--enable-stdout-logs",
            "-e", "/enclave", "--log-config-file", "log.cfg"]
    assert split_ros_args(argv)[1] == RosArgs()


@pytest.mark.parametrize("argv, culprit", [
    (["--ros-args", "--bogus"], "--bogus"),
    (["--ros-args", "-p", "rate_hz=3"], "rate_hz=3"),
    (["--ros-args", "-p"], "-p"),
    (["--ros-args", "-p", "bad name:=1"], "bad name"),
    (["--ros-args", "-p", "x:={a: 1}"], "x"),
    (["--ros-args", "-p", "x:=[1, a]"], "x"),
    (["--ros-args", "-p", "x:=[1"], "x"),
    (["--ros-args", "-r", "image"], "image"),
    (["--ros-args", "-r", "__node:=9lives"], "9lives"),
    (["--ros-args", "-r", "__ns:=relative"], "relative"),
    (["--ros-args", "-r", "cam:__node:=x"], "cam:__node:=x"),
    (["--ros-args", "--log-level", "loud"], "loud"),
    (["--ros-args", "--log-level", "rcl:=debug"], "rcl:=debug"),
    (["--ros-args", "--params-file"], "--params-file"),
])
def test_bad_ros_args_name_the_culprit(argv: list[str], culprit: str) -> None:
    with pytest.raises(ParameterError, match=culprit.replace("[", r"\[").replace("{", r"\{")):
        split_ros_args(argv)


# --------------------------------------------------------------------------- load_params_file


@pytest.mark.parametrize("key", ["/robot/camera", "robot/camera", "/**", "/**/camera",
                                 "/robot/*", "/*/camera", "/robot/**"])
def test_node_keys_that_match(tmp_path: Path, key: str) -> None:
    path = write_yaml(tmp_path, f"""
        "{key}":
          ros__parameters:
            width: 320
        """)
    assert load_params_file(path, NODE_FQN) == {"width": 320}


@pytest.mark.parametrize("key", ["camera", "/camera", "/other/camera", "*", "/*",
                                 "/robot/camera/extra"])
def test_node_keys_that_do_not_match(tmp_path: Path, key: str) -> None:
    path = write_yaml(tmp_path, f"""
        "{key}":
          ros__parameters:
            width: 320
        """)
    assert load_params_file(path, NODE_FQN) == {}


def test_single_star_matches_root_namespace_nodes(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
        "*":
          ros__parameters: {width: 1}
        """)
    assert load_params_file(path, "/camera") == {"width": 1}


def test_nested_namespaces_and_nested_parameters_flatten(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
        /robot:
          camera:
            ros__parameters:
              image:
                encoding: mono8
                size: {width: 2, height: 3}
              on: true
        """)
    assert load_params_file(path, NODE_FQN) == {
        "image.encoding": "mono8", "image.size.width": 2, "image.size.height": 3, "on": True}


def test_exact_entry_overrides_wildcard_regardless_of_order(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
        /robot/camera:
          ros__parameters: {width: 1, frame_id: exact}
        /**:
          ros__parameters: {width: 2, enabled: false}
        robot/camera:
          ros__parameters: {width: 3}
        """)
    assert load_params_file(path, NODE_FQN) == {"width": 3, "frame_id": "exact",
                                                "enabled": False}


def test_later_wildcard_entry_overrides_earlier_wildcard(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, """
        /**:
          ros__parameters: {width: 1}
        /**/camera:
          ros__parameters: {width: 2}
        """)
    assert load_params_file(path, NODE_FQN) == {"width": 2}


def test_empty_file_gives_no_parameters(tmp_path: Path) -> None:
    assert load_params_file(write_yaml(tmp_path, ""), NODE_FQN) == {}


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ParameterError, match="nope.yaml"):
        load_params_file(missing, NODE_FQN)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "camera: [unclosed\n", name="broken.yaml")
    with pytest.raises(ParameterError, match="broken.yaml.*not valid YAML"):
        load_params_file(path, NODE_FQN)


@pytest.mark.parametrize("text, key", [
    ("camera:\n  width: 3\n", "/camera"),
    ("/robot:\n  camera:\n    width: 3\n", "/robot/camera"),
    ("camera: 3\n", "/camera"),
    ("camera: {}\n", "/camera"),
])
def test_missing_ros_parameters_names_file_and_key(tmp_path: Path, text: str,
                                                   key: str) -> None:
    path = write_yaml(tmp_path, text, name="cfg.yaml")
    with pytest.raises(ParameterError, match=f"cfg.yaml.*'{key}'.*ros__parameters"):
        load_params_file(path, NODE_FQN)


def test_extra_key_beside_ros_parameters_is_rejected(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "camera:\n  ros__parameters: {}\n  width: 3\n",
                      name="cfg.yaml")
    with pytest.raises(ParameterError, match="cfg.yaml.*'/camera'.*width"):
        load_params_file(path, NODE_FQN)


def test_invalid_value_names_file_node_and_parameter(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "/**:\n  ros__parameters:\n    mixed: [1, a]\n",
                      name="cfg.yaml")
    with pytest.raises(ParameterError, match="cfg.yaml.*'/\\*\\*'.*'mixed'"):
        load_params_file(path, NODE_FQN)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="cfg.yaml"):
        load_params_file(write_yaml(tmp_path, "- a\n", name="cfg.yaml"), NODE_FQN)


# --------------------------------------------------------------------------- resolve_parameters


def ros_args(argv: list[str]) -> RosArgs:
    return split_ros_args(["prog", "--ros-args", *argv])[1]


def test_defaults_when_nothing_is_given() -> None:
    params = resolve_parameters(CameraParams, RosArgs(), NODE_FQN)
    assert params == CameraParams()


def test_precedence_defaults_then_files_in_order_then_command_line(tmp_path: Path) -> None:
    first = write_yaml(tmp_path, """
        /**:
          ros__parameters: {width: 1, frame_id: first, rate_hz: 5.0}
        """, name="first.yaml")
    second = write_yaml(tmp_path, """
        /robot/camera:
          ros__parameters: {width: 2}
        """, name="second.yaml")
    args = ros_args(["-p", "width:=3", "--params-file", first, "--params-file", second])
    params = resolve_parameters(CameraParams, args, NODE_FQN)
    assert (params.width, params.frame_id, params.rate_hz) == (3, "first", 5.0)
    assert params.enabled is True


def test_dotted_names_map_to_double_underscore_fields() -> None:
    params = resolve_parameters(CameraParams, ros_args(["-p", "image.encoding:=mono8"]),
                                NODE_FQN)
    assert params.image__encoding == "mono8"


def test_list_and_tuple_parameters() -> None:
    args = ros_args(["-p", "intrinsics:=[1, 2]", "-p", "roi:=[1, 2, 3, 4]",
                     "-p", "topics:=[a, b]", "-p", "flags:=[true, false]"])
    params = resolve_parameters(CameraParams, args, NODE_FQN)
    assert params.intrinsics == [1.0, 2.0] and all(type(v) is float for v in params.intrinsics)
    assert params.roi == (1, 2, 3, 4)
    assert params.topics == ["a", "b"] and params.flags == [True, False]


def test_int_is_promoted_to_float() -> None:
    params = resolve_parameters(CameraParams, ros_args(["-p", "rate_hz:=15"]), NODE_FQN)
    assert params.rate_hz == 15.0 and type(params.rate_hz) is float


def test_node_prefixed_command_line_params_apply_to_that_node_only() -> None:
    args = ros_args(["-p", "camera:width:=5", "-p", "other:width:=6"])
    assert resolve_parameters(CameraParams, args, "/camera").width == 5
    assert resolve_parameters(CameraParams, args, "/other").width == 6
    assert resolve_parameters(CameraParams, args, "/third").width == 640


def test_unknown_parameter_lists_the_declared_ones() -> None:
    with pytest.raises(ParameterError) as error:
        resolve_parameters(CameraParams, ros_args(["-p", "foo:=1"]), NODE_FQN)
    message = str(error.value)
    assert message.startswith("unknown parameter 'foo' for node /robot/camera; declared: ")
    assert "rate_hz, width, frame_id, enabled, image.encoding" in message


def test_use_sim_time_is_tolerated_when_not_declared(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "/**:\n  ros__parameters: {use_sim_time: true}\n")
    args = ros_args(["--params-file", path])
    assert resolve_parameters(CameraParams, args, NODE_FQN) == CameraParams()


@pytest.mark.parametrize("rule, expected", [
    ("width:=1.5", "'width'.*expects int, got float 1.5"),
    ("width:=true", "'width'.*expects int, got bool True"),
    ("enabled:=1", "'enabled'.*expects bool, got int 1"),
    ("rate_hz:=false", "'rate_hz'.*expects float, got bool False"),
    ("frame_id:=42", "'frame_id'.*expects str, got int 42"),
    ("intrinsics:=3.0", r"'intrinsics'.*expects list\[float\], got float 3.0"),
    ("roi:=[1.5]", r"'roi'.*expects tuple\[int\]"),
    ("flags:=[1, 0]", r"'flags'.*expects list\[bool\]"),
])
def test_type_mismatch_names_parameter_type_and_value(rule: str, expected: str) -> None:
    with pytest.raises(ParameterError, match=expected):
        resolve_parameters(CameraParams, ros_args(["-p", rule]), NODE_FQN)


def test_post_init_validation_becomes_parameter_error() -> None:
    with pytest.raises(ParameterError, match="/robot/camera.*rate_hz must be positive, got -1.0"):
        resolve_parameters(CameraParams, ros_args(["-p", "rate_hz:=-1.0"]), NODE_FQN)


def test_required_parameter_must_be_set() -> None:
    with pytest.raises(ParameterError, match="robot_ip.*no default"):
        resolve_parameters(RequiredParams, RosArgs(), "/driver")
    args = ros_args(["-p", "robot_ip:=10.0.0.2"])
    assert resolve_parameters(RequiredParams, args, "/driver").robot_ip == "10.0.0.2"


def test_file_errors_surface_from_resolve(tmp_path: Path) -> None:
    args = ros_args(["--params-file", str(tmp_path / "missing.yaml")])
    with pytest.raises(ParameterError, match="missing.yaml"):
        resolve_parameters(CameraParams, args, NODE_FQN)


def test_unsupported_spec_is_a_programming_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        mapping: dict[str, int] = field(default_factory=dict)

    with pytest.raises(TypeError, match="mapping"):
        resolve_parameters(Bad, RosArgs(), NODE_FQN)
    with pytest.raises(TypeError):
        describe_parameters(dict)


def test_describe_parameters() -> None:
    described = describe_parameters(CameraParams)
    assert described[0] == ParameterDescription("rate_hz", "float", 30.0, "publish rate [Hz]")
    assert described[4] == ParameterDescription("image.encoding", "str", "rgb8", "pixel format")
    assert described[5] == ("intrinsics", "list[float]", [1.0, 1.0], "", None)
    assert described[6].type == "tuple[int]"
    assert describe_parameters(RequiredParams)[0] == ("robot_ip", "str", None, "", None)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["talker", "_private", "cam2", "A_b_C"])
def test_valid_node_names(name: str) -> None:
    validate_node_name(name)


@pytest.mark.parametrize("name, reason", [
    ("", "empty"), ("2cam", "digit"), ("my-node", "'-' at index 2"), ("ns/node", "'/'"),
    ("x" * 256, "longer"),
])
def test_invalid_node_names(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_node_name(name)


@pytest.mark.parametrize("namespace", ["/", "/robot", "/robot/arm_1"])
def test_valid_namespaces(namespace: str) -> None:
    validate_namespace(namespace)


@pytest.mark.parametrize("namespace, reason", [
    ("", "empty"), ("robot", "absolute"), ("/robot/", "end with"), ("//robot", "repeated"),
    ("/robot/1arm", "'1arm'"), ("/ro bot", "' ' at index 3"), ("/" + "x" * 250, "longer"),
])
def test_invalid_namespaces(namespace: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_namespace(namespace)


@pytest.mark.parametrize("name, namespace, expected", [
    ("chatter", "/ns", "/ns/chatter"),
    ("chatter", "/", "/chatter"),
    ("chatter", "", "/chatter"),
    ("a/b", "/ns/sub", "/ns/sub/a/b"),
    ("~/state", "/ns", "/ns/talker/state"),
    ("~/state", "/", "/talker/state"),
    ("~", "/ns", "/ns/talker"),
    ("/abs/topic", "/ns", "/abs/topic"),
    ("{node}/out", "/ns", "/ns/talker/out"),
])
def test_expand_topic_name(name: str, namespace: str, expected: str) -> None:
    assert expand_topic_name(name, namespace, "talker") == expected


@pytest.mark.parametrize("name, reason", [
    ("", "empty"), ("chat-ter", "'-'"), ("1chatter", "digit"), ("a//b", "repeated"),
    ("chatter/", "end with"), ("~state", "'~'"), ("a/~/b", "'~'"), ("a/2b", "'2b'"),
    ("{node", "unbalanced"), ("{robot}/x", "unknown substitution"),
])
def test_invalid_topic_names(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        resolve_topic_name(name, "/ns", "talker", {})


def test_invalid_node_or_namespace_in_resolution() -> None:
    with pytest.raises(ValueError, match="node name"):
        resolve_topic_name("x", "/ns", "bad-node", {})
    with pytest.raises(ValueError, match="namespace"):
        resolve_topic_name("x", "/ns/", "talker", {})


@pytest.mark.parametrize("rule_from, name", [
    ("chatter", "chatter"),          # same given name
    ("/ns/chatter", "chatter"),      # absolute rule, relative use
    ("chatter", "/ns/chatter"),      # relative rule, absolute use
    ("~/chatter", "/ns/talker/chatter"),
    ("talker:chatter", "chatter"),   # node-specific rule for this node
])
def test_remap_matches_given_or_expanded_name(rule_from: str, name: str) -> None:
    assert resolve_topic_name(name, "/ns", "talker", {rule_from: "/remapped"}) == "/remapped"


def test_remap_replacement_is_expanded_and_first_match_wins() -> None:
    remaps = {"other": "/x", "image": "~/image_raw", "/ns/image": "/late"}
    assert resolve_topic_name("image", "/ns", "cam", remaps) == "/ns/cam/image_raw"


def test_remap_for_other_node_or_name_does_not_apply() -> None:
    remaps = {"listener:chatter": "/x", "chat": "/y"}
    assert resolve_topic_name("chatter", "/ns", "talker", remaps) == "/ns/chatter"


def test_invalid_remap_rule_is_named() -> None:
    with pytest.raises(ValueError, match="remap rule 'chatter:=bad-name'"):
        resolve_topic_name("chatter", "/", "talker", {"chatter": "bad-name"})
