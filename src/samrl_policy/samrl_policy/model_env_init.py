"""Episode starts for the model M drawn from the PyBullet world's own randomisation (sim-side).

An episode in M (model_env.ModelEnv) starts where the task's randomisation, seeded, puts the real
(here simulated) world: the PyBullet World is reset with the seed, settles, and M's state is
copied from it (samrl_model.sim_adapter.state_from_sim), with the static bodies' poses and the
thread's spring rest angles, which M's world holds outside its state vector: those that make the
settled thread's shape M's equilibrium (samrl_model.physics.sync.equilibrium_rest_rad). This is the only
module of the episode environment that needs the simulator; on a robot the start would come from
Real2Sim's fit of the first frame instead.
"""
from __future__ import annotations

from samrl_model.physics.builder import set_thread_rest
from samrl_model.physics.model import PhysicsModel
from samrl_model.physics.sync import equilibrium_rest_rad
from samrl_model.sim_adapter import state_from_sim
from samrl_policy.model_env import STATIC_BODIES, EpisodeStart
from samrl_sim.world import World


class SimEpisodeStarts:
    """Episode starts of one task from one PyBullet World (built once: about 0.7 s)."""

    def __init__(self, task: str):
        self.task = task
        self.world: World | None = None

    def __call__(self, model: PhysicsModel, seed: int) -> EpisodeStart:
        """M's state at the start of the episode seeded `seed` (as World.reset(seed) draws it)."""
        if self.world is None:
            self.world = World(self.task)
        self.world.reset(seed=seed)
        poses = self.world.object_poses()
        statics = {name: pose for name, pose in poses.items() if name in STATIC_BODIES}
        state = state_from_sim(model, self.world)
        if model.task != 'needle_threading':
            return EpisodeStart(state, statics, None)
        # The thread's springs rest where its settled shape is M's equilibrium, not at the motor targets.
        rest = equilibrium_rest_rad(model, state)
        set_thread_rest(model.world.getSkeleton('gripper'), rest)
        return EpisodeStart(state, statics, rest)

    def close(self) -> None:
        if self.world is not None:
            self.world.close()
            self.world = None
