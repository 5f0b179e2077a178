"""Shared worlds: building one takes ~0.7 s, so tests reuse them per module."""
import pytest

from samrl_sim.world import World


@pytest.fixture(scope='module')
def peg_world():
    world = World('peg_insertion')
    yield world
    world.close()
