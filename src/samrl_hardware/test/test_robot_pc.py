"""On a robot PC there is no PyBullet: samrl_hardware imports without it (and without moveit_py or OpenCV
until a planner or a calibration needs them). Of samrl_sim it uses only the pure validators in safety.py."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = '''
import importlib, json, pkgutil, sys
from importlib.abc import MetaPathFinder

class Blocked(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('pybullet', 'pybullet_data', 'moveit', 'cv2', 'rclpy'):
            raise ModuleNotFoundError(f'No module named {name!r} (blocked)', name=name)
        return None

sys.meta_path.insert(0, Blocked())
import samrl_hardware
failed = {}
for info in pkgutil.walk_packages(samrl_hardware.__path__, 'samrl_hardware.'):
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed[info.name] = f'{type(exc).__name__}: {exc}'
loaded = sorted(m for m in sys.modules if m.startswith(('samrl_sim', 'pybullet')))
print(json.dumps({'failed': failed, 'loaded': loaded}))
'''


def test_every_module_imports_without_pybullet_moveit_or_opencv():
    result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['failed'] == {}
    assert set(report['loaded']) == {'samrl_sim', 'samrl_sim.commands', 'samrl_sim.safety'}
