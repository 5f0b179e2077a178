"""The actor pi_sim(I) and the sensing-aware Q(I, a) (paper Sec. III-D, Eqs. 8 and 9).

Both are a small CNN encoder of M's render (RGB, depth, target mask; 64x64) joined with the
proprioception by an MLP head. The encoder ends in a spatial soft-argmax (Levine et al. 2016,
"End-to-end training of deep visuomotor policies"): each of K feature maps becomes the expected
image position of its activation, which resolves positions to a fraction of a pixel. The peg's
hole leaves 2 mm a side, a quarter of a pixel at the default view: fitted on the same Fixed-View
data, an actor with the average-pooled encoder that came first inserted the peg in 0.35 of 20
evaluation episodes in M, one with keypoints in 0.95 (README, "Learn@Sim"; `refit_rounds
--encoder`). Checkpoints from before store no `encoder` and load as 'pooled'.

The 'world_keypoints' encoder adds where each keypoint is in the world: the expected 3D point under
the keypoint's softmax, back-projected from the depth plane with the render's intrinsics and moved
to the world frame by the camera pose in the proprioception. A keypoint on the hole's rim then
reads the same from every view, so a multi-view actor need not learn the projection geometry from
its data (the image-plane actor of the peg's multi-view stage failed every evaluation episode).
'tool_keypoints' gives the same points from the tool centre point instead of the world's origin.
The camera pose enters detached, as in the proprioception (model_env.policy_proprio): dQ/dP still
flows through the image only, read as the objects' apparent move.

Each network has its own encoder: the actor's features are trained to imitate the expert, Q's to
predict the return, and sharing them would let the Q regression change the actor.

Both are differentiable with respect to the image: the view step backpropagates
dQ(I(P), pi(I(P)))/dP through them and through the renderer (Eqs. 7 and 10). So there is no
batch normalisation (a single image at test time would see other statistics than training
batches) and the input scaling is smooth almost everywhere (depth is clamped to its range,
whose gradient is zero only outside it).

Normalisation travels with the weights as buffers: the proprioception's mean and standard
deviation over the training data, and for Q the returns' mean and standard deviation (Q is
fitted in standardised units and returns in the reward's units).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from samrl_description.camera import CameraIntrinsics
from samrl_policy.interfaces import ACTION_DIM, DEPTH_CHANNEL, IMAGE_CHANNELS

IMAGE_PX = 64                   # side of the square render the networks see
DEPTH_NEAR_M = 0.1              # depth maps to [-1, 1] over [near, far]; clamped outside
DEPTH_FAR_M = 2.0               # (the camera arm keeps the work within about 1.5 m)
NO_HIT_DEPTH_M = 0.0            # depth at or below this is "nothing hit" (model_env's convention)
POOLED_GRID = 4                 # the pooled encoder's last feature map: this many cells a side
ENCODERS = ('keypoints', 'world_keypoints', 'tool_keypoints', 'pooled')
TOOL_POSITION = slice(0, 3)     # model_env.policy_proprio: the tool centre point's position (m) ...
CAMERA_FEATURES = slice(9, 18)  # ... and the camera's position and rotation columns 0, 1
LEGACY_ENCODER = 'pooled'       # what a stored config without an `encoder` entry was trained with
MIN_STD = 1e-3                  # floor on a normalisation standard deviation (constant features)
PIN_TOLERANCE = 1e-6            # an action dimension whose labels all lie this close to one value is constant


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of an actor or a Q network; stored in its checkpoint."""

    proprio_dim: int                                # P, the length of Observation.proprio
    image_px: int = IMAGE_PX
    encoder: str = 'keypoints'                      # one of ENCODERS
    keypoint_channels: tuple[int, ...] = (32, 32, 64)   # keypoints: 3x3 convolutions ...
    keypoint_strides: tuple[int, ...] = (1, 2, 1)       # ... and their strides
    keypoints: int = 32                             # keypoints: feature maps turned into (x, y)
    channels: tuple[int, ...] = (16, 32, 32, 64)    # pooled: one stride-2 convolution per entry
    feature_dim: int = 128                          # image features fed to the head
    hidden: tuple[int, ...] = (256, 256)            # MLP head widths
    depth_near_m: float = DEPTH_NEAR_M
    depth_far_m: float = DEPTH_FAR_M
    image_zoom: float = 1.0                         # the renders' zoom (CameraIntrinsics.d435): their focal length
    # The tool's world position among the head's inputs. False: the head sees where things are only
    # through the image (with 'tool_keypoints', from the tool), so it cannot tie its moves to tool
    # positions in the world and extrapolate them where the expert's episodes never went.
    tool_position: bool = True
    # Action dimensions the actor outputs as fixed values instead of learning them, (index, value) pairs.
    # DAgger pins those its expert kept constant in round 0 (the peg stays upright, so its rotations about
    # x and y are 0): the learner's small errors there cannot add up to states the expert never shows.
    pinned_actions: tuple[tuple[int, float], ...] = ()

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f'unknown encoder {self.encoder!r}; expected one of {ENCODERS}')
        if len(self.keypoint_strides) != len(self.keypoint_channels):
            raise ValueError(f'keypoint_strides {self.keypoint_strides} and keypoint_channels '
                             f'{self.keypoint_channels} differ in length')
        if self.encoder in ('world_keypoints', 'tool_keypoints') and self.proprio_dim < CAMERA_FEATURES.stop:
            raise ValueError(f"encoder {self.encoder!r} reads the camera pose from proprioception values "
                             f"{CAMERA_FEATURES.start}-{CAMERA_FEATURES.stop - 1}; proprio_dim is {self.proprio_dim}")
        for index, value in self.pinned_actions:
            if not (0 <= index < ACTION_DIM and -1.0 <= value <= 1.0):
                raise ValueError(f'pinned action ({index}, {value}): expected an index in 0..{ACTION_DIM - 1} and a '
                                 'value in [-1, 1]')

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NetworkConfig:
        values = {'encoder': LEGACY_ENCODER, **values}
        tuples = {name: tuple(values[name]) for name in ('channels', 'hidden', 'keypoint_channels', 'keypoint_strides')
                  if name in values}
        if 'pinned_actions' in values:
            tuples['pinned_actions'] = tuple((int(index), float(value)) for index, value in values['pinned_actions'])
        return cls(**{**values, **tuples})


def constant_actions(labels: torch.Tensor) -> tuple[tuple[int, float], ...]:
    """(index, value) of each dimension of (N, ACTION_DIM) labels that never varies (within PIN_TOLERANCE)."""
    spread = labels.max(dim=0).values - labels.min(dim=0).values
    return tuple((index, float(labels[:, index].mean())) for index in range(labels.shape[1])
                 if spread[index] <= PIN_TOLERANCE)


def network_config_for(config: NetworkConfig | None, proprio_dim: int) -> NetworkConfig:
    """`config` (NetworkConfig defaults if None), checked against the env's proprioception size."""
    network = config or NetworkConfig(proprio_dim=proprio_dim)
    if network.proprio_dim != proprio_dim:
        raise ValueError(f'the network config expects {network.proprio_dim} proprioception values, '
                         f'the env gives {proprio_dim}')
    return network


def scale_image(image: torch.Tensor, near_m: float, far_m: float) -> torch.Tensor:
    """(N, 5, H, W) RGB [0, 1], depth m, mask [0, 1] -> every channel in about [-1, 1].

    M renders depth 0 where a ray hits nothing: that is read as beyond the far plane, not as near.
    """
    depth = image[:, DEPTH_CHANNEL:DEPTH_CHANNEL + 1]
    depth = torch.where(depth > NO_HIT_DEPTH_M, depth, torch.full_like(depth, far_m)).clamp(near_m, far_m)
    depth = 2.0 * (depth - near_m) / (far_m - near_m) - 1.0
    colour_and_mask = 2.0 * image - 1.0
    return torch.cat([colour_and_mask[:, :DEPTH_CHANNEL], depth, colour_and_mask[:, DEPTH_CHANNEL + 1:]], dim=1)


def image_encoder(config: NetworkConfig) -> nn.Module:
    """The encoder `config.encoder` names."""
    encoders = {'keypoints': KeypointEncoder, 'world_keypoints': WorldKeypointEncoder,
                'tool_keypoints': ToolKeypointEncoder, 'pooled': PooledEncoder}
    return encoders[config.encoder](config)


def encode(encoder: nn.Module, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
    """The encoder's features of `image`; the 3D keypoint encoders also read poses in `proprio`."""
    return encoder(image, proprio) if isinstance(encoder, WorldKeypointEncoder) else encoder(image)


def keypoint_weights(features: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) feature maps -> each map's softmax over its pixels, same shape."""
    n, k, h, w = features.shape
    return torch.softmax(features.flatten(2) / temperature, dim=2).view(n, k, h, w)


def soft_argmax(features: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) feature maps -> (N, 2K): each map's expected (x, y) under a softmax over its
    pixels, in [-1, 1] from the first pixel's centre to the last's."""
    return expected_positions(keypoint_weights(features, temperature))


def expected_positions(weights: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) softmax weights -> (N, 2K) expected (x, y) in [-1, 1] (all x, then all y)."""
    h, w = weights.shape[2:]
    xs = torch.linspace(-1.0, 1.0, w, dtype=weights.dtype, device=weights.device)
    ys = torch.linspace(-1.0, 1.0, h, dtype=weights.dtype, device=weights.device)
    return torch.cat([(weights.sum(2) * xs).sum(2), (weights.sum(3) * ys).sum(2)], dim=1)


class KeypointEncoder(nn.Module):
    """(N, 5, H, W) image -> (N, feature_dim): 3x3 convolutions, then each of K maps becomes a
    keypoint (its soft-argmax position); a learned temperature sharpens them."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.near_m, self.far_m, self.zoom = config.depth_near_m, config.depth_far_m, config.image_zoom
        widths = [IMAGE_CHANNELS, *config.keypoint_channels]
        layers: list[nn.Module] = []
        for inputs, outputs, stride in zip(widths[:-1], widths[1:], config.keypoint_strides):
            layers += [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1), nn.ReLU()]
        self.convolutions = nn.Sequential(*layers, nn.Conv2d(widths[-1], config.keypoints, 1))
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.project = nn.Sequential(nn.Linear(2 * config.keypoints, config.feature_dim),
                                     nn.LayerNorm(config.feature_dim), nn.Tanh())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_image(image)
        features = self.convolutions(scale_image(image, self.near_m, self.far_m))
        return self.project(soft_argmax(features, self.log_temperature.exp()))


def optical_points(depth: torch.Tensor, far_m: float, zoom: float = 1.0) -> torch.Tensor:
    """(N, 1, H, W) depth in metres -> (N, 3, H, W) each pixel's point in the optical frame (x right,
    y down, z forward), with the render's D435 intrinsics scaled to W x H at `zoom` and its pixel centres
    (samrl_model.render). No hit (depth 0) is read as the far plane."""
    h, w = depth.shape[2:]
    k = CameraIntrinsics.d435(w, h, zoom)
    z = torch.where(depth > NO_HIT_DEPTH_M, depth, torch.full_like(depth, far_m))
    u = torch.arange(w, dtype=depth.dtype, device=depth.device).view(1, 1, 1, w)
    v = torch.arange(h, dtype=depth.dtype, device=depth.device).view(1, 1, h, 1)
    return torch.cat([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], dim=1)


def camera_to_world(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """(N, K, 3) optical-frame points, (N, 9) camera features (position, rotation columns 0 and 1;
    model_env.pose_features) -> (N, K, 3) world points."""
    x_axis, y_axis = camera[:, 3:6], camera[:, 6:9]
    rotation = torch.stack([x_axis, y_axis, torch.linalg.cross(x_axis, y_axis)], dim=2)      # columns
    return points @ rotation.transpose(1, 2) + camera[:, None, :3]


class WorldKeypointEncoder(KeypointEncoder):
    """(N, 5, H, W) image and (N, P) proprioception -> (N, feature_dim): the keypoint encoder, each
    keypoint also giving its expected world point (m) under its softmax (the camera pose read from
    the proprioception)."""

    def __init__(self, config: NetworkConfig):
        super().__init__(config)
        self.project = nn.Sequential(nn.Linear(5 * config.keypoints, config.feature_dim),
                                     nn.LayerNorm(config.feature_dim), nn.Tanh())

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        check_image(image)
        features = self.convolutions(scale_image(image, self.near_m, self.far_m))
        weights = keypoint_weights(features, self.log_temperature.exp())
        points = nn.functional.adaptive_avg_pool2d(
            optical_points(image[:, DEPTH_CHANNEL:DEPTH_CHANNEL + 1], self.far_m, self.zoom), weights.shape[2:])
        world = camera_to_world(torch.einsum('nkhw,nchw->nkc', weights, points), proprio[:, CAMERA_FEATURES])
        world = world - self.origin(proprio)[:, None, :]
        return self.project(torch.cat([expected_positions(weights), world.flatten(1)], dim=1))

    def origin(self, proprio: torch.Tensor) -> torch.Tensor:
        """(N, 3) the point the keypoints are given from: the world's origin."""
        return torch.zeros_like(proprio[:, TOOL_POSITION])


class ToolKeypointEncoder(WorldKeypointEncoder):
    """The world-keypoint encoder with each point given from the tool centre point (world axes):
    the actions move the tool, so what they need is where the work is from it (the hole from the
    peg's tip), and the numbers stay small near the work."""

    def origin(self, proprio: torch.Tensor) -> torch.Tensor:
        return proprio[:, TOOL_POSITION]


def check_image(image: torch.Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != IMAGE_CHANNELS:
        raise ValueError(f'expected images of shape (N, {IMAGE_CHANNELS}, H, W), got {tuple(image.shape)}')


class PooledEncoder(nn.Module):
    """(N, 5, H, W) image -> (N, feature_dim): stride-2 convolutions, pooled to a fixed grid."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.near_m, self.far_m = config.depth_near_m, config.depth_far_m
        widths = [IMAGE_CHANNELS, *config.channels]
        layers: list[nn.Module] = []
        for inputs, outputs in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(inputs, outputs, 3, stride=2, padding=1), nn.ReLU()]
        self.convolutions = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(POOLED_GRID), nn.Flatten())
        self.project = nn.Sequential(nn.Linear(widths[-1] * POOLED_GRID ** 2, config.feature_dim),
                                     nn.LayerNorm(config.feature_dim), nn.Tanh())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_image(image)
        return self.project(self.convolutions(scale_image(image, self.near_m, self.far_m)))


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    widths = [inputs, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], outputs))


class ProprioNormaliser(nn.Module):
    """Standardises the proprioception with the training data's statistics (buffers, saved with the weights);
    the values in `dropped` come out as 0."""

    def __init__(self, dim: int, dropped: slice | None = None):
        super().__init__()
        self.register_buffer('mean', torch.zeros(dim))
        self.register_buffer('std', torch.ones(dim))
        keep = torch.ones(dim)
        if dropped is not None:
            keep[dropped] = 0.0
        self.register_buffer('keep', keep, persistent=False)     # from the config, not the checkpoint

    def fit(self, proprio: torch.Tensor) -> None:
        """Set the statistics from (N, P) training proprioception."""
        self.mean.copy_(proprio.mean(dim=0))
        self.std.copy_(proprio.std(dim=0, unbiased=False).clamp(min=MIN_STD))

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        return (proprio - self.mean) / self.std * self.keep


def proprio_normaliser(config: NetworkConfig) -> ProprioNormaliser:
    """The head's proprioception input of `config`: without the tool's position unless config.tool_position."""
    return ProprioNormaliser(config.proprio_dim, None if config.tool_position else TOOL_POSITION)


class Actor(nn.Module):
    """pi_sim(I): (N, 5, H, W) image, (N, P) proprioception -> (N, 7) action in [-1, 1] (tanh)."""

    kind = 'actor'

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.encoder = image_encoder(config)
        self.proprio = proprio_normaliser(config)
        self.head = mlp(config.feature_dim + config.proprio_dim, config.hidden, ACTION_DIM)
        free, pinned = torch.ones(ACTION_DIM), torch.zeros(ACTION_DIM)
        for index, value in config.pinned_actions:
            free[index], pinned[index] = 0.0, value
        self.register_buffer('free', free, persistent=False)          # from the config, not the checkpoint
        self.register_buffer('pinned', pinned, persistent=False)

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        features = torch.cat([encode(self.encoder, image, proprio), self.proprio(proprio)], dim=1)
        return torch.tanh(self.head(features)) * self.free + self.pinned


class QNetwork(nn.Module):
    """Q(I, a): (N, 5, H, W) image, (N, P) proprioception, (N, 7) action -> (N,) expected return.

    The head predicts the standardised return; forward() gives it back in the reward's units.
    """

    kind = 'q_function'

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.encoder = image_encoder(config)
        self.proprio = proprio_normaliser(config)
        self.head = mlp(config.feature_dim + config.proprio_dim + ACTION_DIM, config.hidden, 1)
        self.register_buffer('return_mean', torch.zeros(()))
        self.register_buffer('return_std', torch.ones(()))

    def fit_return_scale(self, returns: torch.Tensor) -> None:
        """Set the standardisation of the regression target from (N,) training returns."""
        self.return_mean.copy_(returns.mean())
        self.return_std.copy_(returns.std(unbiased=False).clamp(min=MIN_STD))

    def standardised(self, image: torch.Tensor, proprio: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(N,) the head's output: (return - return_mean) / return_std; what Eq. 9 is fitted on."""
        features = torch.cat([encode(self.encoder, image, proprio), self.proprio(proprio), action], dim=1)
        return self.head(features).squeeze(1)

    def forward(self, image: torch.Tensor, proprio: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.standardised(image, proprio, action) * self.return_std + self.return_mean
