"""The set-up provides every chosen dependency in a working state (FACTS.md's pitfalls included)."""

import os
import subprocess
import sys

import pytest

# Each check runs in a fresh interpreter: a crash (e.g. nimblephysics with numpy 2) must not take pytest down.
CHECKS = {
    'numpy<2 (nimblephysics)': 'import numpy; assert int(numpy.__version__.split(".")[0]) < 2',
    'nimblephysics': 'import nimblephysics as n; w = n.simulation.World(); w.setGravity([0, -9.81, 0])',
    'mitsuba llvm_ad_rgb': 'import mitsuba as mi; mi.set_variant("llvm_ad_rgb"); '
                           'mi.render(mi.load_dict(mi.cornell_box()), spp=1)',
    'torch + torchvision': 'import torch, torchvision; torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)',
    'open3d': 'import open3d',
    'pybullet': 'import pybullet as p; c = p.connect(p.DIRECT); p.disconnect(c)',
    'optimal transport (POT)': 'import ot',
    'gymnasium + stable-baselines3': 'import gymnasium, stable_baselines3',
    'cyclonedds': 'import cyclonedds.domain',
}


@pytest.mark.parametrize('name', CHECKS)
def test_dependency_works(name):
    result = subprocess.run([sys.executable, '-c', CHECKS[name]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_drjit_finds_a_recent_llvm():
    assert os.environ.get('DRJIT_LIBLLVM_PATH', '').endswith('libLLVM-19.so')
