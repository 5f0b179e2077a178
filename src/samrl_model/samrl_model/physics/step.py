"""One control step of M as a torch function: s_{t+1} = step(s_t, a_t) (paper Sec. III-A).

Action a_t = (dx, dy, dz, rx, ry, rz): samrl_sim.commands.EeDeltaCommand's end-effector delta for
one control period T = 0.1 s, translation (m) and rotation vector (rad) in the world frame, the
rotation about the TCP (R_new = exp(r) R). It is applied as a constant twist over T: before each of
the T * 240 Hz physics substeps the gripper's velocities are set to
    linear = (dx, dy, dz) / T                      (world frame, the TranslationalJoint's rates),
    Euler rates = E(q_k)^-1 R_t^T (rx, ry, rz) / T  (the EulerJoint's rates, rotations.py),
with R_t the TCP rotation at the start of the step and q_k the Euler angles at substep k. The
body-frame angular velocity R(t)^T r / T is constant along the rotation exp(r t / T) R_t, so a free
gripper ends at the commanded pose (up to the O(dt^2) error of integrating Euler rates). A gripper
blocked by a contact is stopped by it in that substep and pushed again in the next, as a stiff
velocity controller would be: its position advances by the velocity the contacts left it
(_gripper_after_contacts; nimble's own step advances positions by the velocity it starts with), so
d s_{t+1} / d a_t through a blocking contact is nimble's velocity Jacobian, about zero into it. The
spatula is the exception (physics.model.TOOLS_THROUGH_TABLE). Gravity on the six gripper dofs is
cancelled by joint forces (nimble's g(q) at the substep's positions, passed as the action; its own
dependence on the state is not differentiated, a term of order dt^2 that the velocity reset
removes). Cancelling the Coriolis forces too was tried and rejected: their undifferentiated
velocity dependence raised the finite-difference error of d(thread)/d(rotation action) from 7e-5
to 5e-2. Setting velocities is
done in torch, so d s_{t+1} / d a_t flows through it, and d s_{t+1} / d s_t through nimble's
backpropagation of every substep (nimble.timestep).
"""
from __future__ import annotations

import nimblephysics as nimble
import numpy as np
import torch

from samrl_model.physics.model import GRIPPER_DOFS, PhysicsModel
from samrl_model.rotations import euler_rates_matrix, euler_xyz_to_matrix

ACTION_SIZE = 6


def body_angular_velocity(model: PhysicsModel, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """TCP angular velocity (rad/s, TCP frame) that turns it by action[3:] in one control period."""
    reference = torch.as_tensor(model.gripper_reference, dtype=state.dtype)
    rotation = reference @ euler_xyz_to_matrix(state[3:GRIPPER_DOFS])
    return rotation.T @ (action[3:] / model.config.control_period_s)


def gripper_velocity(model: PhysicsModel, state: torch.Tensor, linear_m_s: torch.Tensor,
                     body_angular_rad_s: torch.Tensor) -> torch.Tensor:
    """The six gripper dof velocities (m/s, rad/s Euler rates) for the current Euler angles."""
    rates = torch.linalg.solve(euler_rates_matrix(state[3:GRIPPER_DOFS]), body_angular_rad_s)
    return torch.cat([linear_m_s, rates])


def holding_forces(model: PhysicsModel, state: torch.Tensor) -> torch.Tensor:
    """Joint forces (N, N m) cancelling gravity on the gripper dofs (g(q) at zero velocity), zero elsewhere."""
    positions = state.detach().numpy()[:model.num_dofs]
    model.world.setState(np.concatenate([positions, np.zeros_like(positions)]))   # C(q, 0) = 0
    forces = torch.zeros(model.world.getActionSize(), dtype=torch.float64)
    forces[:GRIPPER_DOFS] = torch.as_tensor(model.world.getCoriolisAndGravityForces()[:GRIPPER_DOFS])
    return forces


def _with_gripper_velocity(model: PhysicsModel, state: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    n = model.num_dofs
    return torch.cat([state[:n], velocity, state[n + GRIPPER_DOFS:]])


def control_step(model: PhysicsModel, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """s_{t+1} from s_t (float64, model.state_size) and a_t (float64, 6); differentiable in both."""
    if action.shape != (ACTION_SIZE,) or state.shape != (model.state_size,):
        raise ValueError(f'expected state ({model.state_size},) and action (6,), got '
                         f'{tuple(state.shape)} and {tuple(action.shape)}')
    linear = action[:3] / model.config.control_period_s
    angular = body_angular_velocity(model, state, action)
    for _ in range(model.config.substeps):
        driven = _with_gripper_velocity(model, state, gripper_velocity(model, state, linear, angular))
        state = nimble.timestep(model.world, driven, holding_forces(model, driven))
        if model.tool_stopped_by_contacts:
            state = _gripper_after_contacts(model, driven, state)
    return state


def _gripper_after_contacts(model: PhysicsModel, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """`after` with the gripper's position advanced by the velocity the contacts left it.

    nimble advances positions with the velocity the substep starts with and applies contact impulses
    to the velocity only. The gripper's velocity is set again before every substep, so without this
    a blocked tool would go on at the commanded speed (0.8 mm per substep at 0.2 m/s) and, past
    nimble's 3 cm contact clipping depth, through the table. Free, the two velocities agree to the
    substep's small acceleration.
    """
    n, dt = model.num_dofs, model.world.getTimeStep()
    position = before[:GRIPPER_DOFS] + dt * after[n:n + GRIPPER_DOFS]
    return torch.cat([position, after[GRIPPER_DOFS:]])


def rollout(model: PhysicsModel, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """States s_1..s_H (H x state_size) for actions a_0..a_{H-1} (H x 6)."""
    states = []
    for action in actions:
        state = control_step(model, state, action)
        states.append(state)
    return torch.stack(states)
