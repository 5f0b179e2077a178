"""StepGate: one action per control step, on the model state of the right frame, whatever order messages arrive in."""
from samrl_common.lockstep import StepGate


def test_the_view_step_acts_once_on_the_first_frame_of_the_tick():
    gate = StepGate(after_camera_goal=False)
    assert not gate.ready(5)                       # before any tick
    gate.tick(10)
    assert not gate.ready(9)                       # the previous step's frame
    assert gate.ready(12)
    assert not gate.ready(13)                      # once per tick
    gate.tick(20)
    assert gate.ready(21)


def test_the_actor_waits_for_the_frame_after_the_camera_goal():
    gate = StepGate(after_camera_goal=True)
    gate.tick(10)
    assert not gate.ready(12)                      # F1: the view step has not moved the camera yet
    gate.camera_goal(15)
    assert not gate.ready(12)                      # still F1
    assert not gate.ready(15)
    assert gate.ready(16)                          # F2
    assert not gate.ready(17)


def test_a_goal_of_an_earlier_step_does_not_count():
    gate = StepGate(after_camera_goal=True)
    gate.tick(10)
    gate.camera_goal(15)
    assert gate.ready(16)
    gate.tick(20)
    assert not gate.ready(25)                      # the goal at 15 was the last step's
    gate.camera_goal(30)
    assert gate.ready(31)


def test_a_goal_arriving_before_its_tick_still_counts():
    gate = StepGate(after_camera_goal=True)
    gate.camera_goal(15)                           # stamped after the tick at 10, delivered first
    gate.tick(10)
    assert gate.ready(16)


def test_an_old_tick_delivered_late_changes_nothing():
    gate = StepGate(after_camera_goal=False)
    gate.tick(20)
    assert gate.ready(21)
    gate.tick(10)
    assert not gate.ready(22)


def test_a_failed_action_is_tried_again_on_the_next_frame_of_the_tick():
    gate = StepGate(after_camera_goal=False)
    gate.tick(10)
    assert gate.ready(12)
    gate.retry()
    assert gate.ready(13)
    assert not gate.ready(14)
