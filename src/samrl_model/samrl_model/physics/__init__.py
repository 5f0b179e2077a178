"""Physics half of the differentiable model M (paper Sec. III-A) on nimblephysics.

build_model(task) -> PhysicsModel; model_state(model, poses, twists) -> s; control_step(model, s, a)
-> s' (torch autograd through nimble). See model.py for the state layout and step.py for how an
end-effector delta drives the gripper. From the PyBullet world: samrl_model.sim_adapter.state_from_sim;
timings: samrl_model.physics.bench (sim-side, like every benchmark).
"""
from samrl_model.physics.builder import ThreadDynamics
from samrl_model.physics.model import GRIPPER_DOFS, ModelConfig, PhysicsModel, build_model
from samrl_model.physics.step import ACTION_SIZE, body_angular_velocity, control_step, gripper_velocity, rollout
from samrl_model.physics.sync import body_pose, held_object_pose, model_state

__all__ = ['ACTION_SIZE', 'GRIPPER_DOFS', 'ModelConfig', 'PhysicsModel', 'ThreadDynamics', 'body_angular_velocity',
           'body_pose', 'build_model', 'control_step', 'gripper_velocity', 'held_object_pose', 'model_state',
           'rollout']
