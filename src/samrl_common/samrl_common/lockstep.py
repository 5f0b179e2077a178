"""Algorithm 1 in lock-step: which model state a controller node acts on in a control step (ROS-free).

With the sim bridge's `lockstep` the world takes a control step only when a command comes, and sends a
camera frame after every step and every camera goal. One control step of the paper's Algorithm 1 is then:

    tick (TaskState, stamp t0) -> frame F1 -> masks -> M updated (line 3)
    -> view step on M(F1), camera goal (stamp g, lines 5-13) -> frame F2 -> M updated (line 7)
    -> the actor on M(F2) -> command (line 14) -> the next tick

Stamps order it, not the order messages arrive in (DDS orders only within one topic): the view step
takes the first model state from a frame at or after t0, the actor the first from a frame after the
step's camera goal (g >= t0), or, with no view step in the graph, the first at or after t0. Each acts
once per tick. All stamps are wall-clock nanoseconds of one machine's clock.
"""
from __future__ import annotations


class StepGate:
    """One node's part of a lock-step control step: `ready(model_stamp)` is True once per tick, for the
    first model state the node should act on."""

    def __init__(self, after_camera_goal: bool):
        self.after_camera_goal = after_camera_goal
        self.tick_ns: int | None = None
        self.goal_ns: int | None = None     # the newest camera goal's stamp
        self.acted = True                   # nothing to act on before the first tick

    def tick(self, stamp_ns: int) -> None:
        """A new control step began (the world's TaskState of that step)."""
        if self.tick_ns is None or stamp_ns > self.tick_ns:
            self.tick_ns, self.acted = stamp_ns, False

    def camera_goal(self, stamp_ns: int) -> None:
        """The view step of some control step sent the camera a goal."""
        self.goal_ns = stamp_ns if self.goal_ns is None else max(self.goal_ns, stamp_ns)

    def ready(self, model_stamp_ns: int | None) -> bool:
        """Whether to act now on the model state of the frame stamped `model_stamp_ns`; True at most
        once per tick (acting is then recorded)."""
        if self.acted or self.tick_ns is None or model_stamp_ns is None:
            return False
        after = self.tick_ns
        if self.after_camera_goal:
            if self.goal_ns is None or self.goal_ns < self.tick_ns:
                return False                # this step's view step has not sent its goal yet
            after = self.goal_ns + 1        # a frame taken after the camera moved
        if model_stamp_ns < after:
            return False
        self.acted = True
        return True

    def retry(self) -> None:
        """Acting on the tick's model state failed: a later model state of the same tick may try again."""
        self.acted = self.tick_ns is None
