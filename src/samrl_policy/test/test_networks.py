"""The actor and Q networks: shapes, bounds, input scaling, and the gradient the view step needs.

The view step (Eqs. 7 and 10) differentiates Q(I(P), pi(I(P))) with respect to the camera pose P
through both networks and the renderer; here the toy renderer stands in for M's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_toys import PROPRIO_DIM, SMALL_NETWORK, ToyEnv, ToyViews  # noqa: E402

from samrl_description.camera import CameraIntrinsics  # noqa: E402
from samrl_policy.interfaces import ACTION_DIM, DEPTH_CHANNEL  # noqa: E402
from samrl_policy.networks import (  # noqa: E402
    DEPTH_FAR_M,
    DEPTH_NEAR_M,
    IMAGE_PX,
    Actor,
    NetworkConfig,
    QNetwork,
    camera_to_world,
    constant_actions,
    optical_points,
    scale_image,
    soft_argmax,
)

BATCH = 4
KEYPOINTS = NetworkConfig(proprio_dim=PROPRIO_DIM)      # the default encoder (SMALL_NETWORK is pooled)
MODEL_PROPRIO_DIM = 19                                  # model_env.PROPRIO_SIZE: the camera pose is in it


@pytest.fixture(autouse=True)
def seeded():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _inputs(batch: int = BATCH, px: int = IMAGE_PX, requires_grad: bool = False):
    image = torch.rand(batch, 5, px, px)
    image[:, DEPTH_CHANNEL] = 0.3 + 1.2 * image[:, DEPTH_CHANNEL]
    return image.requires_grad_(requires_grad), torch.randn(batch, PROPRIO_DIM)


@pytest.mark.parametrize('encoder', ['keypoints', 'world_keypoints', 'tool_keypoints', 'pooled'])
@pytest.mark.parametrize('px', [32, IMAGE_PX])
def test_the_actor_gives_bounded_actions_and_q_one_value_per_sample(px, encoder):
    config = NetworkConfig(proprio_dim=MODEL_PROPRIO_DIM, encoder=encoder)
    image, _ = _inputs(px=px)
    proprio = torch.randn(BATCH, MODEL_PROPRIO_DIM)
    action = Actor(config)(image, proprio)
    assert action.shape == (BATCH, ACTION_DIM) and action.abs().max() <= 1.0
    assert QNetwork(config)(image, proprio, action).shape == (BATCH,)


def test_images_of_another_shape_are_refused_clearly():
    with pytest.raises(ValueError, match=r'expected images of shape \(N, 5, H, W\)'):
        Actor(SMALL_NETWORK)(torch.rand(2, 3, 32, 32), torch.zeros(2, PROPRIO_DIM))


def test_every_channel_is_scaled_to_about_minus_one_one_and_depth_clamped_to_its_range():
    image = torch.zeros(1, 5, 1, 4)
    image[0, :, 0, 1] = 1.0
    image[0, DEPTH_CHANNEL, 0] = torch.tensor([DEPTH_NEAR_M, DEPTH_FAR_M, 10.0, 0.0])
    scaled = scale_image(image, DEPTH_NEAR_M, DEPTH_FAR_M)[0, :, 0]
    assert torch.equal(scaled[DEPTH_CHANNEL], torch.tensor([-1.0, 1.0, 1.0, 1.0]))     # 0: nothing hit, far
    assert torch.equal(scaled[0], torch.tensor([-1.0, 1.0, -1.0, -1.0]))


def test_the_proprioception_and_return_normalisation_travel_in_the_state_dict():
    q = QNetwork(SMALL_NETWORK)
    q.proprio.fit(torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 5.0, 8.0]]))
    q.fit_return_scale(torch.tensor([-2.0, 0.0]))
    state = q.state_dict()
    assert torch.equal(state['proprio.mean'], torch.tensor([2.0, 2.0, 4.0, 6.0]))
    assert state['proprio.std'][1] > 0                          # a constant feature is not divided by zero
    assert state['return_mean'] == -1.0 and state['return_std'] == 1.0


def test_without_the_tool_position_the_head_does_not_see_where_the_tool_is():
    torch.manual_seed(0)
    image, proprio = torch.rand(BATCH, 5, IMAGE_PX, IMAGE_PX), torch.randn(BATCH, MODEL_PROPRIO_DIM)
    moved = proprio.clone()
    moved[:, :3] += 0.3                                          # the tool 0.3 m away, the image the same
    for tool_position in (True, False):
        actor = Actor(NetworkConfig(proprio_dim=MODEL_PROPRIO_DIM, tool_position=tool_position)).eval()
        with torch.no_grad():
            same = torch.allclose(actor(image, proprio), actor(image, moved))
        assert same != tool_position
        assert 'proprio.keep' not in actor.state_dict()          # rebuilt from the config, not stored
    assert NetworkConfig.from_dict({'proprio_dim': MODEL_PROPRIO_DIM}).tool_position   # older checkpoints


def test_pinned_action_dimensions_come_out_as_their_values_and_the_others_are_learned():
    pins = ((3, 0.0), (6, 0.5))
    actor = Actor(NetworkConfig(proprio_dim=PROPRIO_DIM, pinned_actions=pins))
    image, proprio = _inputs()
    action = actor(image, proprio)
    assert torch.equal(action[:, 3], torch.zeros(BATCH)) and torch.equal(action[:, 6], torch.full((BATCH,), 0.5))
    assert action[:, :3].abs().min() > 0.0
    assert 'free' not in actor.state_dict() and 'pinned' not in actor.state_dict()   # rebuilt from the config
    stored = NetworkConfig.from_dict(actor.config.to_dict() | {'pinned_actions': [[3, 0.0], [6, 0.5]]})
    assert stored.pinned_actions == pins
    assert NetworkConfig.from_dict({'proprio_dim': PROPRIO_DIM}).pinned_actions == ()     # older checkpoints
    for bad in (((7, 0.0),), ((2, 1.5),)):
        with pytest.raises(ValueError, match='pinned action'):
            NetworkConfig(proprio_dim=PROPRIO_DIM, pinned_actions=bad)


def test_constant_actions_are_the_label_dimensions_that_never_vary():
    labels = torch.rand(50, ACTION_DIM)
    labels[:, 3], labels[:, 4], labels[:, 6] = 0.0, 1e-8 * torch.rand(50), 0.5
    pins = constant_actions(labels)
    assert [index for index, _ in pins] == [3, 4, 6]
    assert pins[0][1] == 0.0 and abs(pins[1][1]) < 1e-7 and pins[2][1] == 0.5


def test_q_of_the_actors_action_has_a_gradient_with_respect_to_the_image():
    actor, q = Actor(KEYPOINTS), QNetwork(KEYPOINTS)
    image, proprio = _inputs(batch=1, px=32, requires_grad=True)
    value = q(image, proprio, actor(image, proprio))
    gradient, = torch.autograd.grad(value.sum(), image)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
    assert all(gradient[0, c].abs().sum() > 0 for c in range(5))    # every channel matters


def test_q_of_the_actors_action_has_a_gradient_with_respect_to_the_view_through_the_renderer():
    """dQ(I(P), pi(I(P)))/dP: the chain of Eq. 7, through the toy renderer."""
    env, views = ToyEnv(), ToyViews()
    env.reset(4)
    actor, q = Actor(KEYPOINTS), QNetwork(KEYPOINTS)
    params = views.default().clone().requires_grad_(True)
    obs = env.observe(views.camera_pose(params), requires_grad=True)
    image, proprio = obs.image[None], obs.proprio[None]
    gradient, = torch.autograd.grad(q(image, proprio, actor(image, proprio)).sum(), params)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
    detached = env.observe(views.camera_pose(params))
    assert not detached.image.requires_grad                     # requires_grad=False renders without a graph


def test_a_keypoint_lies_between_pixels_where_its_map_is_split_between_them():
    """The soft-argmax resolves a position to a fraction of a pixel: what the peg's 2 mm needs."""
    features = torch.full((1, 2, 9, 9), -50.0)
    features[0, 0, 2, 6] = 0.0                                  # one pixel: its own centre
    features[0, 1, 4, 3:5] = 0.0                                # two pixels alike: halfway between them
    x0, x1, y0, y1 = soft_argmax(features, torch.tensor(1.0))[0].tolist()
    step = 2.0 / 8                                              # [-1, 1] over 9 pixel centres
    assert x0 == pytest.approx(-1 + 6 * step) and y0 == pytest.approx(-1 + 2 * step)
    assert x1 == pytest.approx(-1 + 3.5 * step) and y1 == pytest.approx(0.0, abs=1e-6)


def test_a_stored_config_without_an_encoder_is_the_pooled_one_and_a_bad_name_is_refused():
    stored = NetworkConfig(proprio_dim=PROPRIO_DIM, encoder='pooled').to_dict()
    del stored['encoder'], stored['keypoints'], stored['keypoint_channels'], stored['keypoint_strides']
    assert NetworkConfig.from_dict(stored).encoder == 'pooled'     # checkpoints from before the keypoints
    assert Actor(NetworkConfig.from_dict(stored)).load_state_dict(
        Actor(NetworkConfig(proprio_dim=PROPRIO_DIM, encoder='pooled')).state_dict())
    with pytest.raises(ValueError, match="unknown encoder 'resnet'"):
        NetworkConfig(proprio_dim=PROPRIO_DIM, encoder='resnet')
    with pytest.raises(ValueError, match='differ in length'):
        NetworkConfig(proprio_dim=PROPRIO_DIM, keypoint_strides=(1, 2))


def test_a_pixel_goes_back_to_the_world_point_it_shows():
    """optical_points and camera_to_world invert the pinhole projection of the render's intrinsics."""
    height, width, far_m = 48, 64, 2.0
    angle = 0.7                                                 # camera turned about the world's z
    rotation = torch.tensor([[torch.cos(torch.tensor(angle)), -torch.sin(torch.tensor(angle)), 0.0],
                             [torch.sin(torch.tensor(angle)), torch.cos(torch.tensor(angle)), 0.0],
                             [0.0, 0.0, 1.0]]) @ torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])
    position = torch.tensor([0.4, -0.1, 0.9])
    camera = torch.cat([position, rotation[:, 0], rotation[:, 1]])[None]
    depth = torch.zeros(1, 1, height, width)
    depth[0, 0, 30, 10] = 0.8
    points = optical_points(depth, far_m)
    assert points[0, 2, 0, 0] == far_m                          # nothing hit: the far plane
    optical = points[0, :, 30, 10]
    k = CameraIntrinsics.d435(width, height)
    assert k.fx * optical[0] / optical[2] + k.cx == pytest.approx(10.0)      # projects back to its pixel
    assert k.fy * optical[1] / optical[2] + k.cy == pytest.approx(30.0)
    world = camera_to_world(optical.view(1, 1, 3), camera)[0, 0]
    assert torch.allclose(world, rotation @ optical + position, atol=1e-6)


def test_the_world_keypoint_encoder_needs_the_camera_pose_in_the_proprioception():
    with pytest.raises(ValueError, match="'world_keypoints' reads the camera pose"):
        NetworkConfig(proprio_dim=PROPRIO_DIM, encoder='world_keypoints')


def test_the_tool_keypoints_are_the_world_keypoints_seen_from_the_tool():
    from samrl_policy.networks import ToolKeypointEncoder, WorldKeypointEncoder
    world = WorldKeypointEncoder(NetworkConfig(proprio_dim=MODEL_PROPRIO_DIM, encoder='world_keypoints'))
    tool = ToolKeypointEncoder(NetworkConfig(proprio_dim=MODEL_PROPRIO_DIM, encoder='tool_keypoints'))
    tool.load_state_dict(world.state_dict())
    image, _ = _inputs()
    proprio = torch.randn(BATCH, MODEL_PROPRIO_DIM)
    proprio[:, :3] = 0.0                                        # the tool at the world's origin: the same points
    assert torch.allclose(world(image, proprio), tool(image, proprio), atol=1e-6)
    proprio[:, :3] = 0.3
    assert not torch.allclose(world(image, proprio), tool(image, proprio), atol=1e-3)
