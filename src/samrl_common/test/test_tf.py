"""Tests for samrl_common.tf's TransformBuffer and the pose maths it relies on (samrl_description.geometry)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samrl_common.tf import (
    ConnectivityError,
    ExtrapolationError,
    FrameNotFoundError,
    TransformBuffer,
    TransformError,
)
from samrl_description.geometry import (
    Pose,
    interpolate,
    matrix_to_quat,
    quat_conjugate,
    quat_multiply,
    quat_to_matrix,
    slerp,
)

SEED = 7
IDENTITY_Q = np.array([0.0, 0.0, 0.0, 1.0])


def axis_angle(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    """xyzw quaternion of a rotation by ``angle`` rad about ``axis``."""
    unit = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    return np.array([*(unit * math.sin(angle / 2.0)), math.cos(angle / 2.0)])


def random_transform(rng: np.random.Generator) -> Pose:
    return Pose.checked(rng.normal(size=3), rng.normal(size=4))


def same_rotation(q1: np.ndarray, q2: np.ndarray) -> bool:
    return np.allclose(q1, q2) or np.allclose(q1, -q2)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


# --------------------------------------------------------------------------- quaternions


def test_quat_multiply_identity_and_conjugate(rng: np.random.Generator) -> None:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    assert np.allclose(quat_multiply(q, IDENTITY_Q), q)
    assert np.allclose(quat_multiply(IDENTITY_Q, q), q)
    assert np.allclose(quat_multiply(q, quat_conjugate(q)), IDENTITY_Q)


def test_quat_multiply_matches_matrix_product(rng: np.random.Generator) -> None:
    q1, q2 = rng.normal(size=4), rng.normal(size=4)
    product = quat_to_matrix(quat_multiply(q1, q2))
    assert np.allclose(product, quat_to_matrix(q1) @ quat_to_matrix(q2))


def test_quat_to_matrix_quarter_turn_about_z() -> None:
    rotation = quat_to_matrix(axis_angle((0, 0, 1), math.pi / 2))
    assert np.allclose(rotation @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])


@pytest.mark.parametrize("axis, angle", [
    ((0, 0, 1), 0.3), ((1, 0, 0), math.pi), ((0, 1, 0), math.pi), ((0, 0, 1), math.pi),
    ((1, 1, 0), 2.9), ((1, -2, 3), 0.0),
])
def test_matrix_to_quat_round_trip_every_pivot(axis: tuple[float, float, float],
                                               angle: float) -> None:
    q = axis_angle(axis, angle)
    assert same_rotation(matrix_to_quat(quat_to_matrix(q)), q)


def test_matrix_to_quat_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="3x3"):
        matrix_to_quat(np.eye(4))


def test_slerp_endpoints_and_midpoint() -> None:
    start, end = IDENTITY_Q, axis_angle((0, 0, 1), math.pi / 2)
    assert same_rotation(slerp(start, end, 0.0), start)
    assert same_rotation(slerp(start, end, 1.0), end)
    assert same_rotation(slerp(start, end, 0.5), axis_angle((0, 0, 1), math.pi / 4))


def test_slerp_takes_the_shortest_path() -> None:
    start, end = IDENTITY_Q, axis_angle((0, 0, 1), math.pi / 2)
    assert same_rotation(slerp(start, -end, 0.5), axis_angle((0, 0, 1), math.pi / 4))


def test_slerp_of_nearly_equal_quaternions_is_unit() -> None:
    q = slerp(IDENTITY_Q, axis_angle((1, 0, 0), 1e-8), 0.5)
    assert math.isclose(np.linalg.norm(q), 1.0)


# --------------------------------------------------------------------------- Pose


def test_transform_normalizes_and_is_read_only() -> None:
    translation = [1.0, 2.0, 3.0]
    transform = Pose.checked(translation, [0.0, 0.0, 0.0, 2.0])
    assert np.allclose(transform.quaternion, IDENTITY_Q)
    translation[0] = 99.0
    assert transform.position[0] == 1.0
    with pytest.raises(ValueError):
        transform.position[0] = 5.0


@pytest.mark.parametrize("translation, rotation, message", [
    ([0, 0], IDENTITY_Q, "position"), ([0, 0, math.nan], IDENTITY_Q, "position"),
    ([0, 0, 0], [0, 0, 0, 0], "zero norm"), ([0, 0, 0], [0, 0, 1], "quaternion"),
])
def test_transform_rejects_bad_input(translation: list[float], rotation: list[float],
                                     message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pose.checked(np.asarray(translation, dtype=float), np.asarray(rotation, dtype=float))


def test_identity_leaves_points_alone(rng: np.random.Generator) -> None:
    points = rng.normal(size=(5, 3))
    assert np.allclose(Pose.identity().apply(points), points)


def test_composition_applies_right_then_left(rng: np.random.Generator) -> None:
    a, b = random_transform(rng), random_transform(rng)
    point = rng.normal(size=3)
    assert np.allclose((a * b).apply(point), a.apply(b.apply(point)))


def test_composition_is_associative(rng: np.random.Generator) -> None:
    a, b, c = (random_transform(rng) for _ in range(3))
    assert ((a * b) * c).is_close(a * (b * c))


def test_inverse_identities(rng: np.random.Generator) -> None:
    a, b = random_transform(rng), random_transform(rng)
    assert (a * a.inverse()).is_close(Pose.identity())
    assert (a.inverse() * a).is_close(Pose.identity())
    assert (a * b).inverse().is_close(b.inverse() * a.inverse())


def test_apply_single_point_and_batch(rng: np.random.Generator) -> None:
    transform = Pose.checked([1.0, 0.0, 0.0], axis_angle((0, 0, 1), math.pi / 2))
    assert np.allclose(transform.apply([1.0, 0.0, 0.0]), [1.0, 1.0, 0.0])
    points = rng.normal(size=(4, 3))
    batch = transform.apply(points)
    assert batch.shape == (4, 3)
    assert np.allclose(batch[2], transform.apply(points[2]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        transform.apply(np.zeros((3, 2)))


def test_matrix_round_trip(rng: np.random.Generator) -> None:
    transform = random_transform(rng)
    matrix = transform.as_matrix()
    point = rng.normal(size=3)
    assert np.allclose(matrix @ [*point, 1.0], [*transform.apply(point), 1.0])
    assert Pose.from_matrix(matrix).is_close(transform)


@pytest.mark.parametrize("matrix", [
    np.eye(3), np.diag([1.0, 1.0, -1.0, 1.0]), np.diag([2.0, 1.0, 1.0, 1.0]),
    np.vstack([np.eye(4)[:3], [0.0, 0.0, 1.0, 1.0]]),
])
def test_from_matrix_rejects_non_rigid(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError):
        Pose.from_matrix(matrix)


def test_interpolate_midpoint() -> None:
    start = Pose.checked([0.0, 0.0, 0.0], IDENTITY_Q)
    end = Pose.checked([2.0, 4.0, 0.0], axis_angle((0, 0, 1), math.pi / 2))
    middle = interpolate(start, end, 0.5)
    assert np.allclose(middle.position, [1.0, 2.0, 0.0])
    assert same_rotation(middle.quaternion, axis_angle((0, 0, 1), math.pi / 4))


# --------------------------------------------------------------------------- buffer


def translation(x: float, y: float = 0.0, z: float = 0.0) -> Pose:
    return Pose.checked([x, y, z], IDENTITY_Q)


@pytest.fixture
def tree(rng: np.random.Generator) -> tuple[TransformBuffer, dict[str, Pose]]:
    """world -> a -> b and world -> c, each dynamic with one sample at t = 1."""
    links = {name: random_transform(rng) for name in ("a", "b", "c")}
    buffer = TransformBuffer()
    buffer.set_transform("world", "a", 1.0, links["a"])
    buffer.set_transform("a", "b", 1.0, links["b"])
    buffer.set_transform("world", "c", 1.0, links["c"])
    return buffer, links


def test_lookup_parent_from_child_is_the_stored_transform(tree) -> None:
    buffer, links = tree
    assert buffer.lookup("world", "a", 1.0).is_close(links["a"])
    assert buffer.lookup("a", "world").is_close(links["a"].inverse())


def test_lookup_walks_through_the_common_ancestor(tree) -> None:
    buffer, links = tree
    expected = links["c"].inverse() * links["a"] * links["b"]
    c_from_b = buffer.lookup("c", "b")
    assert c_from_b.is_close(expected)
    assert buffer.lookup("b", "c").is_close(expected.inverse())
    point_in_b = np.array([0.3, -0.2, 0.5])
    point_in_world = links["a"].apply(links["b"].apply(point_in_b))
    assert np.allclose(links["c"].apply(c_from_b.apply(point_in_b)), point_in_world)


def test_lookup_ancestor_descendant_in_both_directions(tree) -> None:
    buffer, links = tree
    assert buffer.lookup("world", "b").is_close(links["a"] * links["b"])
    assert buffer.lookup("b", "world").is_close((links["a"] * links["b"]).inverse())


def test_lookup_of_frame_in_itself_is_identity(tree) -> None:
    buffer, _ = tree
    assert buffer.lookup("b", "b", 123.0).is_close(Pose.identity())


def test_interpolation_at_midpoint() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("world", "robot", 0.0, Pose.checked([0, 0, 0], IDENTITY_Q))
    buffer.set_transform("world", "robot", 2.0,
                         Pose.checked([2, 0, 4], axis_angle((0, 0, 1), math.pi / 2)))
    middle = buffer.lookup("world", "robot", 1.0)
    assert np.allclose(middle.position, [1.0, 0.0, 2.0])
    assert same_rotation(middle.quaternion, axis_angle((0, 0, 1), math.pi / 4))
    quarter = buffer.lookup("world", "robot", 0.5)
    assert np.allclose(quarter.position, [0.5, 0.0, 1.0])


def test_samples_may_arrive_out_of_order_and_be_replaced() -> None:
    buffer = TransformBuffer()
    for stamp in (3.0, 1.0, 2.0):
        buffer.set_transform("world", "robot", stamp, translation(stamp))
    buffer.set_transform("world", "robot", 2.0, translation(20.0))
    assert np.allclose(buffer.lookup("world", "robot", 2.0).position, [20.0, 0.0, 0.0])
    assert np.allclose(buffer.lookup("world", "robot", 1.5).position, [10.5, 0.0, 0.0])


@pytest.mark.parametrize("latest", [None, 0.0])
def test_latest_time_is_the_newest_time_common_to_the_path(latest: float | None) -> None:
    buffer = TransformBuffer()
    for stamp in (1.0, 2.0, 3.0):
        buffer.set_transform("world", "base", stamp, translation(stamp))
    for stamp in (1.0, 2.0):
        buffer.set_transform("base", "camera", stamp, translation(0.0, stamp))
    assert np.allclose(buffer.lookup("world", "camera", latest).position, [2.0, 2.0, 0.0])
    assert np.allclose(buffer.lookup("world", "base", latest).position, [3.0, 0.0, 0.0])


def test_static_links_are_valid_at_every_time() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("base", "camera", 0.0, translation(0.0, 0.0, 1.0), static=True)
    buffer.set_transform("base", "lidar", 0.0, translation(0.0, 1.0), static=True)
    for time in (None, -5.0, 1e6):
        assert np.allclose(buffer.lookup("lidar", "camera", time).position, [0, -1, 1])


def test_static_and_dynamic_links_mix() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("base", "camera", 0.0, translation(0.0, 0.0, 1.0), static=True)
    buffer.set_transform("world", "base", 10.0, translation(0.0))
    buffer.set_transform("world", "base", 12.0, translation(2.0))
    assert np.allclose(buffer.lookup("world", "camera", 11.0).position, [1.0, 0.0, 1.0])
    assert np.allclose(buffer.lookup("world", "camera").position, [2.0, 0.0, 1.0])
    with pytest.raises(ExtrapolationError):
        buffer.lookup("world", "camera", 13.0)


def test_static_link_is_replaced_by_a_new_static_transform() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("base", "camera", 0.0, translation(1.0), static=True)
    buffer.set_transform("base", "camera", 5.0, translation(2.0), static=True)
    assert np.allclose(buffer.lookup("base", "camera", 1.0).position, [2.0, 0.0, 0.0])


def test_single_sample_is_valid_only_at_its_stamp() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("world", "robot", 4.0, translation(1.0))
    assert buffer.can_transform("world", "robot", 4.0)
    assert buffer.can_transform("world", "robot")
    assert not buffer.can_transform("world", "robot", 4.5)


def test_old_samples_are_pruned() -> None:
    buffer = TransformBuffer(cache_time_s=1.0)
    for stamp in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0):
        buffer.set_transform("world", "robot", stamp, translation(stamp))
    assert buffer.can_transform("world", "robot", 4.0)
    with pytest.raises(ExtrapolationError, match=r"\[4\.000000, 5\.000000\]"):
        buffer.lookup("world", "robot", 3.5)


def test_frames_are_listed_sorted(tree) -> None:
    buffer, _ = tree
    assert buffer.frames() == ["a", "b", "c", "world"]
    assert TransformBuffer().frames() == []


# --------------------------------------------------------------------------- errors


def test_errors_are_lookup_errors() -> None:
    for error in (FrameNotFoundError, ConnectivityError, ExtrapolationError):
        assert issubclass(error, TransformError) and issubclass(error, LookupError)


def test_unknown_frame_names_it_and_lists_known_frames(tree) -> None:
    buffer, _ = tree
    with pytest.raises(FrameNotFoundError, match="'gripper'.*known frames: a, b, c, world"):
        buffer.lookup("world", "gripper")
    with pytest.raises(FrameNotFoundError, match="leading '/'"):
        buffer.lookup("/world", "a")
    with pytest.raises(FrameNotFoundError, match=r"known frames: \(none\)"):
        TransformBuffer().lookup("a", "a")


def test_separate_trees_raise_connectivity_error(tree) -> None:
    buffer, _ = tree
    buffer.set_transform("map", "odom", 1.0, translation(1.0))
    with pytest.raises(ConnectivityError, match="'odom'.*'b'.*'map'.*'world'"):
        buffer.lookup("odom", "b")
    assert not buffer.can_transform("odom", "b")


def test_extrapolation_message_gives_link_time_and_range() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("world", "robot", 1.0, translation(0.0))
    buffer.set_transform("world", "robot", 2.0, translation(1.0))
    with pytest.raises(ExtrapolationError, match=r"future.*'world' -> 'robot'.*"
                                                 r"\[1\.000000, 2\.000000\].*2\.500000"):
        buffer.lookup("world", "robot", 2.5)
    with pytest.raises(ExtrapolationError, match=r"past.*0\.500000"):
        buffer.lookup("robot", "world", 0.5)


def test_latest_time_without_overlap_is_an_extrapolation_error() -> None:
    buffer = TransformBuffer()
    buffer.set_transform("world", "base", 10.0, translation(0.0))
    buffer.set_transform("base", "arm", 1.0, translation(0.0))
    buffer.set_transform("base", "arm", 2.0, translation(0.0))
    with pytest.raises(ExtrapolationError, match="'world' -> 'base'"):
        buffer.lookup("world", "arm")


def test_a_newer_sample_under_another_parent_reparents_the_frame(tree) -> None:
    """tf2 lets a frame change parent; a stale sample under another parent is refused, and one that
    would close a cycle too, so a first wrong message cannot lock the frame out."""
    buffer, links = tree
    with pytest.raises(ValueError, match="'b' has parent 'a' up to 1.000000 s"):
        buffer.set_transform("c", "b", 1.0, translation(0.0))
    with pytest.raises(ValueError, match="cycle"):
        buffer.set_transform("b", "a", 2.0, translation(0.0))
    buffer.set_transform("c", "b", 2.0, translation(1.0))
    assert buffer.lookup("c", "b", 2.0).is_close(translation(1.0))
    assert buffer.lookup("world", "a", 1.0).is_close(links["a"])     # the old parent keeps its own link


def test_samples_older_than_the_cache_are_refused() -> None:
    buffer = TransformBuffer(cache_time_s=1.0)
    buffer.set_transform("world", "a", 10.0, translation(1.0))
    with pytest.raises(ValueError, match="older than the buffer keeps"):
        buffer.set_transform("world", "a", 8.5, translation(2.0))
    assert buffer.lookup("world", "a").is_close(translation(1.0))


def test_switching_static_and_dynamic_is_rejected(tree) -> None:
    buffer, _ = tree
    with pytest.raises(ValueError, match="'world' -> 'a' is dynamic"):
        buffer.set_transform("world", "a", 2.0, translation(0.0), static=True)


@pytest.mark.parametrize("parent, child, match", [
    ("b", "world", "cycle"), ("b", "b", "own parent"), ("", "x", "non-empty"),
    ("/world", "x", "leading|start with '/'"),
])
def test_invalid_links_are_rejected(tree, parent: str, child: str, match: str) -> None:
    buffer, _ = tree
    with pytest.raises(ValueError, match=match):
        buffer.set_transform(parent, child, 1.0, translation(0.0))


def test_invalid_stamp_transform_or_cache_time() -> None:
    buffer = TransformBuffer()
    with pytest.raises(ValueError, match="finite"):
        buffer.set_transform("world", "a", math.nan, translation(0.0))
    with pytest.raises(TypeError, match="Pose"):
        buffer.set_transform("world", "a", 1.0, np.eye(4))
    with pytest.raises(ValueError, match="cache_time_s"):
        TransformBuffer(cache_time_s=0.0)
