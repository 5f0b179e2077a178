"""Put this folder on PYTHONPATH to run an interpreter as on a robot PC with no simulator installed.

Python imports `sitecustomize` at start-up; this one makes pybullet, pybullet_data and samrl_sim
unimportable (ModuleNotFoundError), so a test can show that a node never needs them.
"""
import sys
from importlib.abc import MetaPathFinder

BLOCKED = ('pybullet', 'pybullet_data', 'pybullet_envs', 'samrl_sim')


class _NoSimulator(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f'No module named {name!r} (blocked: no simulator here)', name=name)
        return None


sys.meta_path.insert(0, _NoSimulator())
