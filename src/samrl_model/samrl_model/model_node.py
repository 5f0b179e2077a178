"""model_node: the differentiable model M as a service (paper Sec. III-A/B).

Serves /samrl/model/update (samrl_interfaces/UpdateModel: Real2Sim on one segmented RGB-D view)
and /samrl/model/render (RenderModel: the current model from a requested camera pose); publishes
the model state (latched) and, after each update, its render of the updated target for
monitoring in RViz. A request it cannot use is answered with success=false and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from samrl_common import msgs
from samrl_common.conversions import pose_from_msg
from samrl_common.images import ImageError, array_to_image, depth_array_m, image_to_array, rgb_array
from samrl_common.runtime import QOS_LATCHED, Node, run_node, stamp_now
from samrl_description.camera import CameraIntrinsics
from samrl_description.tasks import TASK_NAMES, check_task
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.optimise import OptimiseConfig
from samrl_model.scene_model import RequestError, SceneModel

RGB_SCALE = 1.0 / 255.0
MAX_ITERATIONS_PER_REQUEST = 1000   # a request asking for more is refused (a corrupted field must not run for hours)
UPDATES_WAITING = 2                 # update requests queued behind the running one; more are answered "busy"


@dataclass(frozen=True)
class ModelParams:
    task: str = field(default='needle_threading', metadata={'description': 'task: ' + ', '.join(TASK_NAMES)})
    max_iterations: int = field(default=40, metadata={'description': 'Real2Sim iterations per update'})
    time_budget_s: float = field(default=30.0, metadata={'description': 'wall-time budget per update (s)'})
    spp: int = field(default=4, metadata={'description': 'Mitsuba samples per pixel'})
    initialise_from_view: bool = field(default=False, metadata={
        'description': 'start the first successful update from a coarse model fitted to its view (point '
                       'cloud, known shape) instead of the nominal scene; the thread stays anchored at '
                       'the model\'s grasp, which this node does not track'})

    def __post_init__(self):
        check_task(self.task)
        if self.max_iterations < 1 or self.time_budget_s <= 0 or self.spp < 1:
            raise ValueError('max_iterations and spp must be >= 1 and time_budget_s > 0')


def intrinsics_from_msg(info) -> CameraIntrinsics:
    """The request's intrinsics as sent (SceneModel checks them and refuses with the reason)."""
    return CameraIntrinsics.from_k(info.k, info.width, info.height)


def observation_from_request(request) -> Observation:
    mask = image_to_array(request.mask)
    if request.mask.encoding != 'mono8':
        raise ImageError(f'mask must be mono8, got {request.mask.encoding}')
    return Observation(rgb_array(request.rgb).astype(np.float32) * RGB_SCALE, depth_array_m(request.depth),
                       mask > 0, intrinsics_from_msg(request.camera_info), pose_from_msg(request.camera_pose),
                       request.target)


class ModelNode(Node):
    def __init__(self, argv=None):
        super().__init__('model_node', params=ModelParams, argv=argv)
        self.model = SceneModel(self.params.task, self.params.spp)
        self.loss = float('nan')
        self.initialised_from_view = False
        self.state_pub = self.create_publisher('samrl_interfaces/msg/ModelState', '/samrl/model/state', QOS_LATCHED)
        self.image_pub = self.create_publisher('sensor_msgs/msg/Image', '/samrl/model/rendered/image_raw')
        self.mask_pub = self.create_publisher('sensor_msgs/msg/Image', '/samrl/model/rendered/mask')
        self.create_service('samrl_interfaces/srv/UpdateModel', '/samrl/model/update', self.on_update,
                            max_pending=UPDATES_WAITING + 1)
        self.create_service('samrl_interfaces/srv/RenderModel', '/samrl/model/render', self.on_render)
        self.state_pub.publish(self.state_msg())
        self.logger.info(f'model of {self.params.task} ready: {", ".join(self.model.object_names())}')

    def on_update(self, request):
        Response = msgs.samrl_interfaces.srv.UpdateModel.Response
        try:
            if request.max_iterations > MAX_ITERATIONS_PER_REQUEST:
                raise RequestError(f'max_iterations {request.max_iterations} is more than '
                                   f'{MAX_ITERATIONS_PER_REQUEST}')
            observation = observation_from_request(request)
            config = OptimiseConfig(max_iterations=request.max_iterations or self.params.max_iterations,
                                    time_budget_s=self.params.time_budget_s)
            initial = 'coarse' if self.params.initialise_from_view and not self.initialised_from_view else 'current'
            outcome = self.model.update(observation, config, initial)
        except (ImageError, RequestError) as exc:
            self.logger.warn(f'update refused: {exc}')
            return Response(success=False, message=str(exc), state=self.state_msg())
        self.loss = outcome.final_loss
        self.initialised_from_view = self.initialised_from_view or initial == 'coarse'
        self.logger.info(f'updated {request.target} from the {initial} model: loss {outcome.final_loss:.4g} after '
                         f'{outcome.iterations} iterations ({outcome.wall_time_s:.1f} s)')
        state = self.state_msg()
        self.state_pub.publish(state)
        self._publish_render(request)
        return Response(success=True, message='updated', state=state, final_loss=outcome.final_loss,
                        iterations=outcome.iterations)

    def on_render(self, request):
        Response = msgs.samrl_interfaces.srv.RenderModel.Response
        try:
            out = self._render(request.camera_pose, request.camera_info, request.target)
        except (ImageError, RequestError) as exc:
            return Response(success=False, message=str(exc))
        return Response(success=True, message='rendered', rgb=out[0], depth=out[1], mask=out[2])

    def _render(self, camera_pose, camera_info, target):
        out = self.model.render(pose_from_msg(camera_pose), intrinsics_from_msg(camera_info),
                                target or self.model.default_target)
        stamp, frame = stamp_now(), camera_info.header.frame_id
        rgb = (out.rgb.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        mask = ((out.mask.numpy() > 0.5) * 255).astype(np.uint8)
        return (array_to_image(rgb, 'rgb8', stamp, frame),
                array_to_image(out.depth.numpy().astype(np.float32), '32FC1', stamp, frame),
                array_to_image(mask, 'mono8', stamp, frame))

    def _publish_render(self, request) -> None:
        rgb, _depth, mask = self._render(request.camera_pose, request.camera_info, request.target)
        self.image_pub.publish(rgb)
        self.mask_pub.publish(mask)

    def state_msg(self):
        Pose_, ColorRGBA = msgs.get_message('geometry_msgs/msg/Pose'), msgs.get_message('std_msgs/msg/ColorRGBA')
        names = self.model.object_names()
        poses, colors, thread = [], [], []
        for name in names:
            params = self.model.objects[name]
            quaternion = Rotation.from_rotvec(params.rotation.numpy()).as_quat()
            pose = Pose_()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in params.translation)
            pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = map(float, quaternion)
            poses.append(pose)
            colors.append(ColorRGBA(*(float(c) for c in params.color.clamp(0, 1)), 1.0))
            if params.joint_angles is not None:
                thread = [float(a) for a in params.joint_angles]
        message = msgs.samrl_interfaces.msg.ModelState(task=self.params.task, object_names=names, object_poses=poses,
                                                       object_colors=colors, thread_joint_angles=thread,
                                                       loss=self.loss)
        message.header.stamp, message.header.frame_id = stamp_now(), 'world'
        return message


def main(argv=None) -> int:
    return run_node(ModelNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
