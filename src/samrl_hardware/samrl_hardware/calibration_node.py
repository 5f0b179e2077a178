"""calibration_publisher: the cell's calibration on latched /tf_static (samrl_hardware.calibration).

Also compares the camera driver's colour camera_info with the calibrated intrinsics, once, and
warns when they disagree (another resolution, or another camera).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from samrl_common.conversions import intrinsics_from_msg
from samrl_common.runtime import QOS_SENSOR_DATA, Node, run_node, stamp_now
from samrl_common.tf_ros import StaticTransformBroadcaster, to_msg
from samrl_description.names import COLOR_INFO_TOPIC
from samrl_hardware.calibration import intrinsics_mismatch, load_calibration


@dataclass(frozen=True)
class CalibrationParams:
    calibration_file: str = field(default='', metadata={
        'description': 'the calibration YAML file (samrl_bringup/config/calibration.yaml documents its fields)'})

    def __post_init__(self):
        if not self.calibration_file:
            raise ValueError('calibration_file is required: the path of the cell\'s calibration YAML file')


class CalibrationPublisher(Node):
    def __init__(self, argv=None):
        super().__init__('calibration_publisher', params=CalibrationParams, argv=argv)
        self.calibration = load_calibration(self.params.calibration_file)
        self.edges = self.calibration.static_edges()
        self.tf_static = StaticTransformBroadcaster(self)
        stamp = stamp_now()
        self.tf_static.send([to_msg(e.parent, e.child, e.pose, stamp) for e in self.edges])
        self.info_sub = self.create_subscription('sensor_msgs/msg/CameraInfo', COLOR_INFO_TOPIC, self.on_camera_info,
                                                 QOS_SENSOR_DATA)
        self.intrinsics_checked = False
        self.logger.info(f'{self.params.calibration_file}: published ' +
                         ', '.join(f'{e.parent} -> {e.child}' for e in self.edges) + ' on /tf_static')

    def on_camera_info(self, message) -> None:
        if self.intrinsics_checked:
            return
        self.intrinsics_checked = True
        try:
            why = intrinsics_mismatch(self.calibration.intrinsics, intrinsics_from_msg(message))
        except ValueError as exc:
            why = f'unusable camera_info: {exc}'
        if why:
            self.logger.warn(f'camera intrinsics differ from the calibration: {why}')
        else:
            self.logger.info('camera intrinsics agree with the calibration')


def main(argv=None) -> int:
    return run_node(CalibrationPublisher, argv)


if __name__ == '__main__':
    raise SystemExit(main())
