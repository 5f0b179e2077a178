"""The description's tasks and camera: names checked with the list, nominal scenes, intrinsics refused with reasons."""
import math

import numpy as np
import pytest

from samrl_description.camera import MAX_IMAGE_SIDE_PX, CameraIntrinsics
from samrl_description.objects import OBJECT_CLASSES, ThreadSpec, thread_joints
from samrl_description.tasks import HELD_OBJECTS, TARGETS, TASK_NAMES, TASK_OBJECTS, check_task, nominal_scene


def test_unknown_task_is_refused_with_the_list():
    with pytest.raises(ValueError, match='peg_insertion'):
        check_task('knitting')
    assert check_task('peg_insertion') == 'peg_insertion'


@pytest.mark.parametrize('task', TASK_NAMES)
def test_each_task_names_its_objects_target_and_held_object(task):
    assert set(TASK_OBJECTS[task]) <= set(OBJECT_CLASSES)
    assert TARGETS[task] in TASK_OBJECTS[task] and HELD_OBJECTS[task] in TASK_OBJECTS[task]
    scene = nominal_scene(task)
    assert tuple(scene) == TASK_OBJECTS[task]
    for name, placement in scene.items():
        assert placement.pose.position[2] >= 0.0                      # on or above the table
        assert (placement.joint_angles is not None) == (name == 'thread')


def test_thread_joints_form_one_chain_to_the_tip_and_one_to_the_tail():
    spec = ThreadSpec()
    joints = thread_joints(spec)
    assert len(joints) == spec.tip_links + spec.tail_links
    assert [j.parent for j in joints[:2]] == [-1, 0] and joints[spec.tip_links].parent == -1
    assert all(j.origin_x_m > 0 for j in joints[:spec.tip_links]) and all(j.origin_x_m < 0 for j in joints[spec.tip_links:])


def test_intrinsics_validate_names_the_problem():
    assert CameraIntrinsics.d435().validate().fx == 615.0
    bad = [CameraIntrinsics(0.0, 1.0, 1.0, 1.0, 64, 48), CameraIntrinsics(1.0, math.inf, 1.0, 1.0, 64, 48),
           CameraIntrinsics(1.0, 1.0, math.nan, 1.0, 64, 48), CameraIntrinsics(1.0, 1.0, 1.0, 1.0, 0, 48),
           CameraIntrinsics(1.0, 1.0, 1.0, 1.0, MAX_IMAGE_SIDE_PX + 1, 48)]
    for intrinsics in bad:
        with pytest.raises(ValueError):
            intrinsics.validate()
    k = CameraIntrinsics.d435(64, 48)
    assert CameraIntrinsics.from_k(k.matrix.reshape(-1), 64, 48) == k
    assert np.allclose(k.project([0.0, 0.0, 1.0]), [k.cx, k.cy])
