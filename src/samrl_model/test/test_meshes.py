"""Meshes match the PyBullet bodies: closed, outward, the specs' sizes, PyBullet's frames and thread chain."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pybullet as pb
import pytest
import torch

from samrl_description.geometry import axis_angle_to_quat, quat_to_matrix
from samrl_description.objects import SceneObjects
from samrl_model.meshes import OBJECT_NAMES, object_mesh, table_pose, thread_link_poses
from samrl_model.rotations import axis_angle_matrix, pose_matrix_from_quat
from samrl_sim import bodies

SPECS = SceneObjects()
LENGTH_TOLERANCE_M = 1e-6
POSE_TOLERANCE = 1e-6


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (m^3), positive for outward-wound closed meshes (divergence theorem)."""
    a, b, c = (vertices[faces[:, i]].astype(float) for i in range(3))
    return float(np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0)


@pytest.mark.parametrize('name', OBJECT_NAMES)
def test_mesh_is_closed_and_outward(name):
    mesh = object_mesh(name)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32
    directed = Counter((int(f[i]), int(f[(i + 1) % 3])) for f in mesh.faces for i in range(3))
    # Closed and consistently wound: every directed edge once, and its reverse once.
    assert all(count == 1 and directed[(b, a)] == 1 for (a, b), count in directed.items())
    assert signed_volume(mesh.vertices, mesh.faces) > 0.0


def test_box_volumes_and_sizes_match_specs():
    peg, block = SPECS.peg, SPECS.hole_block
    peg_mesh = object_mesh('peg')
    assert np.allclose(peg_mesh.extent_m, [peg.side_m, peg.side_m, peg.length_m], atol=LENGTH_TOLERANCE_M)
    assert signed_volume(peg_mesh.vertices, peg_mesh.faces) == pytest.approx(peg.side_m ** 2 * peg.length_m)
    block_mesh = object_mesh('hole_block')
    hole = block.hole_side_m(peg)
    assert np.allclose(block_mesh.extent_m, [block.outer_side_m, block.outer_side_m, block.height_m])
    assert signed_volume(block_mesh.vertices, block_mesh.faces) == pytest.approx(
        (block.outer_side_m ** 2 - hole ** 2) * block.height_m, rel=1e-5)
    assert np.isclose(np.abs(block_mesh.vertices[:, 0]).min(), 0.5 * hole, atol=LENGTH_TOLERANCE_M)


def test_other_sizes_match_specs():
    needle, spatula, pancake = SPECS.needle, SPECS.spatula, SPECS.pancake
    ring = needle.eye_opening_m + 2 * needle.eye_bar_m
    height = needle.shaft_height_m + needle.eye_opening_m + needle.eye_bar_m   # the shaft closes the eye below
    assert np.allclose(object_mesh('needle').extent_m, [needle.thickness_m, ring, height], atol=LENGTH_TOLERANCE_M)
    assert np.allclose(object_mesh('spatula').extent_m,
                       [spatula.blade_length_m + 0.5 * spatula.handle_thickness_m, spatula.blade_width_m,
                        spatula.handle_length_m + 0.5 * spatula.blade_thickness_m], atol=LENGTH_TOLERANCE_M)
    assert np.allclose(object_mesh('pancake').extent_m, [2 * pancake.visual_radius_m, 2 * pancake.visual_radius_m,
                                                         pancake.thickness_m], atol=LENGTH_TOLERANCE_M)
    table = object_mesh('table')
    position, _ = table_pose(SPECS.table)
    assert np.isclose((table.vertices[:, 2] + position[2]).max(), 0.0)   # top face on z = 0


def test_straight_thread_has_spec_length():
    spec = SPECS.thread
    mesh = object_mesh('thread')
    poses = thread_link_poses(torch.zeros(spec.tip_links + spec.tail_links), torch.eye(4, dtype=torch.float64))
    local = torch.as_tensor(mesh.vertices, dtype=torch.float64)
    links = poses[mesh.link_of_vertex]
    world = (links[:, :3, :3] @ local.unsqueeze(-1)).squeeze(-1) + links[:, :3, 3]
    expected = (1 + spec.tip_links + spec.tail_links) * spec.segment_length_m + 2 * spec.radius_m
    assert np.allclose(np.ptp(world.numpy(), axis=0), [expected, 2 * spec.radius_m, 2 * spec.radius_m], atol=1e-4)


@pytest.fixture()
def client():
    client = pb.connect(pb.DIRECT)
    yield client
    pb.disconnect(client)


def test_thread_link_poses_match_pybullet(client):
    spec = SPECS.thread
    rng = np.random.default_rng(3)
    body = bodies.create_thread(client, spec)
    base_position, base_quat = rng.uniform(-0.5, 0.5, 3), axis_angle_to_quat(rng.uniform(-1.0, 1.0, 3))
    angles = rng.uniform(-0.6, 0.6, spec.tip_links + spec.tail_links)
    pb.resetBasePositionAndOrientation(body, base_position, base_quat, physicsClientId=client)
    for joint, angle in enumerate(angles):
        pb.resetJointState(body, joint, float(angle), physicsClientId=client)
    poses = thread_link_poses(torch.tensor(angles), pose_matrix_from_quat(base_position, base_quat)).numpy()
    for link in range(len(angles)):
        state = pb.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=client)
        assert np.allclose(poses[link + 1, :3, 3], state[4], atol=POSE_TOLERANCE)
        assert np.allclose(poses[link + 1, :3, :3], quat_to_matrix(np.array(state[5])), atol=POSE_TOLERANCE)


def test_thread_link_poses_are_differentiable():
    spec = SPECS.thread
    n = spec.tip_links + spec.tail_links
    angles = torch.full((n,), 0.1, dtype=torch.float64, requires_grad=True)

    def tip(a: torch.Tensor) -> torch.Tensor:
        return thread_link_poses(a, torch.eye(4, dtype=torch.float64))[spec.tip_links, :3, 3]
    assert torch.autograd.gradcheck(tip, (angles,))


@pytest.mark.parametrize('create', [lambda c: bodies.create_peg(c, SPECS.peg),
                                    lambda c: bodies.create_hole_block(c, SPECS.hole_block, SPECS.peg),
                                    lambda c: bodies.create_needle(c, SPECS.needle),
                                    lambda c: bodies.create_thread(c, SPECS.thread),
                                    lambda c: bodies.create_spatula(c, SPECS.spatula),
                                    lambda c: bodies.create_pancake(c, SPECS.pancake)])
def test_pybullet_reports_the_mesh_frame(client, create):
    """getBasePositionAndOrientation reports the inertial frame; for these bodies it is the base frame."""
    body = create(client)
    inertial_position, inertial_quat = pb.getDynamicsInfo(body, -1, physicsClientId=client)[3:5]
    assert np.allclose(inertial_position, 0.0) and np.allclose(inertial_quat, [0, 0, 0, 1])


def test_axis_angle_matrix_matches_quaternions_and_is_smooth_at_zero():
    rotvec = np.array([0.3, -0.2, 0.9])
    matrix = axis_angle_matrix(torch.tensor(rotvec)).numpy()
    assert np.allclose(matrix, quat_to_matrix(axis_angle_to_quat(rotvec)), atol=1e-12)
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    axis_angle_matrix(zero)[1, 0].backward()      # d R_yx / d r_z = 1 at the identity
    assert torch.allclose(zero.grad, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
